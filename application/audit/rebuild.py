"""Blue/green rebuilds: build the read models beside the live ones, verify, swap.

1. **Build beside.** The log is replayed into a scratch database (private in-memory SQLite)
   with the projections' own ``apply``; the live tables are not touched, readers and the
   worker go on as usual.
2. **Swap**, per read model, in one live transaction under the projection's lock (the
   worker's advisory lock on PostgreSQL, SQLite's write lock): the scratch copy first catches
   up with events stored meanwhile, then the live table is made equal to it row by row (only
   differing rows are written) and the tracking position set to where it stands. Outbox
   messages that exist keep their delivery state; only new message ids are inserted, pending
   (:func:`seatledger.projections.outbox.replace_messages`): nothing is published again.
3. **Verify before commit.** Inside the same transaction the live rows are read back and must
   equal the rebuilt rows (the audit's comparison); otherwise the transaction rolls back.

Readers see the old rows until the commit and the new ones after it, never a half-built
read model; a worker may keep running (it waits for the lock for one swap).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from seatledger.application.audit.auditor import Store
from seatledger.application.audit.compare import MEMBERS, OUTBOX, SPECS, ReadModelSpec, compare
from seatledger.application.audit.digest import rows_digest
from seatledger.application.audit.replay import (
    DEFAULT_PAGE_SIZE,
    Progress,
    Replay,
    scratch_read_models,
)
from seatledger.application.audit.report import RebuildReport
from seatledger.application.read_models import PROJECTIONS
from seatledger.projections.db import PostgresReadModels, ReadModelDB, Row, Tx
from seatledger.projections.outbox import replace_messages
from seatledger.projections.runner import lock_key


class RebuildVerificationError(RuntimeError):
    """The live rows did not equal the rebuilt rows inside the swap: rolled back."""


def rebuild(
    store: Store,
    names: Sequence[str] | None = None,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    progress: Progress | None = None,
) -> list[RebuildReport]:
    """Rebuild the named read models (default: all) beside the live ones and swap them in."""
    projections = [p for p in PROJECTIONS if names is None or p.name in names]
    specs = {spec.name: spec for spec in SPECS}
    reports = []
    with scratch_read_models() as scratch:
        replay = Replay(
            store.recorder,
            store.mapper,
            scratch,
            projections=projections,
            page_size=page_size,
            progress=progress,
        )
        replay.run()  # build beside, while everything else goes on
        if replay.undecodable:
            position, error = replay.undecodable[0]
            raise RebuildVerificationError(f"event at position {position} cannot be read: {error}")
        for projection in projections:
            reports.append(_swap(store.read_models, scratch, replay, specs[projection.name]))
    return reports


def _swap(
    live: ReadModelDB, scratch: ReadModelDB, replay: Replay, spec: ReadModelSpec
) -> RebuildReport:
    schema = live.schema if isinstance(live, PostgresReadModels) else ""
    with live.transaction() as tx:
        if tx.dialect == "postgres":
            tx.execute("SELECT pg_advisory_xact_lock(:key)", {"key": lock_key(spec.name, schema)})
        replay.run()  # events stored while the copy was built (the worker is held off now)
        with scratch.read() as scratch_tx:
            rebuilt = spec.select(scratch_tx)
        inserted = updated = deleted = kept = 0
        if spec is OUTBOX:
            swapped = replace_messages(tx, rebuilt)
            inserted, updated, deleted = swapped.inserted, swapped.updated, swapped.deleted
            kept = swapped.kept
        else:
            assert spec is MEMBERS
            inserted, updated, deleted = _replace_rows(tx, spec, rebuilt)
        _set_position(tx, spec.name, replay.covered)
        check = compare(spec, spec.select(tx), rebuilt, position=replay.covered, limit=3)
        if not check.ok:
            raise RebuildVerificationError(
                f"{spec.name}: the swapped rows differ from the rebuilt ones: "
                f"{check.missing} missing, {check.extra} extra, {check.changed} changed"
            )
    return RebuildReport(
        name=spec.name,
        position=replay.covered,
        rows=len(rebuilt),
        inserted=inserted,
        updated=updated,
        deleted=deleted,
        kept_delivery_state=kept,
        digest=rows_digest(rebuilt),
        verified=True,
    )


def _replace_rows(tx: Tx, spec: ReadModelSpec, rebuilt: Sequence[Row]) -> tuple[int, int, int]:
    """Write only the rows that differ: delete extra and changed rows, insert missing and
    changed ones. Returns (inserted, updated, deleted)."""
    live = {spec.key_of(row): tuple(row) for row in spec.select(tx)}
    wanted = {spec.key_of(row): tuple(row) for row in rebuilt}
    gone = [key for key in live if key not in wanted]
    changed = [key for key, row in wanted.items() if key in live and live[key] != row]
    new = [key for key in wanted if key not in live]
    tx.delete_keys(spec.table, spec.key, [*gone, *changed])
    tx.insert_rows(spec.table, spec.columns, [wanted[key] for key in (*new, *changed)])
    return len(new), len(changed), len(gone)


def _set_position(tx: Tx, name: str, position: int) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    params = {"name": name, "position": position, "now": now}
    tx.execute("DELETE FROM seatledger_tracking WHERE projection = :name", params)
    if position > 0:
        tx.execute(
            "INSERT INTO seatledger_tracking (projection, notification_id, updated_at)"
            " VALUES (:name, :position, :now)",
            params,
        )

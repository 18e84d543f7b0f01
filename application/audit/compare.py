"""Live read models against the read models rebuilt from the log, row by row.

The live rows and their tracking positions are read in one snapshot (PostgreSQL: a
repeatable-read transaction; SQLite: one read transaction), so a worker writing meanwhile
cannot make the audit compare rows of different moments.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from seatledger.application.audit.digest import rows_digest
from seatledger.application.audit.report import Difference, ReadModelReport, Violation
from seatledger.projections import members, outbox
from seatledger.projections.db import ReadModelDB, Row, Tx


@dataclass(frozen=True)
class ReadModelSpec:
    """How to read and key one read model's rows (projection-owned columns only)."""

    name: str
    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    order: str

    def select(self, tx: Tx) -> list[Row]:
        return tx.execute(
            f"SELECT {', '.join(self.columns)} FROM {self.table} ORDER BY {self.order}"
        )

    def key_of(self, row: Row) -> tuple[str, ...]:
        return tuple(str(row[self.columns.index(k)]) for k in self.key)


MEMBERS = ReadModelSpec(
    name="members",
    table=members.TABLE,
    columns=members.MEMBER_COLUMNS,
    key=("restaurant_id", "booking_id", "table_id"),
    order="restaurant_id, booking_id, table_id",
)
OUTBOX = ReadModelSpec(
    name="outbox",
    table=outbox.TABLE,
    columns=outbox.OUTBOX_COLUMNS,
    key=("message_id",),
    order="notification_id, seq",
)
SPECS: tuple[ReadModelSpec, ...] = (MEMBERS, OUTBOX)


@dataclass(frozen=True)
class Snapshot:
    positions: dict[str, int]
    rows: dict[str, list[Row]]


def read_snapshot(
    db: ReadModelDB,
    specs: Sequence[ReadModelSpec] = SPECS,
    *,
    between: Callable[[dict[str, int]], None] | None = None,
) -> Snapshot:
    """Every read model's rows and tracking position, as of one moment. ``between`` runs
    once the positions are read, before the rows (in the same snapshot): a replay started
    there (its end read after the positions) overlaps the reading of the rows."""
    with db.read() as tx:
        if tx.dialect == "postgres":
            tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        positions = {
            str(name): int(position)
            for name, position in tx.execute(
                "SELECT projection, notification_id FROM seatledger_tracking"
            )
        }
        if between is not None:
            between(positions)
        rows = {spec.name: spec.select(tx) for spec in specs}
    return Snapshot(positions, rows)


def compare(
    spec: ReadModelSpec,
    live: Sequence[Row],
    rebuilt: Sequence[Row],
    *,
    position: int,
    limit: int,
) -> ReadModelReport:
    """Count and list (the first ``limit`` of each kind, in log order) the rows missing from
    the live table, extra in it, and changed."""
    if list(live) == list(rebuilt):  # the usual answer, without keying every row
        digest = rows_digest(live)
        return ReadModelReport(
            name=spec.name,
            table=spec.table,
            position=position,
            compared=True,
            live=len(live),
            rebuilt=len(rebuilt),
            missing=0,
            extra=0,
            changed=0,
            live_digest=digest,
            rebuilt_digest=digest,
            differences=[],
            ok=True,
        )
    live_by_key = {spec.key_of(row): row for row in live}
    rebuilt_by_key = {spec.key_of(row): row for row in rebuilt}
    at = spec.columns.index("notification_id")
    found: dict[str, list[Difference]] = {"missing": [], "extra": [], "changed": []}
    counts: Counter[str] = Counter()

    def note(kind: Any, key: tuple[str, ...], old: Row | None, new: Row | None) -> None:
        counts[kind] += 1
        columns = (
            [c for i, c in enumerate(spec.columns) if old[i] != new[i]]
            if old is not None and new is not None
            else []
        )
        found[kind].append(
            Difference(
                kind=kind,
                table=spec.table,
                key=dict(zip(spec.key, key, strict=True)),
                position=int((new or old or ())[at]),
                columns=columns,
                live=_as_dict(spec, old),
                rebuilt=_as_dict(spec, new),
            )
        )

    for key, row in rebuilt_by_key.items():
        old = live_by_key.get(key)
        if old is None:
            note("missing", key, None, row)
        elif tuple(old) != tuple(row):
            note("changed", key, old, row)
    for key, row in live_by_key.items():
        if key not in rebuilt_by_key:
            note("extra", key, row, None)
    differences = [
        difference
        for kind in ("missing", "extra", "changed")
        for difference in sorted(
            found[kind], key=lambda d: (d.position or 0, sorted(d.key.items()))
        )[:limit]
    ]
    live_digest, rebuilt_digest = rows_digest(live), rows_digest(rebuilt)
    return ReadModelReport(
        name=spec.name,
        table=spec.table,
        position=position,
        compared=True,
        live=len(live),
        rebuilt=len(rebuilt),
        missing=counts["missing"],
        extra=counts["extra"],
        changed=counts["changed"],
        live_digest=live_digest,
        rebuilt_digest=rebuilt_digest,
        differences=differences,
        ok=not counts and live_digest == rebuilt_digest,
    )


def not_compared(spec: ReadModelSpec, live: Sequence[Row], *, position: int) -> ReadModelReport:
    """The audit stopped before the live position: the rows cannot be compared."""
    return ReadModelReport(
        name=spec.name,
        table=spec.table,
        position=position,
        compared=False,
        live=len(live),
        rebuilt=0,
        missing=0,
        extra=0,
        changed=0,
        live_digest=rows_digest(live),
        rebuilt_digest="",
        differences=[],
        ok=True,
    )


def _as_dict(spec: ReadModelSpec, row: Row | None) -> dict[str, Any] | None:
    return None if row is None else dict(zip(spec.columns, row, strict=True))


def sync_violations(live: Sequence[Row], rebuilt: Sequence[Row]) -> list[Violation]:
    """One ``capacity.assignment.sync`` per table-set change: the rebuilt outbox has exactly
    one per change event (by construction), so each event position must have as many live
    syncs as rebuilt ones, i.e. one, and no live sync may sit where history has no change."""
    column = OUTBOX.columns.index
    kind, at, booking = column("type"), column("notification_id"), column("booking_id")
    payload, occurred = column("payload"), column("occurred_at")

    def syncs(rows: Sequence[Row]) -> dict[int, list[Row]]:
        found: dict[int, list[Row]] = {}
        for row in rows:
            if row[kind] == outbox.SYNC:
                found.setdefault(int(row[at]), []).append(row)
        return found

    live_syncs, rebuilt_syncs = syncs(live), syncs(rebuilt)
    violations = []
    for position in sorted(set(live_syncs) | set(rebuilt_syncs)):
        have, want = live_syncs.get(position, []), rebuilt_syncs.get(position, [])
        if len(have) == len(want):
            continue
        sample = (want or have)[0]
        tables = json.loads(sample[payload]).get("tableIds", [])
        violations.append(
            Violation(
                position=position,
                kind="sync_per_change",
                instant=str(sample[occurred]),
                restaurant_id=str(sample[column("restaurant_id")]),
                service_date=json.loads(sample[payload]).get("serviceDate"),
                booking_ids=[str(sample[booking])],
                table_ids=list(tables),
                message=f"{len(have)} live sync message(s) for an event that "
                f"{'changes a table set' if want else 'changes no table set'}",
            )
        )
    return violations

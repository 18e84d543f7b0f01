"""Fast-forwarding several cached aggregates in one read.

A command loads its restaurant's layout and its service day; the library's repository
fast-forwards each cached aggregate with a query of its own, so two round trips before the
command can decide. :func:`select_new_events` asks for the new events of several aggregates
in one statement (a ``UNION ALL`` of the library's per-aggregate query, each part on the
events table's primary key), and :func:`fast_forward` applies them to the repository's cached
copies under the repository's own fast-forward locks, then hands out copies as the
repository's ``get`` does. Written here because the library has no multi-aggregate ``get``.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from threading import Lock
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from eventsourcing.utils import retry
from psycopg import InterfaceError, OperationalError
from psycopg.sql import SQL, Composed, Identifier

from seatledger.domain.aggregate import Aggregate


def batchable(app: Application[UUID]) -> bool:
    """Whether ``app`` stores its events where one statement can read several aggregates."""
    return isinstance(app.recorder, PostgresAggregateRecorder | SQLiteAggregateRecorder)


def select_new_events(
    app: Application[UUID], after: Sequence[tuple[UUID, int]]
) -> dict[UUID, list[StoredEvent]]:
    """The events of each aggregate after its version, by aggregate, in version order."""
    recorder = app.recorder
    if isinstance(recorder, PostgresAggregateRecorder):
        rows = _select_postgres(recorder, after)
    elif isinstance(recorder, SQLiteAggregateRecorder):
        rows = _select_sqlite(recorder, after)
    else:  # pragma: no cover - guarded by batchable()
        raise TypeError(f"cannot batch reads from {type(recorder).__name__}")
    found: dict[UUID, list[StoredEvent]] = {aggregate_id: [] for aggregate_id, _ in after}
    for stored in sorted(rows, key=lambda s: s.originator_version):
        found[cast(UUID, stored.originator_id)].append(stored)
    return found


@retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
def _select_postgres(
    recorder: PostgresAggregateRecorder, after: Sequence[tuple[UUID, int]]
) -> list[StoredEvent]:
    part = SQL(
        "SELECT originator_id, originator_version, topic, state FROM {}.{}"
        " WHERE originator_id = %s AND originator_version > %s"
    ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))
    statement: Composed = SQL(" UNION ALL ").join([part] * len(after))
    params: list[Any] = [value for pair in after for value in pair]
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, params, prepare=True)
        return [
            StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in curs.fetchall()
        ]


def _select_sqlite(
    recorder: SQLiteAggregateRecorder, after: Sequence[tuple[UUID, int]]
) -> list[StoredEvent]:
    part = (
        "SELECT originator_id, originator_version, topic, state"
        f" FROM {recorder.events_table_name} WHERE originator_id=? AND originator_version>?"
    )
    statement = " UNION ALL ".join([part] * len(after))
    params: list[Any] = [
        value for aggregate_id, version in after for value in (aggregate_id.hex, version)
    ]
    with recorder.datastore.transaction(commit=False) as curs:
        curs.execute(statement, params)
        return [
            StoredEvent(
                originator_id=recorder.convert_originator_id(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=row["state"],
            )
            for row in curs.fetchall()
        ]


def fast_forward(app: Application[UUID], ids: Sequence[UUID]) -> dict[UUID, Aggregate]:
    """Copies of those of ``ids`` the repository has cached, brought up to date with one
    read (the others are left to the repository's ``get``). The cached aggregates are
    advanced under the repository's fast-forward locks, taken in a stable order."""
    repository = app.repository
    cache = repository.cache
    if cache is None or not repository.fastforward or not batchable(app):
        return {}
    ordered = sorted(set(ids))
    locks = [repository._use_fastforward_lock(aggregate_id) for aggregate_id in ordered]
    held: list[Lock] = []
    try:
        for lock in locks:
            lock.acquire()
            held.append(lock)
        cached: dict[UUID, Aggregate] = {}
        for aggregate_id in ordered:
            with contextlib.suppress(KeyError):
                cached[aggregate_id] = cast(Aggregate, cache.get(aggregate_id))
        if not cached:
            return {}
        new = select_new_events(app, [(i, a.version) for i, a in cached.items()])
        for aggregate_id, aggregate in cached.items():
            for stored in new[aggregate_id]:
                if stored.originator_version > aggregate.version:
                    event = app.mapper.to_domain_event(stored)
                    event.mutate(aggregate)  # type: ignore[attr-defined]
        return {i: copy.deepcopy(a) for i, a in cached.items()}
    finally:
        for lock in reversed(held):
            lock.release()
        for aggregate_id in ordered:
            repository._disuse_fastforward_lock(aggregate_id)

"""Support for the audit tests: a small known history, and direct access to the stored
events and the live rows, bypassing the domain (as a tamperer, or a bug, would)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from seatledger.application.commands import ChangePolicy
from seatledger.application.service import AssignmentService
from seatledger.domain.errors import PolicyDriftError
from seatledger.domain.policy import VenuePolicy
from seatledger.projections.db import Tx
from tests.support import assign, booking, confirm, floor, hold


def known_day(service: AssignmentService) -> None:
    """b1 on M1+M2 by a confirmed hold; b2 on M3, then moved to M4; a drift rejection for
    b3; b4 on P5. Every read model is caught up."""
    service.create_restaurant(floor())
    for booking_id, size, start in (("b1", 4, "18:00"), ("b2", 2, "18:30"), ("b3", 2, "20:00")):
        service.register_booking(booking(booking_id, size, start))
    service.register_booking(booking("b4", 2, "19:00"))
    placed = service.place_hold(hold("b1", "M1", "M2"))
    service.confirm_hold(confirm("b1", placed.hold_id))
    service.assign_tables(assign("b2", "M3"))
    service.assign_tables(assign("b2", "M4", replace=True))
    stale = service.place_hold(hold("b3", "P1"))
    service.change_policy(ChangePolicy(restaurant_id="r1", policy=VenuePolicy(slack_budget=3)))
    with pytest.raises(PolicyDriftError):
        service.confirm_hold(confirm("b3", stale.hold_id))
    service.assign_tables(assign("b4", "P5"))
    service.catch_up_projections()


def position_of(service: AssignmentService, topic_suffix: str, nth: int = 0) -> int:
    """The position of the ``nth`` stored event whose topic ends with ``topic_suffix``."""
    found = [
        n.id
        for n in service.recorder.select_notifications(start=None, limit=1_000_000)
        if n.topic.endswith(topic_suffix)
    ]
    return found[nth]


def live_write(service: AssignmentService, statement: str, **params: Any) -> None:
    """One statement on the live read models (the tables a bug could break)."""
    with service.read_models.transaction() as tx:
        tx.execute(statement, params)


def live_tx(service: AssignmentService) -> Any:
    return service.read_models.transaction()


class StoredLog:
    """The stored events of a service's store, edited behind the library's back."""

    def __init__(self, service: AssignmentService) -> None:
        self.service = service
        self.settings = service.settings

    def state(self, position: int) -> dict[str, Any]:
        (n,) = self.service.recorder.select_notifications(start=position, limit=1)
        return dict(json.loads(n.state))

    def edit(self, position: int, state: bytes) -> None:
        if self.settings.persistence == "memory":
            stored = self._memory()
            stored[position - 1] = dataclasses.replace(stored[position - 1], state=state)
            return
        with self._sql() as (run, table):
            run(f"UPDATE {table} SET state = {{p}} WHERE {{id}} = {{p}}", state, position)

    def delete(self, position: int) -> None:
        if self.settings.persistence == "memory":
            del self._memory()[position - 1]
            self._reindex()
            return
        with self._sql() as (run, table):
            run(f"DELETE FROM {table} WHERE {{id}} = {{p}}", position)

    def swap(self, first: int, second: int) -> None:
        """Exchange the log positions of two events."""
        if self.settings.persistence == "memory":
            stored = self._memory()
            stored[first - 1], stored[second - 1] = stored[second - 1], stored[first - 1]
            self._reindex()
            return
        with self._sql() as (run, table):
            run(f"UPDATE {table} SET {{id}} = -1 WHERE {{id}} = {{p}}", first)
            run(f"UPDATE {table} SET {{id}} = {{p}} WHERE {{id}} = {{p}}", first, second)
            run(f"UPDATE {table} SET {{id}} = {{p}} WHERE {{id}} = -1", second)

    def append(self, *events: StoredEvent) -> None:
        self.service.recorder.insert_events(list(events))

    def _memory(self) -> list[StoredEvent]:
        stored: list[StoredEvent] = self.service.recorder._stored_events  # type: ignore[attr-defined]
        return stored

    def _reindex(self) -> None:
        recorder: Any = self.service.recorder
        recorder._stored_events_index.clear()
        for index, s in enumerate(recorder._stored_events):
            recorder._stored_events_index[str(s.originator_id)][s.originator_version] = index

    @contextmanager
    def _sql(self) -> Iterator[tuple[Any, str]]:
        table: str = self.service.recorder.events_table_name  # type: ignore[attr-defined]
        if self.settings.persistence == "sqlite":
            conn = sqlite3.connect(self.settings.sqlite_path)

            def run_sqlite(statement: str, *params: Any) -> None:
                conn.execute(statement.format(p="?", id="rowid"), params)

            try:
                yield run_sqlite, table
                conn.commit()
            finally:
                conn.close()
            return
        with psycopg.connect(self.settings.postgres_conninfo(), autocommit=True) as pg:
            qualified = sql.Identifier(self.settings.postgres_schema, table).as_string(pg)

            def run_postgres(statement: str, *params: Any) -> None:
                pg.execute(statement.format(p="%s", id="notification_id"), params)

            yield run_postgres, qualified


def select_rows(tx: Tx, statement: str) -> list[tuple[Any, ...]]:
    return tx.execute(statement)

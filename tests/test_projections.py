"""Members and outbox projections: exactly once, deterministic, read-your-writes.

Runs on every backend (the read models live in an in-memory SQLite database for the memory
store, beside the events for SQLite, and in the same schema on PostgreSQL).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from seatledger.application.commands import CancelBooking, ChangePolicy
from seatledger.application.read_models import open_read_models
from seatledger.application.read_your_writes import LONGEST_PAUSE_SECONDS
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import RecordingSink, Telemetry
from seatledger.domain.errors import ErrorCode, PolicyDriftError, SeatLedgerError
from seatledger.domain.policy import VenuePolicy
from seatledger.projections.members import all_members
from seatledger.projections.migrations import LATEST, applied_versions, migrate
from seatledger.projections.outbox import HOLD_CONFIRMED, POLICY_DRIFT, SYNC, all_outbox
from tests.conftest import settings_for
from tests.support import assign, booking, confirm, floor, hold, unassign


def outbox_messages(service: AssignmentService) -> list[dict[str, Any]]:
    return [
        {"type": row[3], "dedupe_key": row[6], "payload": json.loads(row[8]), "id": row[0]}
        for row in all_outbox(service.read_models)
    ]


def run_mixed_day(service: AssignmentService) -> int:
    """A day of successes, replays, no-ops and rejections; returns how many commands
    changed a booking's table set."""
    changing = 0
    service.create_restaurant(floor())
    for booking_id, size, start in (("b1", 4, "18:00"), ("b2", 2, "18:30"), ("b3", 2, "20:00")):
        service.register_booking(booking(booking_id, size, start))

    placed = service.place_hold(hold("b1", "M1", "M2"))
    first = confirm("b1", placed.hold_id, idempotency_key="k-b1")
    service.confirm_hold(first)
    changing += 1
    assert service.confirm_hold(first).replayed  # same command re-sent: nothing new
    assert service.confirm_hold(confirm("b1", placed.hold_id, idempotency_key="k-b1")).replayed

    with pytest.raises(SeatLedgerError) as conflict:
        service.assign_tables(assign("b2", "M2"))  # M2 is b1's: rejected, no message
    assert conflict.value.code == ErrorCode.ASSIGNMENT_CONFLICT

    service.assign_tables(assign("b2", "M3"))
    changing += 1
    service.assign_tables(assign("b2", "M4", "M3", replace=True))  # a move: one command
    changing += 1
    assert not service.unassign_tables(unassign("b3")).changed  # no tables: no-op
    service.unassign_tables(unassign("b2", "M3"))
    changing += 1

    stale = service.place_hold(hold("b3", "P5"))
    service.change_policy(
        ChangePolicy(restaurant_id="r1", policy=VenuePolicy(post_buffer_minutes=10))
    )
    with pytest.raises(PolicyDriftError):
        service.confirm_hold(confirm("b3", stale.hold_id))

    service.cancel_booking(CancelBooking(restaurant_id="r1", booking_id="b1"))
    changing += 1
    service.cancel_booking(CancelBooking(restaurant_id="r1", booking_id="b3"))  # no tables
    return changing


def test_one_sync_per_table_set_change_and_none_for_replays(service: AssignmentService) -> None:
    changing = run_mixed_day(service)
    service.catch_up_projections()
    messages = outbox_messages(service)
    counts = Counter(m["type"] for m in messages)
    assert counts[SYNC] == changing == 5
    assert counts[HOLD_CONFIRMED] == 1
    assert counts[POLICY_DRIFT] == 1
    drift = next(m for m in messages if m["type"] == POLICY_DRIFT)["payload"]
    assert drift["kind"] == "policy" and drift["recovered"] is False and drift["attempt"] == 1
    assert drift["bookingId"] == "b3"
    assert len({m["id"] for m in messages}) == len(messages)

    syncs = [m for m in messages if m["type"] == SYNC]
    assert [m["payload"]["source"] for m in syncs] == [
        "hold",
        "manual",
        "manual",
        "unassign",
        "cancel",
    ]
    first = syncs[0]
    assert first["dedupe_key"] == "b1:2026-11-24T18:00:00Z:2026-11-24T19:20:00Z:M1,M2"
    assert first["payload"]["tableIds"] == ["M1", "M2"]
    assert first["payload"]["idempotencyKey"] == "k-b1"
    assert syncs[-1]["payload"]["tableIds"] == []  # cancelled: empty set


def test_members_follow_the_bookings_table_sets(service: AssignmentService) -> None:
    run_mixed_day(service)
    service.catch_up_projections()
    rows = all_members(service.read_models)
    assert [(r[1], r[2]) for r in rows] == [("b2", "M4")]
    day = service.get_day("r1", service.get_booking("r1", "b2").service_date)
    assigned = {(b.booking_id, t) for b in day.bookings for t in b.table_ids}
    assert assigned == {("b2", "M4")}


def test_rebuild_from_the_log_gives_identical_rows(service: AssignmentService) -> None:
    run_mixed_day(service)
    service.catch_up_projections()
    members, outbox = all_members(service.read_models), all_outbox(service.read_models)
    for runner in service.projection_runners:
        runner.rebuild()
    assert all_members(service.read_models) == members
    assert all_outbox(service.read_models) == outbox
    assert outbox  # the comparison compared something


def test_redelivered_notifications_change_nothing(service: AssignmentService) -> None:
    run_mixed_day(service)
    service.catch_up_projections()
    members, outbox = all_members(service.read_models), all_outbox(service.read_models)
    old = service.recorder.select_notifications(start=1, limit=1000)
    positions = [runner.position() for runner in service.projection_runners]
    for runner in service.projection_runners:
        # what its source delivers: the notifications of its topics
        delivered = [n for n in old if n.topic in runner.projection.topics]
        assert runner.apply_notifications(delivered) == 0
    assert [runner.position() for runner in service.projection_runners] == positions
    assert all_members(service.read_models) == members
    assert all_outbox(service.read_models) == outbox


def test_result_members_come_from_the_read_model(service: AssignmentService) -> None:
    service.create_restaurant(floor())
    service.register_booking(booking("b1", 4))
    result = service.assign_tables(assign("b1", "M1", "M2"))
    visible = {m.table_id: m.assignment_id for m in service.members("r1", "b1")}
    assert visible == {m.table_id: m.assignment_id for m in result.members}
    assert all(visible.values())


def test_missing_rows_come_back_empty_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Projections off: nothing becomes visible, so once the wait for the members
    projection times out the tables come back with assignment id "" and a warning names
    the booking and tables. The wait is a poll of short pauses, none a fixed 15 ms."""
    sink = RecordingSink()
    settings = Settings(
        persistence="sqlite",
        sqlite_path=tmp_path / "s.db",
        projection_mode="off",
        read_your_writes_timeout_ms=20,
    )
    sleeps: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr("seatledger.application.read_your_writes.time.sleep", sleep)
    with AssignmentService(settings, telemetry=Telemetry(sinks=[sink])) as service:
        service.create_restaurant(floor())
        service.register_booking(booking("b1", 4))
        result = service.assign_tables(assign("b1", "M2", "M1"))
    assert [(m.table_id, m.assignment_id) for m in result.members] == [("M1", ""), ("M2", "")]
    assert sleeps and max(sleeps) <= LONGEST_PAUSE_SECONDS
    (warning,) = sink.named("assignments.rows_missing")
    assert warning.fields["waited_ms"] == 20
    assert warning.fields["booking_id"] == "b1"
    assert warning.fields["table_ids"] == ["M1", "M2"]


POISON_TRIGGER = {
    "sqlite": (
        "CREATE TRIGGER poison BEFORE INSERT ON seatledger_members"
        " BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
    ),
    "postgres": (
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RAISE EXCEPTION 'poisoned'; END $$",
        "CREATE TRIGGER poison BEFORE INSERT ON seatledger_members"
        " FOR EACH ROW EXECUTE FUNCTION poison()",
    ),
}

#: What breaks only the read after a command: the members table gone, or its projection failing.
READ_FAULTS: dict[str, Callable[[str], tuple[str, ...]]] = {
    "members table missing": lambda dialect: (
        "ALTER TABLE seatledger_members RENAME TO seatledger_members_gone",
    ),
    "projection fails": lambda dialect: POISON_TRIGGER[dialect],
}


@pytest.mark.parametrize("fault", sorted(READ_FAULTS))
def test_a_stored_command_whose_read_back_fails_is_not_reported_failed(
    service: AssignmentService, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """Issue 9 item 5: the event is stored, so the caller gets the result, with assignment
    id "" for the rows it could not read and the rows-missing warning, never
    STORAGE_UNAVAILABLE (a re-send would be a second command)."""
    monkeypatch.setattr("seatledger.application.read_your_writes.time.sleep", lambda _: None)
    sink = RecordingSink()
    service.telemetry.sinks.append(sink)
    service.create_restaurant(floor())
    service.register_booking(booking("b1", 4))
    with service.read_models.transaction() as tx:
        for statement in READ_FAULTS[fault](service.read_models.dialect):
            tx.execute(statement)

    result = service.assign_tables(assign("b1", "M2", "M1"))

    assert [(m.table_id, m.assignment_id) for m in result.members] == [("M1", ""), ("M2", "")]
    assert result.changed and result.table_ids == ["M1", "M2"]
    assert service.get_booking("r1", "b1").table_ids == ["M1", "M2"]  # stored
    (warning,) = sink.named("assignments.rows_missing")
    assert warning.fields["table_ids"] == ["M1", "M2"]
    assert ("read_error" in warning.fields) == (fault == "members table missing")
    assert sink.named("storage.failed") == []


def test_no_sleep_when_nothing_is_missing(
    service: AssignmentService, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("seatledger.application.read_your_writes.time.sleep", sleeps.append)
    service.create_restaurant(floor())
    service.register_booking(booking("b1", 4))
    result = service.assign_tables(assign("b1", "M1", "M2"))
    assert all(m.assignment_id for m in result.members)
    assert sleeps == []


def test_warning_is_logged_with_the_documented_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        persistence="sqlite",
        sqlite_path=tmp_path / "s.db",
        projection_mode="off",
        read_your_writes_timeout_ms=0,
    )
    with AssignmentService(settings) as service, caplog.at_level(logging.WARNING, "seatledger"):
        service.create_restaurant(floor())
        service.register_booking(booking("b1", 2))
        service.assign_tables(assign("b1", "M1"))
    assert "[capacity.assignments] assignment rows missing" in caplog.messages


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrations_apply_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = settings_for(backend, request, tmp_path)
    if backend == "postgres":  # the read models' schema; the ledger is not there yet
        with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(settings.postgres_schema))
            )
    with open_read_models(settings) as db:
        assert applied_versions(db) == []
        assert [m.version for m in migrate(db)] == list(range(1, LATEST + 1))
        assert migrate(db) == []
        assert applied_versions(db) == list(range(1, LATEST + 1))

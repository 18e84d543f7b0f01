"""Time travel: the floor at an instant or position, a booking's timeline and the difference
between two instants, against a day whose history is known to the second (freezegun, through
the scenario helper). Every backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from seatledger.application.audit.report import FloorAt
from seatledger.application.commands import CancelBooking, ChangePolicy
from seatledger.application.service import AssignmentService
from seatledger.application.testing.scenario import Scenario
from seatledger.domain.errors import ErrorCode, SeatLedgerError
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day import HoldConfirmed
from tests.support import DAY, assign, booking, confirm, floor, hold


def at(clock: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-24T{clock}:00+00:00")


@pytest.fixture
def day(service: AssignmentService) -> Iterator[dict[str, object]]:
    """17:00 three bookings; 17:10 hold b1 on M1+M2, confirmed 17:11; 17:20 b2 on M3 by
    hand (key k-b2); 17:30 a hold for b3 on B1 (expires 17:33); 17:45 b2 moved to M4;
    18:00 b1 cancelled."""
    with Scenario(service, start="2026-11-24T17:00:00Z") as s:
        s.given(floor(), booking("b1", 4), booking("b2", 2), booking("b3", 2, "21:00"))
        h1 = s.at(at("17:10")).when(hold("b1", "M1", "M2")).result.hold_id
        s.at(at("17:11")).when(confirm("b1", h1))
        # the confirmation's own position (its command's ledger entry comes after it)
        (confirmed,) = service.recorder.select_notifications(
            1, 10_000, topics=[HoldConfirmed.TOPIC]
        )
        confirmed_at = confirmed.id
        s.at(at("17:20")).when(assign("b2", "M3", idempotency_key="k-b2"))
        h3 = s.at(at("17:30")).when(hold("b3", "B1")).result.hold_id
        s.at(at("17:45")).when(assign("b2", "M4", replace=True, actor_id="host-2"))
        s.at(at("18:00")).when(CancelBooking(restaurant_id="r1", booking_id="b1"))
        yield {"h1": h1, "h3": h3, "confirmed_at": confirmed_at}


def seated(answer: FloorAt) -> dict[str, list[tuple[str, str]]]:
    """table -> [(booking, source)] for the tables with an assignment."""
    return {
        t.table_id: [(a.booking_id, a.source) for a in t.assignments]
        for t in answer.tables
        if t.assignments
    }


def held(answer: FloorAt) -> dict[str, list[str]]:
    return {t.table_id: [h.booking_id for h in t.holds] for t in answer.tables if t.holds}


def test_the_floor_at_instants(service: AssignmentService, day: dict[str, object]) -> None:
    assert seated(service.floor_at("r1", DAY, at=at("17:05"))) == {}
    assert held(service.floor_at("r1", DAY, at=at("17:10"))) == {"M1": ["b1"], "M2": ["b1"]}

    at_1712 = service.floor_at("r1", DAY, at=at("17:12"))
    assert seated(at_1712) == {"M1": [("b1", "hold")], "M2": [("b1", "hold")]}
    assert held(at_1712) == {}  # the hold was consumed by its confirm
    (m1,) = [t for t in at_1712.tables if t.table_id == "M1"]
    assert (m1.zone_id, m1.capacity, m1.active) == ("main", 2, True)
    assert (m1.assignments[0].window_start, m1.assignments[0].window_end) == (
        "2026-11-24T19:00:00Z",
        "2026-11-24T20:20:00Z",
    )
    assert m1.assignments[0].merge_group_id is not None
    assert len(at_1712.tables) == 15  # every table of the floor, busy or not

    at_1731 = service.floor_at("r1", DAY, at=at("17:31"))
    assert seated(at_1731) == {
        "M1": [("b1", "hold")],
        "M2": [("b1", "hold")],
        "M3": [("b2", "manual")],
    }
    assert held(at_1731) == {"B1": ["b3"]}
    assert held(service.floor_at("r1", DAY, at=at("17:40"))) == {}  # expired at 17:33

    assert seated(service.floor_at("r1", DAY, at=at("17:50")))["M4"] == [("b2", "manual")]
    assert seated(service.floor_at("r1", DAY, at=at("18:05"))) == {"M4": [("b2", "manual")]}


def test_the_floor_at_a_log_position(service: AssignmentService, day: dict[str, object]) -> None:
    position = day["confirmed_at"]
    assert isinstance(position, int)
    answer = service.floor_at("r1", DAY, position=position)
    assert answer.position == position and answer.at is None
    assert seated(answer) == seated(service.floor_at("r1", DAY, at=at("17:12")))
    before = service.floor_at("r1", DAY, position=position - 1)
    assert seated(before) == {}
    assert held(before) == {"M1": ["b1"], "M2": ["b1"]}


def test_a_booking_timeline(service: AssignmentService, day: dict[str, object]) -> None:
    b2 = service.booking_timeline("r1", "b2")
    assert b2.service_date == DAY.isoformat()
    assert [(e.event, e.at, e.tables_before, e.tables_after) for e in b2.entries] == [
        ("BookingRegistered", "2026-11-24T17:00:00Z", [], []),
        ("TablesAssigned", "2026-11-24T17:20:00Z", [], ["M3"]),
        ("TablesAssigned", "2026-11-24T17:45:00Z", ["M3"], ["M4"]),
    ]
    first, move = b2.entries[1], b2.entries[2]
    assert (first.source, first.idempotency_key, first.actor_id) == ("manual", "k-b2", "host-1")
    assert (move.actor_id, move.status) == ("host-2", "confirmed")
    assert move.idempotency_key is not None and move.idempotency_key.startswith("derived:")
    assert all(e.command_id for e in b2.entries)

    b1 = service.booking_timeline("r1", "b1")
    assert [(e.event, e.hold_id, e.tables_after, e.status) for e in b1.entries] == [
        ("BookingRegistered", None, [], "pending"),
        ("HoldPlaced", day["h1"], [], "pending"),
        ("HoldConfirmed", day["h1"], ["M1", "M2"], "confirmed"),
        ("BookingClosed", None, [], "cancelled"),
    ]
    assert b1.entries[2].source == "hold"
    assert b1.entries[3].tables_before == ["M1", "M2"]


def test_a_drift_rejection_is_on_the_timeline(service: AssignmentService) -> None:
    with Scenario(service, start="2026-11-24T17:00:00Z") as s:
        s.given(floor(), booking("b1", 2))
        h = s.at(at("17:10")).when(hold("b1", "M1")).result.hold_id
        s.at(at("17:11")).given(
            ChangePolicy(restaurant_id="r1", policy=VenuePolicy(slack_budget=3))
        )
        s.at(at("17:12")).when(confirm("b1", h)).then_error(
            ErrorCode.POLICY_DRIFT, wrote_events=True
        )
    (drift,) = [e for e in service.booking_timeline("r1", "b1").entries if e.drift_kind]
    assert (drift.event, drift.at, drift.drift_kind, drift.hold_id) == (
        "PolicyDriftDetected",
        "2026-11-24T17:12:00Z",
        "policy",
        h,
    )
    assert drift.reason == "confirm rejected: POLICY_DRIFT"
    assert drift.details["attempt"] == 1


def test_the_difference_between_two_instants(
    service: AssignmentService, day: dict[str, object]
) -> None:
    moves = service.floor_diff("r1", DAY, at("17:25"), at("17:50"))
    assert [(c.table_id, c.kind, c.change, c.booking_id) for c in moves.changes] == [
        ("M3", "assignment", "removed", "b2"),
        ("M4", "assignment", "added", "b2"),
    ]
    evening = service.floor_diff("r1", DAY, at("17:12"), at("18:05"))
    assert [(c.table_id, c.change, c.booking_id) for c in evening.changes] == [
        ("M1", "removed", "b1"),
        ("M2", "removed", "b1"),
        ("M4", "added", "b2"),
    ]
    holds = service.floor_diff("r1", DAY, at("17:29"), at("17:31"))
    assert [(c.table_id, c.kind, c.change, c.ref) for c in holds.changes] == [
        ("B1", "hold", "added", day["h3"]),
    ]
    (added,) = holds.changes
    assert added.before is None and added.after is not None
    assert added.after["expires_at"] == "2026-11-24T17:33:00Z"
    assert service.floor_diff("r1", DAY, at("18:10"), at("18:20")).changes == []


def test_bad_questions_get_typed_errors(service: AssignmentService, day: dict[str, object]) -> None:
    with pytest.raises(SeatLedgerError) as err:
        service.booking_timeline("r1", "nobody")
    assert err.value.code == ErrorCode.BOOKING_NOT_FOUND
    with pytest.raises(SeatLedgerError) as err:
        service.floor_at("r9", DAY, at=at("17:00"))
    assert err.value.code == ErrorCode.RESTAURANT_NOT_FOUND
    with pytest.raises(SeatLedgerError) as err:
        service.floor_at("r1", DAY, at=datetime(2026, 11, 24, 17))  # naive
    assert err.value.code == ErrorCode.INVALID_INPUT
    with pytest.raises(SeatLedgerError) as err:
        service.floor_at("r1", DAY)
    assert err.value.code == ErrorCode.INVALID_INPUT
    with pytest.raises(SeatLedgerError) as err:
        service.floor_diff("r1", DAY, at("18:00"), at("17:00"))
    assert err.value.code == ErrorCode.INVALID_INPUT
    with pytest.raises(SeatLedgerError) as err:  # before the restaurant was created
        service.floor_at("r1", DAY, at=datetime(2026, 11, 24, 16, tzinfo=UTC))
    assert err.value.code == ErrorCode.RESTAURANT_NOT_FOUND

"""Tenancy (docs/domain.md §13 and §16): another restaurant's booking, table or hold is never
read, changed or assigned through a command naming this restaurant, and nothing is written.

r1 uses the usual floor (M*, P*, B* tables); r2 has only S1..S3 in a "garden" zone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from seatledger.application.commands import (
    CancelBooking,
    Command,
    ExtendHold,
    ReleaseHold,
)
from seatledger.application.results import HoldView
from seatledger.application.telemetry import RecordingSink
from seatledger.application.testing import Scenario
from seatledger.domain.directory import BookingFiled, booking_index_id
from seatledger.domain.errors import ErrorCode
from seatledger.domain.values import Window
from tests.support import (
    DAY,
    EVENING,
    assign,
    booking,
    confirm,
    floor,
    hold,
    other_floor,
    position,
    unassign,
)


@pytest.fixture
def s(seatledger_scenario: Scenario) -> Scenario:
    scenario = seatledger_scenario.at(EVENING)
    scenario.given(
        floor("r1"),
        other_floor("r2"),
        booking("b1", restaurant_id="r1"),
        booking("x1", restaurant_id="r2"),
        # the same booking id in both restaurants: two different bookings
        booking("shared", restaurant_id="r1", party_size=2),
        booking("shared", restaurant_id="r2", party_size=3),
    )
    return scenario


@pytest.fixture
def theirs(s: Scenario) -> HoldView:
    """A live hold of r2's booking x1."""
    result = s.when(hold("x1", "S1", restaurant_id="r2", actor_id="host-r2")).result
    assert isinstance(result, HoldView)
    return result


def test_another_restaurants_booking_is_simply_not_found(s: Scenario) -> None:
    attempts: list[Command] = [
        assign("x1", "M1"),
        hold("x1", "M1"),
        unassign("x1"),
        CancelBooking(restaurant_id="r1", booking_id="x1"),
    ]
    for command in attempts:
        s.when(command).then_error(ErrorCode.BOOKING_NOT_FOUND, booking_id="x1", restaurant_id="r1")
    s.when(lambda: s.service.get_booking("r1", "x1")).then_error(ErrorCode.BOOKING_NOT_FOUND)
    assert s.service.get_booking("r2", "x1").status == "pending"


def test_another_restaurants_tables_are_not_found(s: Scenario) -> None:
    before = position(s.service)
    s.when(assign("b1", "S1")).then_error(
        ErrorCode.TABLE_NOT_FOUND, tables=["S1"], restaurant_id="r1"
    )
    s.when(hold("b1", "S1", "S2")).then_error(
        ErrorCode.TABLE_NOT_FOUND, tables=["S1", "S2"], restaurant_id="r1"
    )
    assert position(s.service) == before
    assert s.service.get_booking("r1", "b1").table_ids == []
    # and r2 can still use them
    assert s.when(assign("x1", "S1", restaurant_id="r2")).result.table_ids == ["S1"]


def test_same_booking_ids_in_two_restaurants_are_independent(s: Scenario) -> None:
    s.when(assign("shared", "M1", restaurant_id="r1"))
    assert s.result.table_ids == ["M1"]
    other = s.service.get_booking("r2", "shared")
    assert (other.party_size, other.status, other.table_ids) == (3, "pending", [])
    s.when(unassign("shared", restaurant_id="r2")).then_no_events()
    assert s.service.get_booking("r1", "shared").table_ids == ["M1"]


def test_confirming_another_restaurants_hold(
    s: Scenario, theirs: HoldView, caplog: pytest.LogCaptureFixture
) -> None:
    sink = RecordingSink()
    s.service.telemetry.sinks.append(sink)
    before = position(s.service)
    with caplog.at_level(logging.ERROR, logger="seatledger"):
        s.when(confirm("b1", theirs.hold_id))
    err = s.then_error(ErrorCode.HOLD_RESTAURANT_MISMATCH)
    assert position(s.service) == before

    # the caller learns the hold id and its own restaurant, nothing about the other tenant
    assert err.details == {"hold_id": theirs.hold_id, "restaurant_id": "r1"}
    assert "r2" not in repr(err.to_dict())
    assert "x1" not in repr(err.to_dict()) and "S1" not in repr(err.to_dict())

    # operators see both, at error severity
    (violation,) = sink.named("tenancy.violation")
    assert violation.fields["hold_id"] == theirs.hold_id
    assert violation.fields["hold_restaurant_id"] == "r2"
    assert violation.fields["booking_restaurant_id"] == "r1"
    logged = [r for r in caplog.records if getattr(r, "telemetry", None) == "tenancy.violation"]
    assert [r.levelno for r in logged] == [logging.ERROR]

    # the hold is untouched and still works in its own restaurant
    assert s.service.get_hold("r2", theirs.hold_id).status == "live"
    s.when(confirm("x1", theirs.hold_id, restaurant_id="r2"))
    assert s.result.table_ids == ["S1"]


HoldCommand = Callable[[str], Command]

HOLD_ATTEMPTS: dict[str, HoldCommand] = {
    "extend": lambda hold_id: ExtendHold(restaurant_id="r1", hold_id=hold_id, actor_role="manager"),
    "release": lambda hold_id: ReleaseHold(
        restaurant_id="r1", hold_id=hold_id, actor_role="manager"
    ),
    "replace": lambda hold_id: hold("b1", "M1", replaces_hold_id=hold_id),
}


@pytest.mark.parametrize("attempt", sorted(HOLD_ATTEMPTS))
def test_another_restaurants_hold_cannot_be_changed(
    s: Scenario, theirs: HoldView, attempt: str
) -> None:
    sink = RecordingSink()
    s.service.telemetry.sinks.append(sink)
    s.after(seconds=30)
    before = position(s.service)
    s.when(HOLD_ATTEMPTS[attempt](theirs.hold_id))
    s.then_error(ErrorCode.HOLD_RESTAURANT_MISMATCH, hold_id=theirs.hold_id, restaurant_id="r1")
    assert position(s.service) == before
    assert len(sink.named("tenancy.violation")) == 1
    after = s.service.get_hold("r2", theirs.hold_id)
    assert (after.status, after.expires_at) == ("live", theirs.expires_at)


def test_another_restaurants_hold_cannot_be_read(s: Scenario, theirs: HoldView) -> None:
    s.when(lambda: s.service.get_hold("r1", theirs.hold_id))
    err = s.then_error(ErrorCode.HOLD_RESTAURANT_MISMATCH)
    assert "r2" not in repr(err.to_dict())


def test_another_restaurants_hold_blocks_nothing_here(s: Scenario, theirs: HoldView) -> None:
    # r1 and r2 both have the instant; tables and holds never meet across tenants
    s.given(other_floor("r3"), booking("y1", restaurant_id="r3"))
    result: Any = s.when(hold("y1", "S1", restaurant_id="r3")).result
    assert result.table_ids == ["S1"]
    assert theirs.table_ids == ["S1"]


# --- directories and availability (issue 9 items 2 and 9) -----------------------------------


def error_level_violations(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        1
        for r in caplog.records
        if getattr(r, "telemetry", None) == "tenancy.violation" and r.levelno == logging.ERROR
    )


EVENING_WINDOW = Window(
    start=datetime.fromisoformat("2026-11-24T18:00:00+00:00"),
    end=datetime.fromisoformat("2026-11-24T23:00:00+00:00"),
)


def test_a_directory_entry_filed_for_another_restaurant_is_never_the_callers(
    s: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    """The booking index is checked against the caller's address: an entry under r1's derived
    id but filed for r2 (a forged or colliding record) neither blocks silently nor leaks r2's
    booking or its date; it is refused, and both tenants are logged."""
    sink = RecordingSink()
    s.service.telemetry.sinks.append(sink)
    foreign = BookingFiled(
        originator_id=booking_index_id("r1", "b7"),
        originator_version=1,
        timestamp=datetime.fromisoformat(EVENING),
        command_id="forged",
        actor_id="someone",
        restaurant_id="r2",
        booking_id="x1",
        service_date=DAY + timedelta(days=3),
    )
    s.given(foreign)
    before = position(s.service)

    s.when(lambda: s.service.get_booking("r1", "b7")).then_error(
        ErrorCode.BOOKING_NOT_FOUND, booking_id="b7", restaurant_id="r1"
    )
    s.when(assign("b7", "M1")).then_error(ErrorCode.BOOKING_NOT_FOUND)
    err = s.when(booking("b7", restaurant_id="r1")).then_error(ErrorCode.BOOKING_EXISTS)
    assert err.details == {"booking_id": "b7", "restaurant_id": "r1"}  # no date, no tenant
    assert position(s.service) == before

    violations = sink.named("tenancy.violation")
    assert len(violations) == 3
    assert {(v.fields["restaurant_id"], v.fields["owner_restaurant_id"]) for v in violations} == {
        ("r1", "r2")
    }
    assert error_level_violations(caplog) == 3
    # r2's own booking x1 is untouched
    assert s.service.get_booking("r2", "x1").status == "pending"


def test_same_booking_id_on_different_days_in_two_restaurants(s: Scenario) -> None:
    """Each tenant files its own directory entry: r2 registering r1's booking id on another
    day neither fails nor moves r1's booking."""
    s.when(booking("b1", restaurant_id="r2", service_date=DAY + timedelta(days=1)))
    assert s.service.get_booking("r2", "b1").service_date == DAY + timedelta(days=1)
    assert s.service.get_booking("r1", "b1").service_date == DAY
    s.when(assign("b1", "S1", restaurant_id="r2"))
    assert s.service.get_booking("r1", "b1").table_ids == []


def test_availability_of_another_restaurants_table_is_table_not_found(
    s: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    sink = RecordingSink()
    s.service.telemetry.sinks.append(sink)
    s.when(assign("x1", "S1", restaurant_id="r2"))

    err = s.when(lambda: s.service.table_availability("r1", "S1", EVENING_WINDOW)).then_error(
        ErrorCode.TABLE_NOT_FOUND, restaurant_id="r1", tables=["S1"]
    )
    assert "r2" not in repr(err.to_dict()) and "x1" not in repr(err.to_dict())
    (violation,) = sink.named("tenancy.violation")
    assert error_level_violations(caplog) == 1
    assert violation.fields["operation"] == "table_availability"
    assert violation.fields["restaurant_id"] == "r1"
    assert violation.fields["owner_restaurant_ids"] == ["r2"]
    assert violation.fields["table_id"] == "S1"
    # r2 asking about its own table gets the answer
    assert not s.service.is_table_available("r2", "S1", EVENING_WINDOW)


def test_availability_of_an_unknown_table_or_restaurant(s: Scenario) -> None:
    sink = RecordingSink()
    s.service.telemetry.sinks.append(sink)
    s.when(lambda: s.service.table_availability("r1", "T9", EVENING_WINDOW)).then_error(
        ErrorCode.TABLE_NOT_FOUND, restaurant_id="r1", tables=["T9"]
    )
    s.when(lambda: s.service.is_table_available("nowhere", "M1", EVENING_WINDOW)).then_error(
        ErrorCode.RESTAURANT_NOT_FOUND, restaurant_id="nowhere"
    )
    assert sink.named("tenancy.violation") == []  # nobody else's table: just unknown
    assert s.service.is_table_available("r1", "M1", EVENING_WINDOW)

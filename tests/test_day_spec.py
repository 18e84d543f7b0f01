"""The day spec itself: each ``then_*`` fails when its expectation does not hold, a rejected
command leaves the day untouched, and histories move between specs."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from seatledger.application.testing import (
    DaySpec,
    DaySpecError,
    held,
    registered,
    sample_floor,
    step,
)
from seatledger.domain.aggregate import Stamp
from seatledger.domain.errors import ErrorCode, NotFoundError, PolicyDriftError
from seatledger.domain.layout import FloorView
from seatledger.domain.service_day import (
    BookingRegistered,
    DriftRejected,
    HoldPlaced,
    PolicyDriftDetected,
    ServiceDay,
    ServiceDayOpened,
)
from tests.day_support import T0, assign, place, register


def test_given_opens_the_day_and_stamps_facts_with_versions_and_the_instant() -> None:
    spec = DaySpec().given(registered("b1")).after(seconds=30).given(registered("b2"))
    opened, first, second = spec.history()
    assert isinstance(opened, ServiceDayOpened)
    assert (opened.restaurant_id, opened.service_date) == ("r1", spec.service_date)
    assert [e.originator_version for e in spec.history()] == [1, 2, 3]
    assert (first.timestamp, second.timestamp) == (T0, T0 + timedelta(seconds=30))
    assert first.command_id == "given-2"
    assert spec.day.version == 3


def test_a_rejected_command_leaves_the_day_as_it_was() -> None:
    def register_then_fail(day: ServiceDay, floor: FloorView, stamp: Stamp) -> Any:
        register("b9")(day, floor, stamp)
        return day.booking("nobody")

    spec = DaySpec().given(registered("b1")).when(register_then_fail)
    assert [type(e) for e in spec.events] == [BookingRegistered]
    with pytest.raises(DaySpecError, match="emitted"):
        spec.then_error(ErrorCode.BOOKING_NOT_FOUND)
    assert "b9" not in spec.day.bookings
    assert spec.day.version == 2
    assert len(spec.history()) == 2


def test_a_recorded_rejection_is_kept() -> None:
    def drift(day: ServiceDay, floor: FloorView, stamp: Stamp) -> Any:
        day._trigger(
            PolicyDriftDetected,
            stamp,
            booking_id="b1",
            hold_id="h1",
            kind="policy",
            details={},
            attempt=1,
        )
        return DriftRejected(error=PolicyDriftError("policy", "stale"))

    spec = DaySpec().given(registered("b1")).when(drift)
    spec.then_error(ErrorCode.POLICY_DRIFT, recorded=(PolicyDriftDetected,))
    with pytest.raises(DaySpecError, match="emitted"):
        spec.then_error(ErrorCode.POLICY_DRIFT)
    assert spec.day.version == 3
    assert "cmd-1" in spec.day.command_drifts


def test_then_events_fails_on_type_count_field_or_predicate() -> None:
    spec = DaySpec().when(register("b1"))
    spec.then_events(BookingRegistered)
    spec.then_events((BookingRegistered, {"booking_id": "b1"}))
    spec.then_events(lambda event: isinstance(event, BookingRegistered))
    with pytest.raises(DaySpecError, match="expected HoldPlaced"):
        spec.then_events(HoldPlaced)
    with pytest.raises(DaySpecError, match="expected 2 event"):
        spec.then_events(BookingRegistered, BookingRegistered)
    with pytest.raises(DaySpecError, match="booking_id is 'b1', expected 'b2'"):
        spec.then_events((BookingRegistered, {"booking_id": "b2"}))
    with pytest.raises(DaySpecError, match="predicate"):
        spec.then_events(lambda event: False)
    with pytest.raises(DaySpecError, match="the command succeeded"):
        spec.then_error(ErrorCode.BOOKING_EXISTS)
    with pytest.raises(DaySpecError, match="expected 0 event"):
        spec.then_no_events()


def test_then_error_fails_on_success_another_code_or_other_details() -> None:
    spec = DaySpec().given(registered("b1")).when(register("b1", 3))
    spec.then_error(ErrorCode.BOOKING_EXISTS, booking_id="b1", party_size=2)
    with pytest.raises(DaySpecError, match="got BOOKING_EXISTS"):
        spec.then_error(ErrorCode.BOOKING_NOT_FOUND)
    with pytest.raises(DaySpecError, match="party_size"):
        spec.then_error(ErrorCode.BOOKING_EXISTS, party_size=3)
    with pytest.raises(DaySpecError, match="the command failed"):
        spec.then_events()
    with pytest.raises(DaySpecError, match="expected a result"):
        _ = spec.result
    with pytest.raises(DaySpecError, match="succeeded"):
        spec.when(register("b2")).then_error(ErrorCode.BOOKING_EXISTS)


def test_then_booking_and_then_hold_check_fields() -> None:
    spec = DaySpec().given(registered("b1"), held("b1", "M1", hold_id="h1"))
    spec.then_booking("b1", status="pending", tables=())
    spec.then_hold("h1", status="live", tables=("M1",))
    with pytest.raises(DaySpecError, match="status is 'pending'"):
        spec.then_booking("b1", status="confirmed")
    with pytest.raises(DaySpecError, match="no hold"):
        spec.then_hold("h2")
    with pytest.raises(DaySpecError, match="no booking"):
        spec.then_booking("b2")


def test_then_needs_a_when_first() -> None:
    with pytest.raises(DaySpecError, match="when"):
        DaySpec().then_no_events()


def test_a_history_moves_to_another_spec_and_replays() -> None:
    spec = DaySpec().given(registered("b1", 4), registered("b2"))
    spec.when(assign("b1", "M1", "M2")).when(place("b2", "M3"))
    spec.then_replay_matches()
    again = DaySpec().given(*spec.history())
    assert again.day.bookings == spec.day.bookings
    assert again.day.holds == spec.day.holds
    with pytest.raises(ValueError, match="creation event"):
        again.given(spec.history()[0])


def test_replay_mismatch_is_reported() -> None:
    spec = DaySpec().given(registered("b1"))
    spec.day.bookings["b1"] = spec.day.bookings["b1"].model_copy(update={"party_size": 3})
    with pytest.raises(DaySpecError, match="replay differs in bookings"):
        spec.then_replay_matches()


def test_a_given_command_must_succeed() -> None:
    with pytest.raises(NotFoundError):
        DaySpec().given(step(assign("nobody", "M1")))


def test_the_sample_floor_is_built_through_the_layout() -> None:
    floor = sample_floor("r7")
    assert floor.restaurant_id == "r7"
    assert sorted(floor.zones) == ["bar", "main", "patio"]
    assert floor.is_connected(["M1", "M2", "M3"]) and not floor.is_connected(["M1", "M3"])
    assert not floor.tables["B2"].active
    assert floor.version > 1


def test_the_api_guide_example_runs() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text()
    (example,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.DOTALL) if "DaySpec(" in b]
    namespace: dict[str, Any] = {"__name__": "api_example"}
    exec(compile(example, "api.md", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 1
    tests[0]()

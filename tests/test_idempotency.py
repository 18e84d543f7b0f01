"""Idempotency (docs/domain.md §7 and the dedupe clarification of §16).

Two mechanisms: a re-sent command (same command id) returns its original result, and an
idempotency key (the caller's, or one derived from the request) binds a booking to a table set.
"""

from __future__ import annotations

import pytest

from seatledger.application.commands import CancelBooking, ChangePolicy, ExtendHold, ReleaseHold
from seatledger.application.errors import http_status
from seatledger.application.results import AssignmentResult, HoldView
from seatledger.application.testing import Scenario
from seatledger.domain.errors import ErrorCode
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day import (
    BookingClosed,
    HoldConfirmed,
    TablesAssigned,
    TablesUnassigned,
    derive_idempotency_key,
)
from tests.support import EVENING, assign, booking, confirm, floor, hold, position, unassign


@pytest.fixture
def s(seatledger_scenario: Scenario) -> Scenario:
    scenario = seatledger_scenario.at(EVENING)
    scenario.given(floor(), booking("b1"), booking("b4", party_size=4))
    return scenario


def result_of(s: Scenario) -> AssignmentResult:
    result = s.result
    assert isinstance(result, AssignmentResult)
    return result


# --- caller keys ------------------------------------------------------------------------------


def test_same_key_same_tables_returns_the_original_result(s: Scenario) -> None:
    original = result_of(s.when(assign("b4", "M1", "M2", idempotency_key="k-1")))
    s.then_events(TablesAssigned)
    # a new command (new command id) with the same key and tables, in another order
    replay = result_of(s.when(assign("b4", "M2", "M1", "M1", idempotency_key="k-1")))
    s.then_no_events()
    assert (replay.replayed, replay.changed) == (True, False)
    assert replay.idempotency_key == original.idempotency_key == "k-1"
    assert replay.members == original.members
    assert replay.table_ids == original.table_ids


def test_same_key_other_tables_is_idempotency_mismatch(s: Scenario) -> None:
    s.given(assign("b4", "M1", "M2", idempotency_key="k-1"))
    before = position(s.service)
    s.when(assign("b4", "M3", "M4", idempotency_key="k-1"))
    err = s.then_error(
        ErrorCode.IDEMPOTENCY_MISMATCH,
        booking_id="b4",
        idempotency_key="k-1",
        original_tables=["M1", "M2"],
        requested_tables=["M3", "M4"],
    )
    assert http_status(err) == 409
    assert position(s.service) == before
    assert s.service.get_booking("r1", "b4").table_ids == ["M1", "M2"]


def test_the_mismatch_is_not_swallowed_by_other_checks(s: Scenario) -> None:
    # the second request would also fail allocation (Z9 is unknown): the key check comes first
    # and its error reaches the caller (a defect of the source system swallowed it)
    s.given(assign("b4", "M1", "M2", idempotency_key="k-1"))
    s.when(assign("b4", "Z9", idempotency_key="k-1")).then_error(ErrorCode.IDEMPOTENCY_MISMATCH)


def test_keys_are_per_booking(s: Scenario) -> None:
    s.given(assign("b4", "M1", "M2", idempotency_key="shared"))
    result = result_of(s.when(assign("b1", "P5", idempotency_key="shared")))
    assert (result.replayed, result.table_ids) == (False, ["P5"])
    s.then_events(TablesAssigned)


def test_a_caller_key_stays_bound_after_the_tables_change(s: Scenario) -> None:
    original = result_of(s.when(assign("b1", "M1", idempotency_key="k-1")))
    s.given(unassign("b1"))
    replay = result_of(s.when(assign("b1", "M1", idempotency_key="k-1")))
    s.then_no_events()
    # the original result (the booking itself is pending now)
    assert replay.replayed and replay.table_ids == original.table_ids == ["M1"]
    assert replay.idempotency_key == "k-1"
    # the original ids, although the rows are gone from the read model (never invented)
    assert replay.members == original.members
    assert s.service.get_booking("r1", "b1").status == "pending"
    s.when(assign("b1", "M2", idempotency_key="k-1")).then_error(ErrorCode.IDEMPOTENCY_MISMATCH)


# --- confirm ----------------------------------------------------------------------------------


def test_confirm_replay_after_the_hold_was_consumed(s: Scenario) -> None:
    held = s.when(hold("b4", "M1", "M2")).result
    assert isinstance(held, HoldView)
    command = confirm("b4", held.hold_id, idempotency_key="k-1")
    original = result_of(s.when(command))
    s.then_events(HoldConfirmed)
    # the same command again (a lost reply), then a new command with the same key
    for again in (command, confirm("b4", held.hold_id, idempotency_key="k-1")):
        replay = result_of(s.when(again))
        s.then_no_events()  # the second is a new command: its ledger entry only
        assert replay.replayed is True
        assert (replay.hold_id, replay.source, replay.members) == (
            held.hold_id,
            "hold",
            original.members,
        )


def test_confirm_with_a_used_key_and_other_tables_is_a_mismatch(s: Scenario) -> None:
    first = s.when(hold("b4", "M1", "M2")).result
    s.given(confirm("b4", first.hold_id, idempotency_key="k-1"))
    second = s.when(hold("b4", "M3")).result
    s.when(confirm("b4", second.hold_id, idempotency_key="k-1"))
    s.then_error(
        ErrorCode.IDEMPOTENCY_MISMATCH, original_tables=["M1", "M2"], requested_tables=["M3"]
    )
    assert s.service.get_hold("r1", second.hold_id).status == "live"
    assert s.service.get_booking("r1", "b4").table_ids == ["M1", "M2"]


def test_a_key_used_by_a_manual_assignment_binds_confirms_too(s: Scenario) -> None:
    s.given(assign("b1", "M1", idempotency_key="k-1"))
    held = s.when(hold("b1", "M2")).result
    s.when(confirm("b1", held.hold_id, idempotency_key="k-1"))
    s.then_error(ErrorCode.IDEMPOTENCY_MISMATCH, original_tables=["M1"], requested_tables=["M2"])


# --- derived keys -----------------------------------------------------------------------------


def test_the_derived_key_is_the_documented_hash(s: Scenario) -> None:
    result = result_of(s.when(assign("b4", "M2", "M1")))
    window = s.service.get_booking("r1", "b4").window
    expected = derive_idempotency_key("r1", "b4", ("M1", "M2"), window, VenuePolicy().version)
    assert result.idempotency_key == expected
    assert expected.startswith("derived:")


def test_a_derived_key_replays_while_the_state_it_produced_lasts(s: Scenario) -> None:
    original = result_of(s.when(assign("b1", "M1")))
    replay = result_of(s.when(assign("b1", "M1")))
    s.then_no_events()
    assert replay.replayed and replay.members == original.members


def test_assign_unassign_assign_again_is_a_new_change(s: Scenario) -> None:
    first = result_of(s.when(assign("b1", "M1")))
    s.when(unassign("b1"))
    s.then_events(TablesUnassigned)
    again = result_of(s.when(assign("b1", "M1")))
    (event,) = s.then_events(TablesAssigned)
    assert (again.replayed, again.changed, again.status) == (False, True, "confirmed")
    # the same resulting state, hence the same derived key (dedupe keys may repeat) ...
    assert again.idempotency_key == first.idempotency_key
    # ... but a new assignment (ids are unique per change)
    assert again.members[0].assignment_id != first.members[0].assignment_id
    assert isinstance(event, TablesAssigned)
    assert event.command_id != ""
    assert s.service.get_booking("r1", "b1").status == "confirmed"


def test_a_policy_change_gives_a_new_derived_key(s: Scenario) -> None:
    first = result_of(s.when(assign("b1", "M1")))
    s.given(unassign("b1"), ChangePolicy(restaurant_id="r1", policy=VenuePolicy(slack_budget=5)))
    again = result_of(s.when(assign("b1", "M1")))
    assert again.idempotency_key != first.idempotency_key
    assert again.changed


# --- re-sent commands (same command id) --------------------------------------------------------


def test_a_resent_assignment_returns_its_result_even_after_later_changes(s: Scenario) -> None:
    command = assign("b4", "M1", "M2")
    original = result_of(s.when(command))
    s.given(assign("b4", "M3"))
    replay = result_of(s.when(command))
    s.then_nothing_written()
    assert replay.replayed and replay.table_ids == original.table_ids == ["M1", "M2"]


def test_a_resent_unassign_writes_once(s: Scenario) -> None:
    s.given(assign("b4", "M1", "M2", "M3"))
    command = unassign("b4", "M3")
    s.when(command)
    s.then_events(TablesUnassigned)
    s.given(assign("b4", "M3"))
    s.when(command)
    s.then_nothing_written()
    assert s.service.get_booking("r1", "b4").table_ids == ["M1", "M2", "M3"]


def test_a_resent_hold_placement_returns_the_same_hold(s: Scenario) -> None:
    command = hold("b1", "M1")
    first = s.when(command).result
    again = s.when(command).result
    s.then_nothing_written()
    assert again.hold_id == first.hold_id
    # and it did not count against the rate limit
    for _ in range(4):
        s.when(hold("b1", "M1")).result  # noqa: B018 - must succeed
    s.when(hold("b1", "M1")).then_error(ErrorCode.HOLD_RATE_LIMITED)


def test_a_resent_cancel_writes_once(s: Scenario) -> None:
    s.given(assign("b1", "M1"))
    command = CancelBooking(restaurant_id="r1", booking_id="b1")
    s.when(command)
    s.then_events(BookingClosed)
    replay = result_of(s.when(command))
    s.then_nothing_written()
    assert replay.replayed and replay.status == "cancelled"


# --- re-sent hold commands and replayed results -------------------------------------------------


def test_a_replayed_result_keeps_its_original_assignment_ids(s: Scenario) -> None:
    """The rows of the original result are gone after the unassign; the replay still returns
    the ids it returned the first time (they are the event's, never invented)."""
    original = result_of(s.when(assign("b4", "M1", "M2", idempotency_key="k-9")))
    s.given(unassign("b4"))
    replay = result_of(s.when(assign("b4", "M1", "M2", idempotency_key="k-9")))
    s.then_no_events()
    assert replay.replayed
    assert [m.assignment_id for m in replay.members] == [m.assignment_id for m in original.members]
    assert all(m.assignment_id for m in replay.members)


def test_resending_a_release_or_an_extension_returns_the_original_answer(s: Scenario) -> None:
    held = s.when(hold("b1", "M1")).result
    assert isinstance(held, HoldView)
    extend = ExtendHold(
        restaurant_id="r1", hold_id=held.hold_id, ttl_seconds=600, actor_id="host-1"
    )
    first = s.when(extend).result
    again = s.when(extend).result
    s.then_nothing_written()
    assert first.extended and again.extended
    assert again.hold.expires_at == first.hold.expires_at

    release = ReleaseHold(restaurant_id="r1", hold_id=held.hold_id, actor_id="host-1")
    assert s.when(release).result.released
    resent = s.when(release).result
    s.then_nothing_written()
    assert (resent.released, resent.status) == (True, "released")
    other = ReleaseHold(restaurant_id="r1", hold_id=held.hold_id, actor_id="host-1")
    assert (s.when(other).result.released, s.result.status) == (False, "released")

"""Manual assignment, unassignment and closing bookings (docs/domain.md §6 and §16).

The allocation checks are asserted by code and by the details an operator acts on.
"""

from __future__ import annotations

from typing import Any

import pytest

from seatledger.application.commands import CancelBooking, CompleteBooking, MarkNoShow
from seatledger.application.errors import http_status
from seatledger.application.results import AssignmentResult, HoldView
from seatledger.application.testing import Scenario
from seatledger.domain.errors import ErrorCode
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day import BookingClosed, TablesAssigned, TablesUnassigned
from tests.support import EVENING, assign, booking, confirm, floor, hold, unassign

CLOSERS = {
    "cancelled": CancelBooking,
    "no_show": MarkNoShow,
    "completed": CompleteBooking,
}


@pytest.fixture
def s(seatledger_scenario: Scenario) -> Scenario:
    """r1 with b1 (2 at 19:00), b2 (2 at 19:30), b4 (4 at 19:00), b8 (8 at 19:00)."""
    scenario = seatledger_scenario.at(EVENING)
    scenario.given(
        floor(),
        booking("b1"),
        booking("b2", start="19:30"),
        booking("b4", party_size=4),
        booking("b8", party_size=8),
    )
    return scenario


def assigned(s: Scenario, booking_id: str, *tables: str, **extra: Any) -> AssignmentResult:
    result = s.when(assign(booking_id, *tables, **extra)).result
    assert isinstance(result, AssignmentResult)
    return result


# --- manual assignment ------------------------------------------------------------------------


def test_assign_a_table(s: Scenario) -> None:
    result = assigned(s, "b1", "M1", actor_id="host-3")
    (event,) = s.then_events(TablesAssigned)
    assert isinstance(event, TablesAssigned)
    assert event.actor_id == "host-3"
    assert (event.change.source, event.change.hold_id, event.replace) == ("manual", None, False)
    assert result.status == "confirmed"
    assert result.table_ids == ["M1"]
    assert result.zone_id == "main"
    assert result.merge_group_id is None  # one table is no merge group
    assert (result.changed, result.replayed, result.source) == (True, False, "manual")
    (member,) = result.members
    assert member.table_id == "M1" and member.booking_id == "b1"
    assert member.assignment_id
    assert (member.start_at, member.end_at) == (result.window.start, result.window.end)


def test_duplicate_table_ids_are_collapsed_and_results_sorted(s: Scenario) -> None:
    result = assigned(s, "b4", "M2", "M1", "M2", "M1")
    assert result.table_ids == ["M1", "M2"]
    assert [m.table_id for m in result.members] == ["M1", "M2"]
    (event,) = s.then_events(TablesAssigned)
    assert isinstance(event, TablesAssigned)
    assert event.change.requested == ("M1", "M2")
    assert result.merge_group_id is not None
    assert {m.merge_group_id for m in result.members} == {result.merge_group_id}


def test_assigning_adds_to_the_current_set_and_keeps_ids(s: Scenario) -> None:
    first = assigned(s, "b4", "M1", "M2")
    second = assigned(s, "b4", "M3")
    assert second.table_ids == ["M1", "M2", "M3"]
    ids = {m.table_id: m.assignment_id for m in second.members}
    assert ids["M1"] == first.members[0].assignment_id
    assert ids["M2"] == first.members[1].assignment_id
    assert second.merge_group_id == first.merge_group_id
    s.then_events((TablesAssigned, {"replace": False}))


def test_assigning_tables_the_booking_already_has_is_a_no_op(s: Scenario) -> None:
    assigned(s, "b4", "M1", "M2")
    again = assigned(s, "b4", "M2", idempotency_key="another-key")
    s.then_no_events()
    assert (again.changed, again.replayed, again.table_ids) == (False, False, ["M1", "M2"])


def test_replace_moves_the_booking_in_one_change(s: Scenario) -> None:
    assigned(s, "b4", "M1", "M2")
    moved = assigned(s, "b4", "P1", replace=True)
    (event,) = s.then_events((TablesAssigned, {"replace": True}))
    assert isinstance(event, TablesAssigned)
    assert (event.change.added, event.change.removed) == (("P1",), ("M1", "M2"))
    assert (moved.table_ids, moved.zone_id, moved.merge_group_id) == (["P1"], "patio", None)
    assigned(s, "b1", "M1")  # the old tables are free


def test_tables_required(s: Scenario) -> None:
    s.when(assign("b1")).then_error(ErrorCode.TABLES_REQUIRED)


def test_table_not_found_names_the_unknown_tables(s: Scenario) -> None:
    s.when(assign("b4", "M1", "Z9", "Z8")).then_error(
        ErrorCode.TABLE_NOT_FOUND, tables=["Z8", "Z9"], restaurant_id="r1"
    )


def test_table_inactive(s: Scenario) -> None:
    s.when(assign("b1", "B2")).then_error(ErrorCode.TABLE_INACTIVE, tables=["B2"])


def test_zone_mismatch(s: Scenario) -> None:
    err = s.when(assign("b4", "M6", "P1")).then_error(ErrorCode.ZONE_MISMATCH)
    assert err.details["zones"] == ["main", "patio"]
    assert err.details["tables"] == {"M6": "main", "P1": "patio"}


def test_zone_locked_unless_replacing(s: Scenario) -> None:
    assigned(s, "b4", "M1", "M2")
    s.when(assign("b4", "P1")).then_error(
        ErrorCode.ZONE_LOCKED,
        booking_zone="main",
        requested_zone="patio",
        current_tables=["M1", "M2"],
    )
    assert assigned(s, "b4", "P1", replace=True).table_ids == ["P1"]


def test_a_fixed_table_cannot_be_combined(s: Scenario) -> None:
    err = s.when(assign("b8", "M7", "M6", "M5")).then_error(ErrorCode.TABLE_IMMUTABLE)
    assert err.details == {"fixed_tables": ["M7"], "tables": ["M5", "M6", "M7"]}
    # nor added to a booking that already has a table
    assigned(s, "b4", "M7")
    s.when(assign("b4", "M6")).then_error(ErrorCode.TABLE_IMMUTABLE, fixed_tables=["M7"])


def test_a_combination_must_be_connected(s: Scenario) -> None:
    err = s.when(assign("b4", "M1", "M3")).then_error(ErrorCode.ADJACENCY_INVALID)
    assert err.details == {"tables": ["M1", "M3"], "edges": []}


def test_two_disjoint_adjacent_pairs_are_not_connected(s: Scenario) -> None:
    s.when(assign("b8", "M1", "M2", "M4", "M5"))
    err = s.then_error(ErrorCode.ADJACENCY_INVALID, tables=["M1", "M2", "M4", "M5"])
    assert err.details["edges"] == [["M1", "M2"], ["M4", "M5"]]
    # a chain through the gap is connected
    assert assigned(s, "b8", "M2", "M3", "M4", "M5").table_ids == ["M2", "M3", "M4", "M5"]


def test_a_host_may_waive_adjacency(s: Scenario) -> None:
    result = assigned(s, "b8", "M1", "M2", "M4", "M5", require_adjacency=False)
    assert result.table_ids == ["M1", "M2", "M4", "M5"]


def test_adjacency_can_depend_on_party_size(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(
        floor(policy=VenuePolicy(adjacency_min_party_size=4)),
        booking("b3", party_size=3),
        booking("b4", party_size=4),
    )
    assert s.when(assign("b3", "M1", "M3")).result.table_ids == ["M1", "M3"]
    s.when(assign("b4", "M4", "M6")).then_error(ErrorCode.ADJACENCY_INVALID)


def test_capacity_insufficient(s: Scenario) -> None:
    s.when(assign("b8", "P1")).then_error(
        ErrorCode.CAPACITY_INSUFFICIENT, capacity=4, party_size=8, tables=["P1"]
    )
    # the check is on the resulting set: adding P2 to P1 is enough
    assigned(s, "b8", "P1", "P2")


def test_slack_budget_exceeded(s: Scenario) -> None:
    s.given(booking("solo", party_size=1))
    s.when(assign("solo", "M8"))
    s.then_error(ErrorCode.SLACK_BUDGET_EXCEEDED, slack=5, slack_budget=4, party_size=1)
    assigned(s, "b1", "M8")  # 6 seats for 2: slack 4 is within the budget
    s.when(assign("b1", "P1", "P2", replace=True))
    s.then_error(ErrorCode.SLACK_BUDGET_EXCEEDED, slack=6, slack_budget=4, capacity=8)


def test_assignment_conflict_names_booking_tables_and_window(s: Scenario) -> None:
    assigned(s, "b1", "M1")
    err = s.when(assign("b2", "M2", "M1")).then_error(ErrorCode.ASSIGNMENT_CONFLICT)
    assert err.details == {
        "conflicts": [
            {
                "booking_id": "b1",
                "tables": ["M1"],
                "window": {"start": "2026-11-24T19:00:00Z", "end": "2026-11-24T20:05:00Z"},
            }
        ],
        "window": {"start": "2026-11-24T19:30:00Z", "end": "2026-11-24T20:35:00Z"},
    }
    assert "b1" in err.message and "M1" in err.message
    assert http_status(err) == 409


def test_touching_windows_share_a_table(s: Scenario) -> None:
    s.given(booking("next", start="20:05"), booking("overlap", start="20:04"))
    assigned(s, "b1", "M1")  # [19:00, 20:05)
    assert assigned(s, "next", "M1").table_ids == ["M1"]
    s.when(assign("overlap", "M1")).then_error(ErrorCode.ASSIGNMENT_CONFLICT)


def test_a_live_hold_of_another_booking_blocks_a_manual_assignment(s: Scenario) -> None:
    held = s.when(hold("b1", "M1")).result
    assert isinstance(held, HoldView)
    err = s.when(assign("b2", "M1")).then_error(ErrorCode.HOLD_CONFLICT)
    assert [h["hold_id"] for h in err.details["holds"]] == [held.hold_id]
    assert err.details["holds"][0]["booking_id"] == "b1"


# --- unassign -------------------------------------------------------------------------------


def test_unassign_some_tables(s: Scenario) -> None:
    assigned(s, "b4", "M1", "M2", "M3")
    result = s.when(unassign("b4", "M3")).result
    (event,) = s.then_events(TablesUnassigned)
    assert isinstance(event, TablesUnassigned)
    assert (event.change.source, event.change.removed, event.change.tables) == (
        "unassign",
        ("M3",),
        ("M1", "M2"),
    )
    assert (result.status, result.table_ids, result.source) == (
        "confirmed",
        ["M1", "M2"],
        "unassign",
    )


def test_a_booking_left_without_tables_goes_back_to_pending(s: Scenario) -> None:
    assigned(s, "b4", "M1", "M2")
    result = s.when(unassign("b4")).result
    s.then_events(TablesUnassigned)
    assert (result.status, result.table_ids, result.zone_id, result.merge_group_id) == (
        "pending",
        [],
        None,
        None,
    )
    assert result.members == []
    view = s.service.get_booking("r1", "b4")
    assert (view.status, view.table_ids) == ("pending", [])
    assigned(s, "b1", "M1")  # freed


def test_unassigning_tables_the_booking_does_not_have_writes_nothing(s: Scenario) -> None:
    s.when(unassign("b1", "M1"))  # a booking with no tables at all
    s.then_no_events()
    assert (s.result.changed, s.result.status) == (False, "pending")
    s.when(unassign("b1"))
    s.then_no_events()
    assigned(s, "b1", "M1")
    s.when(unassign("b1", "M2", "P1"))
    s.then_no_events()
    assert s.result.table_ids == ["M1"]


def test_unassign_of_an_unknown_booking(s: Scenario) -> None:
    s.when(unassign("ghost")).then_error(
        ErrorCode.BOOKING_NOT_FOUND, booking_id="ghost", restaurant_id="r1"
    )


# --- closing bookings -------------------------------------------------------------------------


@pytest.mark.parametrize("status", sorted(CLOSERS))
def test_closing_frees_tables_immediately_and_releases_holds(s: Scenario, status: str) -> None:
    assigned(s, "b4", "M1", "M2")
    held = s.when(hold("b4", "M3")).result
    close = CLOSERS[status](restaurant_id="r1", booking_id="b4", actor_id="host-1")
    result = s.when(close).result
    (event,) = s.then_events((BookingClosed, {"status": status, "released_holds": (held.hold_id,)}))
    assert isinstance(event, BookingClosed)
    assert event.change is not None
    assert (event.change.source, event.change.tables, event.change.removed) == (
        "cancel",
        (),
        ("M1", "M2"),
    )
    assert (result.status, result.table_ids) == (status, [])
    # no cleanup job: another booking takes the tables at once (a defect of docs/domain.md §14)
    assert assigned(s, "b2", "M1", "M2").table_ids == ["M1", "M2"]
    assert s.when(hold("b1", "M3")).result.table_ids == ["M3"]
    assert s.service.get_hold("r1", held.hold_id).status == "released"
    s.when(confirm("b4", held.hold_id)).then_error(ErrorCode.HOLD_NOT_ACTIVE, status="released")


def test_closing_a_booking_without_tables_records_no_change(s: Scenario) -> None:
    s.when(CancelBooking(restaurant_id="r1", booking_id="b1"))
    s.then_events((BookingClosed, {"change": None, "released_holds": ()}))
    assert s.result.changed is False


def test_a_closed_booking_cannot_take_tables(s: Scenario) -> None:
    s.given(MarkNoShow(restaurant_id="r1", booking_id="b1"))
    s.when(assign("b1", "M1")).then_error(
        ErrorCode.BOOKING_CLOSED, booking_id="b1", status="no_show"
    )
    s.when(CancelBooking(restaurant_id="r1", booking_id="b1")).then_error(
        ErrorCode.BOOKING_CLOSED, status="no_show"
    )
    # closing it again the same way is an idempotent no-op
    s.when(MarkNoShow(restaurant_id="r1", booking_id="b1"))
    s.then_no_events()
    assert s.result.replayed is True

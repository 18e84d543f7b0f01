"""The service day's rules for table sets (docs/domain.md §6, §7, §16): assign, unassign,
close, idempotency and derived ids, on the aggregate alone. (Confirm, auto-assign and drift
are tested at the service level for now.)"""

from __future__ import annotations

import pytest

from seatledger.application.testing import (
    DaySpec,
    assigned,
    closed,
    held,
    registered,
    released,
    sample_floor,
    unassigned,
)
from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.errors import ErrorCode
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day import (
    BookingClosed,
    ChangeEvent,
    ClosedStatus,
    HoldPlaced,
    HoldReleased,
    TableChange,
    TablesAssigned,
    TablesUnassigned,
)
from seatledger.domain.values import Window
from tests.day_support import assign, at, close, expire, place, register, unassign

WINDOW = Window(start=at("19:00"), end=at("20:05"))


def change_of(spec: DaySpec) -> TableChange:
    """The table change the last command recorded (it must have recorded one)."""
    (event,) = spec.then_events(lambda e: isinstance(e, ChangeEvent | BookingClosed))
    change = event.change if isinstance(event, ChangeEvent | BookingClosed) else None
    assert change is not None, f"{type(event).__name__} records no change"
    return change


def ids(change: TableChange) -> dict[str, str]:
    return {m.table_id: m.assignment_id for m in change.members}


# --- assign ---------------------------------------------------------------------------------


def test_assigning_adds_to_the_bookings_tables() -> None:
    spec = DaySpec().given(registered("b1"), assigned("b1", "M1"))
    first = spec.day.bookings["b1"].members
    spec.when(assign("b1", "M2"))
    spec.then_events((TablesAssigned, {"replace": False}))
    change = change_of(spec)
    assert (change.requested, change.tables) == (("M2",), ("M1", "M2"))
    assert (change.added, change.removed) == (("M2",), ())
    assert (change.zone_id, change.status, change.source) == ("main", "confirmed", "manual")
    assert change.window == WINDOW and change.hold_id is None
    assert change.members[0] == first[0]  # M1 keeps its assignment id
    assert change.merge_group_id is not None and change.key_derived
    spec.then_booking("b1", tables=("M1", "M2"), status="confirmed", zone_id="main")


def test_replacing_makes_the_set_exactly_the_given_tables_in_any_zone() -> None:
    spec = DaySpec().given(registered("b1"), assigned("b1", "M1", "M2"))
    spec.when(assign("b1", "P5", replace=True))
    spec.then_events((TablesAssigned, {"replace": True}))
    change = change_of(spec)
    assert (change.tables, change.added, change.removed) == (("P5",), ("P5",), ("M1", "M2"))
    assert (change.zone_id, change.merge_group_id) == ("patio", None)
    spec.then_booking("b1", tables=("P5",), zone_id="patio", merge_group_id=None)


def test_adding_a_table_of_another_zone_is_zone_locked() -> None:
    spec = DaySpec().given(registered("b1"), assigned("b1", "M1"))
    spec.when(assign("b1", "P5"))
    spec.then_error(ErrorCode.ZONE_LOCKED, booking_zone="main", requested_zone="patio")
    spec.then_booking("b1", tables=("M1",))


@pytest.mark.parametrize(
    ("size", "tables", "code"),
    [
        (2, (), ErrorCode.TABLES_REQUIRED),
        (2, ("X9",), ErrorCode.TABLE_NOT_FOUND),
        (2, ("B2",), ErrorCode.TABLE_INACTIVE),
        (4, ("M1", "P1"), ErrorCode.ZONE_MISMATCH),
        (6, ("M1", "M7"), ErrorCode.TABLE_IMMUTABLE),
        (4, ("M1", "M3"), ErrorCode.ADJACENCY_INVALID),
        (4, ("M1",), ErrorCode.CAPACITY_INSUFFICIENT),
        (1, ("M8",), ErrorCode.SLACK_BUDGET_EXCEEDED),
    ],
)
def test_the_allocation_checks(size: int, tables: tuple[str, ...], code: ErrorCode) -> None:
    spec = DaySpec().given(registered("b1", size)).when(assign("b1", *tables))
    spec.then_error(code)
    spec.then_booking("b1", tables=(), status="pending")


def test_adjacency_is_required_as_the_command_or_the_policy_says() -> None:
    spec = DaySpec().given(registered("b1", 4))
    spec.when(assign("b1", "M1", "M3", require_adjacency=False)).then_events(TablesAssigned)
    relaxed = sample_floor(policy=VenuePolicy(adjacency_min_party_size=5))
    spec = DaySpec(floor=relaxed).given(registered("b1", 4))
    spec.when(assign("b1", "M1", "M3")).then_events(TablesAssigned)
    spec = DaySpec(floor=relaxed).given(registered("b1", 6))
    spec.when(assign("b1", "M1", "M3", "M5")).then_error(ErrorCode.ADJACENCY_INVALID)


def test_duplicate_table_ids_collapse_and_sort() -> None:
    spec = DaySpec().given(registered("b1", 4)).when(assign("b1", "M2", "M1", "M2"))
    assert change_of(spec).requested == ("M1", "M2")


def test_assigning_tables_the_booking_already_has_writes_nothing() -> None:
    spec = DaySpec().given(registered("b1"), assigned("b1", "M1", idempotency_key="k1"))
    outcome = spec.when(assign("b1", "M1")).then_no_events()
    assert outcome.change is None and outcome.booking.tables == ("M1",)


def test_a_closed_booking_cannot_be_assigned() -> None:
    spec = DaySpec().given(registered("b1"), closed("b1", "no_show"))
    spec.when(assign("b1", "M1")).then_error(ErrorCode.BOOKING_CLOSED, status="no_show")


# --- conflicts with other bookings ----------------------------------------------------------


def test_another_bookings_assignment_in_an_overlapping_window_conflicts() -> None:
    spec = DaySpec().given(registered("b1"), registered("b2", 2, "19:30"), assigned("b2", "M1"))
    spec.when(assign("b1", "M2", "M1"))
    error = spec.then_error(ErrorCode.ASSIGNMENT_CONFLICT)
    assert error.details["conflicts"] == [
        {
            "booking_id": "b2",
            "tables": ["M1"],
            "window": {"start": "2026-11-24T19:30:00Z", "end": "2026-11-24T20:35:00Z"},
        }
    ]


@pytest.mark.parametrize("start", ["20:05", "17:55"])
def test_touching_windows_share_a_table(start: str) -> None:
    spec = DaySpec().given(registered("b1"), registered("b2", 2, start), assigned("b2", "M1"))
    spec.when(assign("b1", "M1")).then_events(TablesAssigned)


@pytest.mark.parametrize("status", ["cancelled", "no_show", "completed"])
def test_a_closed_bookings_tables_are_free(status: ClosedStatus) -> None:
    spec = DaySpec().given(registered("b1"), registered("b2"), assigned("b2", "M1"))
    spec.given(closed("b2", status))
    spec.when(assign("b1", "M1")).then_events(TablesAssigned)


def test_another_bookings_live_hold_blocks_an_assignment() -> None:
    spec = DaySpec().given(registered("b1"), registered("b2"), held("b2", "M1", hold_id="h2"))
    spec.when(assign("b1", "M1"))
    error = spec.then_error(ErrorCode.HOLD_CONFLICT)
    assert [h["hold_id"] for h in error.details["holds"]] == ["h2"]
    spec.after(seconds=180).when(assign("b1", "M1")).then_events(TablesAssigned)


def test_a_bookings_own_hold_does_not_block_its_assignment() -> None:
    spec = DaySpec().given(registered("b1"), held("b1", "M1"))
    spec.when(assign("b1", "M1")).then_events(TablesAssigned)


# --- unassign -------------------------------------------------------------------------------


def test_unassigning_some_tables_keeps_the_rest() -> None:
    spec = DaySpec().given(registered("b1"), assigned("b1", "M1", "M2"))
    before = {m.table_id: m.assignment_id for m in spec.day.bookings["b1"].members}
    spec.when(unassign("b1", "M2")).then_events(TablesUnassigned)
    change = change_of(spec)
    assert (change.requested, change.tables, change.removed) == (("M2",), ("M1",), ("M2",))
    assert (change.status, change.zone_id, change.source) == ("confirmed", "main", "unassign")
    assert ids(change) == {"M1": before["M1"]}
    assert change.merge_group_id is None and change.idempotency_key is None


def test_unassigning_everything_sends_the_booking_back_to_pending() -> None:
    spec = DaySpec().given(registered("b1"), assigned("b1", "M1", "M2"))
    spec.when(unassign("b1")).then_events(TablesUnassigned)
    change = change_of(spec)
    assert (change.tables, change.removed, change.zone_id) == ((), ("M1", "M2"), None)
    spec.then_booking("b1", status="pending", tables=(), members=(), zone_id=None)


def test_unassigning_tables_the_booking_does_not_have_writes_nothing() -> None:
    spec = DaySpec().given(registered("b1"), registered("b2"), assigned("b1", "M1"))
    assert spec.when(unassign("b1", "M3")).then_no_events().change is None
    assert spec.when(unassign("b2")).then_no_events().change is None
    spec.when(unassign("b9")).then_error(ErrorCode.BOOKING_NOT_FOUND, booking_id="b9")


def test_unassigned_tables_are_free_for_others() -> None:
    spec = DaySpec().given(registered("b1"), registered("b2"), assigned("b1", "M1"))
    spec.given(unassigned("b1"))
    spec.when(assign("b2", "M1")).then_events(TablesAssigned)


# --- closing a booking ----------------------------------------------------------------------


def test_cancelling_frees_the_tables_and_releases_the_live_holds() -> None:
    spec = DaySpec().given(
        registered("b1", 4),
        registered("b2"),
        assigned("b1", "M1", "M2"),
        held("b1", "M4", hold_id="h-z"),
        held("b1", "M3", hold_id="h-a"),
        held("b1", "M5", hold_id="h-gone"),
        released("h-gone"),
        held("b2", "M6", hold_id="h-b2"),
    )
    spec.when(close("b1", "cancelled"), command_id="c1")
    spec.then_events(
        (
            BookingClosed,
            {"booking_id": "b1", "status": "cancelled", "released_holds": ("h-a", "h-z")},
        )
    )
    change = change_of(spec)
    assert (change.tables, change.removed) == ((), ("M1", "M2"))
    assert (change.status, change.source, change.zone_id) == ("cancelled", "cancel", None)
    spec.then_booking("b1", status="cancelled", tables=(), members=())
    spec.then_hold("h-a", status="released", closed_by="c1")
    spec.then_hold("h-b2", status="live")


@pytest.mark.parametrize("status", ["no_show", "completed"])
def test_closing_a_booking_without_tables_records_no_change(status: ClosedStatus) -> None:
    spec = DaySpec().given(registered("b1"), held("b1", "M1", hold_id="h1"))
    spec.when(close("b1", status))
    spec.then_events((BookingClosed, {"status": status, "change": None, "released_holds": ("h1",)}))
    spec.then_booking("b1", status=status)


def test_closing_again_is_a_replay_but_another_ending_is_refused() -> None:
    spec = DaySpec().given(registered("b1"), assigned("b1", "M1"))
    spec.when(close("b1", "completed"), command_id="c1").then_events(BookingClosed)
    replay = spec.when(close("b1", "completed"), command_id="c1").then_no_events()
    assert replay.replayed and replay.change == change_of_history(spec)
    assert spec.when(close("b1", "completed")).then_no_events().replayed
    spec.when(close("b1", "cancelled")).then_error(ErrorCode.BOOKING_CLOSED, status="completed")


def change_of_history(spec: DaySpec) -> TableChange | None:
    last = spec.history()[-1]
    assert isinstance(last, BookingClosed)
    return last.change


def test_closing_an_unknown_booking_is_not_found() -> None:
    spec = DaySpec().when(close("b9"))
    spec.then_error(ErrorCode.BOOKING_NOT_FOUND, booking_id="b9")


# --- idempotency ----------------------------------------------------------------------------


def test_a_callers_key_returns_the_original_result_for_good() -> None:
    spec = DaySpec().given(registered("b1"))
    original = spec.when(assign("b1", "M1", key="k1")).then_events(TablesAssigned)
    spec.given(unassigned("b1"))
    outcome = spec.when(assign("b1", "M1", key="k1")).then_no_events()
    assert outcome.replayed and outcome.change == change_of_events(original)
    spec.then_booking("b1", tables=())


def change_of_events(events: list[DomainEvent]) -> TableChange:
    (event,) = events
    assert isinstance(event, TablesAssigned)
    return event.change


def test_a_key_reused_for_other_tables_is_a_mismatch() -> None:
    spec = DaySpec().given(registered("b1"), assigned("b1", "M1", idempotency_key="k1"))
    spec.when(assign("b1", "M2", key="k1"))
    spec.then_error(
        ErrorCode.IDEMPOTENCY_MISMATCH,
        booking_id="b1",
        idempotency_key="k1",
        original_tables=["M1"],
        requested_tables=["M2"],
    )
    spec.then_booking("b1", tables=("M1",))


def test_keys_belong_to_one_booking() -> None:
    spec = DaySpec().given(
        registered("b1"), registered("b2"), assigned("b1", "M1", idempotency_key="k1")
    )
    spec.when(assign("b2", "M2", key="k1")).then_events(TablesAssigned)


def test_a_derived_key_only_replays_while_its_state_stands() -> None:
    spec = DaySpec().given(registered("b1"))
    spec.when(assign("b1", "M1")).then_events(TablesAssigned)
    assert change_of(spec).key_derived
    assert spec.when(assign("b1", "M1")).then_no_events().replayed
    spec.given(unassigned("b1"))
    spec.when(assign("b1", "M1")).then_events(TablesAssigned)


def test_a_re_sent_command_returns_its_original_change() -> None:
    spec = DaySpec().given(registered("b1", 4))
    spec.when(assign("b1", "M1", "M2"), command_id="a1").then_events(TablesAssigned)
    first = change_of(spec)
    replay = spec.when(assign("b1", "M5", "M6"), command_id="a1").then_no_events()
    assert replay.replayed and replay.change == first
    replay = spec.when(unassign("b1"), command_id="a1").then_no_events()
    assert replay.change == first
    spec.then_booking("b1", tables=("M1", "M2"))


# --- derived ids ----------------------------------------------------------------------------


def busy_day() -> DaySpec:
    spec = DaySpec().given(
        registered("b1", 4),
        registered("b2"),
        registered("b3", 2, "21:00"),
        assigned("b1", "M1", "M2"),
        held("b2", "M3", hold_id="h2", ttl_seconds=60),
    )
    spec.after(seconds=30).when(place("b3", "M3"), command_id="p3")
    spec.when(assign("b1", "M3", key="grow"))
    spec.when(unassign("b1", "M1"))
    spec.after(minutes=2).when(expire())
    spec.when(close("b3"))
    spec.when(register("b4", 2, "12:30"))
    return spec


def test_a_replay_of_the_history_rebuilds_the_same_state() -> None:
    spec = busy_day()
    replayed = spec.then_replay_matches()
    assert replayed.bookings["b1"].members == spec.day.bookings["b1"].members
    assert replayed.idempotency == spec.day.idempotency


def test_the_same_history_and_command_give_the_same_ids() -> None:
    one, two = busy_day(), busy_day()
    assert [e.model_dump() for e in one.history()] == [e.model_dump() for e in two.history()]
    one.when(assign("b2", "M5", "M6"), command_id="x")
    two.when(assign("b2", "M5", "M6"), command_id="x")
    assert change_of(one).members == change_of(two).members
    assert change_of(one).merge_group_id == change_of(two).merge_group_id


def test_hold_ids_derive_from_the_day_and_the_command_id() -> None:
    spec = DaySpec().given(registered("b1"))
    hold = spec.when(place("b1", "M1"), command_id="p1").result
    assert hold.hold_id == spec.hold_id("p1") != spec.hold_id("p2")
    other_day = DaySpec(restaurant_id="r2").given(registered("b1"))
    assert other_day.when(place("b1", "M1"), command_id="p1").result.hold_id != hold.hold_id


def test_assignment_and_merge_group_ids_survive_growth_but_not_a_new_start() -> None:
    spec = DaySpec().given(registered("b1", 4))
    spec.when(assign("b1", "M1", "M2"))
    first = change_of(spec)
    spec.when(assign("b1", "M3"))
    grown = change_of(spec)
    assert ids(grown)["M1"] == ids(first)["M1"] and ids(grown)["M2"] == ids(first)["M2"]
    assert grown.merge_group_id == first.merge_group_id
    assert len(set(ids(grown).values())) == 3
    spec.given(unassigned("b1"))
    spec.when(assign("b1", "M1", "M2"))
    again = change_of(spec)
    assert ids(again)["M1"] != ids(first)["M1"]
    assert again.merge_group_id != first.merge_group_id


def test_replaced_holds_are_released_in_the_replay_too() -> None:
    spec = DaySpec().given(registered("b1"), held("b1", "M1", hold_id="h1"))
    spec.when(place("b1", "M2", replaces_hold_id="h1")).then_events(HoldPlaced, HoldReleased)
    assert spec.then_replay_matches().holds["h1"].status == "released"

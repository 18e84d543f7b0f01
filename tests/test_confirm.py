"""Confirm hold (docs/domain.md §6): the success path and the order of its ten checks.

Each order test builds a situation in which two checks would fail and asserts that the earlier
one wins; where it is cheap, a control then removes the first failure and shows the second one
was real. HOLD_EMPTY and HOLD_METADATA_INCOMPLETE cannot be produced through the API (every
hold the service places has tables and a full snapshot), so they are tested twice: on the
aggregate with a hand-built ``HoldState``, and through the service on a recorded history that
holds such a hold (see ``tests.support.recorded_hold``).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from seatledger.application.commands import ChangePolicy, CreateRestaurant, DefineTable, ReleaseHold
from seatledger.application.errors import http_status
from seatledger.application.results import HoldView
from seatledger.application.testing import Scenario
from seatledger.domain.aggregate import Stamp
from seatledger.domain.errors import ErrorCode, HoldError, SeatLedgerError
from seatledger.domain.layout import FloorView, Table, edge
from seatledger.domain.policy import VenuePolicy, block_window
from seatledger.domain.service_day import (
    AutomationContext,
    ConfirmRequest,
    DriftRejected,
    HoldConfirmed,
    HoldFacts,
    HoldState,
    PolicyDriftDetected,
    ServiceDay,
    confirm_hold,
)
from tests.support import (
    DAY,
    EVENING,
    assign,
    booking,
    confirm,
    floor,
    hold,
    other_floor,
    recorded_hold,
)

T0 = datetime.fromisoformat(EVENING)


@pytest.fixture
def s(seatledger_scenario: Scenario) -> Scenario:
    """r1 with b1, b2 (2 at 19:00) and b4 (4 at 19:00); r2 with x1 (2 at 19:00)."""
    scenario = seatledger_scenario.at(EVENING)
    scenario.given(
        floor(),
        other_floor("r2"),
        booking("b1"),
        booking("b2"),
        booking("b4", party_size=4),
        booking("x1", restaurant_id="r2"),
    )
    return scenario


def place(s: Scenario, booking_id: str, *tables: str, restaurant_id: str = "r1") -> HoldView:
    result = s.when(hold(booking_id, *tables, restaurant_id=restaurant_id)).result
    assert isinstance(result, HoldView)
    return result


# --- success ----------------------------------------------------------------------------------


def test_confirm_assigns_the_held_tables_and_consumes_the_hold(s: Scenario) -> None:
    held = place(s, "b4", "M2", "M1")
    s.after(seconds=30).when(confirm("b4", held.hold_id, actor_id="host-7"))
    (event,) = s.then_events(HoldConfirmed)
    assert isinstance(event, HoldConfirmed)
    assert event.hold_id == held.hold_id
    assert event.hold_tables == ("M1", "M2")
    assert event.zone_id == "main"
    assert event.expires_at == held.expires_at
    assert event.actor_id == "host-7"
    change = event.change
    assert (change.tables, change.added, change.removed) == (("M1", "M2"), ("M1", "M2"), ())
    assert (change.source, change.status, change.hold_id) == ("hold", "confirmed", held.hold_id)
    assert change.merge_group_id is not None
    assert change.idempotency_key is not None and change.idempotency_key.startswith("derived:")

    result = s.result
    assert (result.status, result.table_ids, result.changed, result.replayed) == (
        "confirmed",
        ["M1", "M2"],
        True,
        False,
    )
    assert result.window == held.window
    assert [m.table_id for m in result.members] == ["M1", "M2"]
    assert all(
        m.assignment_id and m.merge_group_id == change.merge_group_id for m in result.members
    )
    assert s.service.get_hold("r1", held.hold_id).status == "consumed"
    view = s.service.get_booking("r1", "b4")
    assert (view.status, view.table_ids, view.zone_id) == ("confirmed", ["M1", "M2"], "main")


def test_confirm_adds_the_held_tables_to_the_bookings_set(s: Scenario) -> None:
    first = s.when(assign("b1", "M1")).result
    held = place(s, "b1", "M2")
    result = s.when(confirm("b1", held.hold_id)).result
    assert result.table_ids == ["M1", "M2"]
    kept = {m.table_id: m.assignment_id for m in result.members}
    assert kept["M1"] == first.members[0].assignment_id  # a kept table keeps its id


def test_confirm_honours_the_adjacency_requirement_the_hold_was_placed_with(s: Scenario) -> None:
    relaxed = s.when(hold("b4", "M1", "M3", require_adjacency=False)).result
    assert relaxed.adjacency_required is False
    assert s.when(confirm("b4", relaxed.hold_id)).result.table_ids == ["M1", "M3"]


def test_confirming_a_consumed_or_released_hold_is_hold_not_active(s: Scenario) -> None:
    held = place(s, "b1", "M1")
    s.given(confirm("b1", held.hold_id))
    s.given(assign("b1", "M2"))  # the booking moved on: a derived key no longer replays
    s.when(confirm("b1", held.hold_id))
    s.then_error(ErrorCode.HOLD_NOT_ACTIVE, hold_id=held.hold_id, status="consumed")


# --- the order of the checks ------------------------------------------------------------------


def test_1_before_2_a_keyed_replay_needs_no_hold(s: Scenario) -> None:
    held = place(s, "b1", "M1")
    original = s.when(confirm("b1", held.hold_id, idempotency_key="k-1")).result
    # the hold id is unknown now (say the caller lost it): the key alone finds the result
    s.when(confirm("b1", "no-such-hold", idempotency_key="k-1"))
    s.then_no_events()
    assert s.result.replayed is True and s.result.changed is False
    assert s.result.table_ids == original.table_ids == ["M1"]
    assert s.result.members == original.members
    # control: without the key, the unknown hold is HOLD_NOT_FOUND
    s.when(confirm("b1", "no-such-hold")).then_error(ErrorCode.HOLD_NOT_FOUND)


@pytest.mark.parametrize("key", ["k-1", None], ids=["caller-key", "derived-key"])
def test_1_before_8_a_replay_succeeds_although_the_hold_is_consumed(
    s: Scenario, key: str | None
) -> None:
    held = place(s, "b1", "M1")
    original = s.when(confirm("b1", held.hold_id, idempotency_key=key)).result
    # a re-send after a lost reply: a new command id, the same key (or none again)
    s.when(confirm("b1", held.hold_id, idempotency_key=key))
    s.then_no_events()
    assert s.result.replayed is True
    assert s.result.idempotency_key == original.idempotency_key
    assert s.result.members == original.members
    # even long after the hold expired
    s.at(held.expires_at + timedelta(hours=1)).when(
        confirm("b1", held.hold_id, idempotency_key=key)
    )
    s.then_no_events()
    assert s.result.replayed is True
    # control: under another key, the consumed hold is not active
    s.when(confirm("b1", held.hold_id, idempotency_key="k-other"))
    s.then_error(ErrorCode.HOLD_NOT_ACTIVE, status="consumed")


def test_1_before_8_a_replay_succeeds_with_a_released_hold_of_the_same_tables(
    s: Scenario,
) -> None:
    first = place(s, "b1", "M1")
    s.given(confirm("b1", first.hold_id, idempotency_key="k-1"))
    again = place(s, "b1", "M1")
    s.given(ReleaseHold(restaurant_id="r1", hold_id=again.hold_id, actor_id="host-1"))
    s.when(confirm("b1", again.hold_id, idempotency_key="k-1"))
    s.then_no_events()
    assert s.result.replayed is True
    assert s.result.hold_id == first.hold_id


def test_2_before_3_unknown_hold_and_unknown_booking(s: Scenario) -> None:
    s.when(confirm("ghost", "no-such-hold")).then_error(
        ErrorCode.HOLD_NOT_FOUND, hold_id="no-such-hold"
    )
    held = place(s, "b1", "M1")
    s.when(confirm("ghost", held.hold_id)).then_error(ErrorCode.BOOKING_NOT_FOUND)


def test_3_before_4_unknown_booking_and_another_restaurants_hold(s: Scenario) -> None:
    theirs = place(s, "x1", "S1", restaurant_id="r2")
    s.when(confirm("ghost", theirs.hold_id)).then_error(
        ErrorCode.BOOKING_NOT_FOUND, booking_id="ghost", restaurant_id="r1"
    )
    s.when(confirm("b1", theirs.hold_id)).then_error(ErrorCode.HOLD_RESTAURANT_MISMATCH)


def test_4_before_6_and_8_another_restaurants_hold_for_another_booking(s: Scenario) -> None:
    theirs = place(s, "x1", "S1", restaurant_id="r2")
    s.at(theirs.expires_at + timedelta(seconds=1))  # expired too
    s.when(confirm("b1", theirs.hold_id))
    err = s.then_error(ErrorCode.HOLD_RESTAURANT_MISMATCH)
    assert err.details == {"hold_id": theirs.hold_id, "restaurant_id": "r1"}
    assert http_status(err) == 403


def test_6_before_8_another_bookings_expired_hold(s: Scenario) -> None:
    theirs = place(s, "b2", "M1")
    s.at(theirs.expires_at)
    s.when(confirm("b1", theirs.hold_id)).then_error(
        ErrorCode.HOLD_BOOKING_MISMATCH, hold_id=theirs.hold_id, booking_id="b1"
    )
    s.when(confirm("b2", theirs.hold_id)).then_error(ErrorCode.HOLD_EXPIRED)


def test_8_before_9_expired_and_drifted_is_hold_expired(s: Scenario) -> None:
    held = place(s, "b1", "M1")
    s.given(ChangePolicy(restaurant_id="r1", policy=VenuePolicy(slack_budget=3)))
    s.at(held.expires_at).when(confirm("b1", held.hold_id))
    s.then_error(ErrorCode.HOLD_EXPIRED, hold_id=held.hold_id)  # and no drift event written
    # control: a second earlier, the same hold is drift
    s.at(held.expires_at - timedelta(seconds=1)).when(confirm("b1", held.hold_id))
    s.then_error(ErrorCode.POLICY_DRIFT)
    s.then_events(PolicyDriftDetected)


def test_9_before_10_drift_wins_over_a_failing_allocation(s: Scenario) -> None:
    held = place(s, "b1", "M1")
    # the booking took a bar table meanwhile, so M1 would now be ZONE_LOCKED ...
    s.given(assign("b1", "B1"))
    # ... and M1 shrank, which is table drift (and would be CAPACITY_INSUFFICIENT too)
    s.given(
        DefineTable(
            restaurant_id="r1",
            table=Table(table_id="M1", zone_id="main", capacity=1, movable=True),
        )
    )
    s.when(confirm("b1", held.hold_id))
    err = s.then_error(ErrorCode.POLICY_DRIFT, kind="table")
    assert err.details["tables"] == {"M1": {"capacity": {"expected": 2, "actual": 1}}}
    assert s.service.get_booking("r1", "b1").table_ids == ["B1"]


def test_9_before_10_drift_wins_over_an_assignment_conflict(s: Scenario) -> None:
    held = place(s, "b1", "M1")
    # the hold lapses and b2 takes M1 ...
    s.at(held.expires_at).given(assign("b2", "M1"))
    # ... and a host whose clock lags confirms the hold: the only way (short of a bug) to
    # confirm a hold whose tables another booking holds is for time to run backwards.
    # control first (a drift rejection releases the hold): without drift the conflict shows
    s.at(held.expires_at - timedelta(seconds=1)).when(confirm("b1", held.hold_id))
    err = s.then_error(ErrorCode.ASSIGNMENT_CONFLICT)
    assert err.details["conflicts"][0]["booking_id"] == "b2"
    # with the policy changed too, drift is found first
    s.given(ChangePolicy(restaurant_id="r1", policy=VenuePolicy(slack_budget=3)))
    s.when(confirm("b1", held.hold_id))
    s.then_error(ErrorCode.POLICY_DRIFT, kind="policy")


# --- HOLD_EMPTY and HOLD_METADATA_INCOMPLETE on recorded histories ------------------------------


def test_an_empty_recorded_hold_is_hold_empty(s: Scenario) -> None:
    s.given(
        *recorded_hold(
            s.service,
            hold_id="empty-hold",
            booking_id="b1",
            tables=(),
            expires_at=T0 + timedelta(minutes=3),
        )
    )
    s.when(confirm("b1", "empty-hold")).then_error(ErrorCode.HOLD_EMPTY, hold_id="empty-hold")
    # 6 before 7: another booking's empty hold is a booking mismatch first
    s.when(confirm("b2", "empty-hold")).then_error(ErrorCode.HOLD_BOOKING_MISMATCH)
    # 7 before 8: empty and expired is still empty
    s.at(T0 + timedelta(hours=1)).when(confirm("b1", "empty-hold"))
    s.then_error(ErrorCode.HOLD_EMPTY)


def test_a_recorded_hold_without_snapshot_is_hold_metadata_incomplete(s: Scenario) -> None:
    s.given(
        *recorded_hold(
            s.service,
            hold_id="v1-hold",
            booking_id="b1",
            tables=("M1",),
            expires_at=T0 + timedelta(minutes=3),
            complete=False,
        )
    )
    missing = ["policy_version", "zone_ids", "adjacency", "table_facts", "adjacency_required"]
    s.when(confirm("b1", "v1-hold"))
    err = s.then_error(ErrorCode.HOLD_METADATA_INCOMPLETE, hold_id="v1-hold", missing=missing)
    assert http_status(err) == 409
    # 5 before 6: for another booking it is still the metadata that is reported
    s.when(confirm("b2", "v1-hold")).then_error(ErrorCode.HOLD_METADATA_INCOMPLETE)
    # the hold can still be released, and then blocks nothing
    assert s.service.get_booking("r1", "b1").status == "pending"


def test_a_complete_recorded_hold_confirms(s: Scenario) -> None:
    # the recorded-history helper itself: with a full snapshot the hold is ordinary
    s.given(
        *recorded_hold(
            s.service,
            hold_id="good-hold",
            booking_id="b1",
            tables=("M1",),
            expires_at=T0 + timedelta(minutes=3),
        )
    )
    assert s.when(confirm("b1", "good-hold")).result.table_ids == ["M1"]


# --- the same checks on the aggregate, with hand-built holds ------------------------------------


def _floor_view(command: CreateRestaurant) -> FloorView:
    return FloorView.build(
        restaurant_id=command.restaurant_id,
        name=command.name,
        policy=command.policy,
        zones={zone.zone_id: zone for zone in command.zones},
        tables={table.table_id: table for table in command.tables},
        edges=[edge(a, b) for a, b in command.adjacency],
        version=1,
    )


def _day_with_bookings() -> tuple[ServiceDay, FloorView, Stamp]:
    view = _floor_view(floor())
    stamp = Stamp(T0, "setup", "host-1")
    day = ServiceDay.open(restaurant_id="r1", service_date=DAY, stamp=stamp)
    for booking_id in ("b1", "b2"):
        day.register_booking(
            booking_id=booking_id,
            party_size=2,
            block=block_window(view.policy, DAY, time(19), 2),
            stamp=stamp,
        )
    day.collect_events()
    return day, view, Stamp(T0 + timedelta(seconds=10), "confirm-1", "host-1")


def _hand_built_hold(
    view: FloorView,
    *,
    tables: tuple[str, ...] = ("M1",),
    update: dict[str, Any] | None = None,
) -> HoldState:
    snapshot = view.snapshot(tables)
    built = HoldState(
        hold_id="hand-built",
        booking_id="b1",
        tables=tables,
        zone_id="main",
        window=block_window(view.policy, DAY, time(19), 2).window,
        placed_at=T0,
        expires_at=T0 + timedelta(minutes=3),
        actor_id="host-1",
        source="manual",
        policy_version=snapshot.policy_version,
        zone_ids=snapshot.zone_ids,
        adjacency=snapshot.adjacency,
        table_facts=snapshot.tables,
        adjacency_required=True,
    )
    return built.model_copy(update=update or {})


def _confirm_error(day: ServiceDay, view: FloorView, stamp: Stamp, held: HoldState) -> HoldError:
    with pytest.raises(HoldError) as caught:
        confirm_hold(
            day,
            ConfirmRequest(restaurant_id="r1", booking_id="b1", hold_id=held.hold_id),
            HoldFacts(restaurant_id="r1", hold=held),
            floor=view,
            stamp=stamp,
        )
    assert day.pending_events == ()  # a rejected confirm triggers nothing
    return caught.value


def test_aggregate_hold_empty() -> None:
    day, view, stamp = _day_with_bookings()
    err = _confirm_error(day, view, stamp, _hand_built_hold(view, tables=()))
    assert err.code == ErrorCode.HOLD_EMPTY
    assert err.details == {"hold_id": "hand-built"}
    # 7 before 8: empty and expired
    expired_empty = _hand_built_hold(view, tables=(), update={"expires_at": T0})
    assert _confirm_error(day, view, stamp, expired_empty).code == ErrorCode.HOLD_EMPTY


@pytest.mark.parametrize(
    "missing",
    [
        ["table_facts", "adjacency_required"],  # what a v1 HoldPlaced upcast to v2 carries
        ["policy_version", "zone_ids", "adjacency", "table_facts", "adjacency_required"],
        ["adjacency"],
    ],
)
def test_aggregate_hold_metadata_incomplete(missing: list[str]) -> None:
    day, view, stamp = _day_with_bookings()
    held = _hand_built_hold(view, update=dict.fromkeys(missing))
    err = _confirm_error(day, view, stamp, held)
    assert err.code == ErrorCode.HOLD_METADATA_INCOMPLETE
    assert err.details == {"hold_id": "hand-built", "missing": missing}
    # 5 before 6 and 8: another booking's, expired, incomplete hold
    worse = held.model_copy(update={"booking_id": "b2", "expires_at": T0})
    assert _confirm_error(day, view, stamp, worse).code == ErrorCode.HOLD_METADATA_INCOMPLETE


def test_aggregate_control_a_complete_hand_built_hold_reaches_the_expiry_check() -> None:
    day, view, stamp = _day_with_bookings()
    err = _confirm_error(day, view, stamp, _hand_built_hold(view, update={"expires_at": stamp.now}))
    assert err.code == ErrorCode.HOLD_EXPIRED
    assert err.details["now"] == "2026-11-24T17:00:10Z"
    assert datetime(2026, 11, 24, 17, 0, 10, tzinfo=UTC) == stamp.now


def test_aggregate_checks_two_to_four_run_in_order_on_the_directory_facts() -> None:
    day, view, stamp = _day_with_bookings()
    held = _hand_built_hold(view)
    mine = ConfirmRequest(restaurant_id="r1", booking_id="b1", hold_id=held.hold_id)
    nowhere = HoldFacts(restaurant_id=None, hold=None)
    elsewhere = HoldFacts(restaurant_id="r2", hold=None)

    def rejected(
        on: ServiceDay | None, found: HoldFacts, request: ConfirmRequest = mine
    ) -> SeatLedgerError:
        with pytest.raises(SeatLedgerError) as caught:
            confirm_hold(on, request, found, floor=view, stamp=stamp)
        return caught.value

    # 2 before 3: no such hold anywhere, and no such booking
    assert rejected(None, nowhere).code == ErrorCode.HOLD_NOT_FOUND
    # 3 before 4: another restaurant's hold, and no such booking (no day, or not in the day)
    assert rejected(None, elsewhere).code == ErrorCode.BOOKING_NOT_FOUND
    unknown = ConfirmRequest(restaurant_id="r1", booking_id="b9", hold_id=held.hold_id)
    assert rejected(day, elsewhere, unknown).code == ErrorCode.BOOKING_NOT_FOUND
    # 4: the other tenant is never named to the caller
    mismatch = rejected(day, elsewhere)
    assert mismatch.code == ErrorCode.HOLD_RESTAURANT_MISMATCH
    assert mismatch.details == {"hold_id": held.hold_id, "restaurant_id": "r1"}
    assert day.pending_events == ()


def test_aggregate_drift_is_an_outcome_with_its_record_pending() -> None:
    day, view, stamp = _day_with_bookings()
    stale = _hand_built_hold(view, update={"policy_version": "an older policy"})
    request = ConfirmRequest(restaurant_id="r1", booking_id="b1", hold_id=stale.hold_id)
    found = HoldFacts(restaurant_id="r1", hold=stale)

    decided = confirm_hold(day, request, found, floor=view, stamp=stamp)
    assert isinstance(decided, DriftRejected)  # returned, not raised: the caller saves first
    assert (decided.error.code, decided.error.kind) == (ErrorCode.POLICY_DRIFT, "policy")
    (recorded,) = day.pending_events
    assert isinstance(recorded, PolicyDriftDetected)
    assert (recorded.attempt, recorded.automated, recorded.first_in_run) == (1, False, True)

    automated = AutomationContext(attempt=2, first_drift_in_run=False)
    again = Stamp(stamp.now, "run:confirm:2", "planner")
    assert isinstance(
        confirm_hold(day, request, found, floor=view, stamp=again, automation=automated),
        DriftRejected,
    )
    second = day.pending_events[-1]
    assert isinstance(second, PolicyDriftDetected)
    assert (second.attempt, second.automated, second.first_in_run) == (2, True, False)

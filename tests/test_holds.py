"""Holds through the service (docs/domain.md §5 and the hold clarifications of §16).

Time is frozen by the scenario (freezegun); every instant below is exact.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from seatledger.application.commands import CancelBooking, ExpireHolds, ExtendHold, ReleaseHold
from seatledger.application.errors import http_status
from seatledger.application.results import HoldView
from seatledger.application.testing import Scenario
from seatledger.domain.errors import ErrorCode
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day import (
    ActorRole,
    HoldExpired,
    HoldExtended,
    HoldPlaced,
    HoldReleased,
)
from tests.support import DAY, EVENING, assign, booking, confirm, floor, hold, position

T0 = datetime.fromisoformat(EVENING)


@pytest.fixture
def s(seatledger_scenario: Scenario) -> Scenario:
    """r1 at 17:00Z with b1 (2 at 19:00), b2 (2 at 19:30), b4 (4 at 19:00)."""
    scenario = seatledger_scenario.at(EVENING)
    scenario.given(
        floor(), booking("b1"), booking("b2", start="19:30"), booking("b4", party_size=4)
    )
    return scenario


def place(s: Scenario, booking_id: str, *tables: str, **extra: Any) -> HoldView:
    result = s.when(hold(booking_id, *tables, **extra)).result
    assert isinstance(result, HoldView)
    return result


def release(hold_id: str, actor_id: str = "host-1", actor_role: ActorRole = "host") -> ReleaseHold:
    return ReleaseHold(
        restaurant_id="r1", hold_id=hold_id, actor_id=actor_id, actor_role=actor_role
    )


def extend(
    hold_id: str,
    actor_id: str = "host-1",
    actor_role: ActorRole = "host",
    ttl_seconds: int | None = None,
) -> ExtendHold:
    return ExtendHold(
        restaurant_id="r1",
        hold_id=hold_id,
        actor_id=actor_id,
        actor_role=actor_role,
        ttl_seconds=ttl_seconds,
    )


# --- placing --------------------------------------------------------------------------------


def test_a_hold_records_its_snapshot_and_expires_by_ttl(s: Scenario) -> None:
    placed = place(s, "b4", "M2", "M1", "M2")
    (event,) = s.then_events(HoldPlaced)
    assert isinstance(event, HoldPlaced)
    assert placed.table_ids == ["M1", "M2"]  # collapsed and sorted
    assert event.tables == ("M1", "M2")
    assert placed.status == "live"
    assert placed.placed_at == T0
    # expiry is now + TTL (180 s), not the window end (a defect of the source system)
    assert placed.expires_at == T0 + timedelta(seconds=180)
    assert placed.window == s.service.get_booking("r1", "b4").window
    assert event.policy_version == VenuePolicy().version
    assert event.zone_ids == ("main",)
    assert event.adjacency is not None and event.adjacency.edges == (("M1", "M2"),)
    assert event.table_facts is not None and set(event.table_facts) == {"M1", "M2"}
    assert event.table_facts["M1"].capacity == 2 and event.table_facts["M1"].movable
    assert event.adjacency_required is True
    assert s.service.get_hold("r1", placed.hold_id) == placed


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [(None, 180), (1, 60), (59, 60), (60, 60), (300, 300), (900, 900), (5000, 900)],
)
def test_ttl_is_clamped_to_60_and_900_seconds(s: Scenario, ttl: int | None, seconds: int) -> None:
    placed = place(s, "b1", "M1", ttl_seconds=ttl)
    assert placed.expires_at - placed.placed_at == timedelta(seconds=seconds)


def test_a_zero_ttl_is_invalid_input(s: Scenario) -> None:
    command = {"restaurant_id": "r1", "booking_id": "b1", "table_ids": ["M1"], "ttl_seconds": 0}
    s.when(lambda: s.service.place_hold(command))
    err = s.then_error(ErrorCode.INVALID_INPUT)
    assert [e["field"] for e in err.details["errors"]] == ["ttl_seconds"]


def test_placing_checks_allocation_like_an_assignment(s: Scenario) -> None:
    s.when(hold("b1")).then_error(ErrorCode.TABLES_REQUIRED)
    s.when(hold("b1", "Z9")).then_error(ErrorCode.TABLE_NOT_FOUND, tables=["Z9"])
    s.when(hold("b1", "B2")).then_error(ErrorCode.TABLE_INACTIVE, tables=["B2"])
    s.when(hold("b4", "M6", "P1")).then_error(ErrorCode.ZONE_MISMATCH, zones=["main", "patio"])
    s.when(hold("b4", "M1", "M3")).then_error(ErrorCode.ADJACENCY_INVALID)
    s.when(hold("b4", "M1")).then_error(ErrorCode.CAPACITY_INSUFFICIENT, capacity=2, party_size=4)
    s.when(hold("b1", "P1", "P2")).then_error(ErrorCode.SLACK_BUDGET_EXCEEDED, slack=6)


def test_a_hold_on_a_table_assigned_to_an_overlapping_booking_is_a_conflict(s: Scenario) -> None:
    s.given(assign("b1", "M1"))
    err = s.when(hold("b2", "M1", "M2")).then_error(ErrorCode.ASSIGNMENT_CONFLICT)
    (conflict,) = err.details["conflicts"]
    assert conflict["booking_id"] == "b1"
    assert conflict["tables"] == ["M1"]


def test_a_live_hold_of_another_booking_blocks_and_is_named(s: Scenario) -> None:
    first = place(s, "b1", "M1")
    err = s.when(hold("b2", "M1", "M2")).then_error(ErrorCode.HOLD_CONFLICT)
    (blocking,) = err.details["holds"]
    assert blocking == {
        "hold_id": first.hold_id,
        "booking_id": "b1",
        "tables": ["M1"],
        "window": {"start": "2026-11-24T19:00:00Z", "end": "2026-11-24T20:05:00Z"},
        "expires_at": "2026-11-24T17:03:00Z",
    }
    assert err.details["window"] == {"start": "2026-11-24T19:30:00Z", "end": "2026-11-24T20:35:00Z"}
    # the manual path is blocked the same way
    s.when(assign("b2", "M1")).then_error(ErrorCode.HOLD_CONFLICT)


def test_holds_block_only_overlapping_windows(s: Scenario) -> None:
    s.given(booking("touching", start="20:05"), booking("later", start="21:00"))
    place(s, "b1", "M1")  # [19:00, 20:05)
    place(s, "touching", "M1")  # [20:05, 21:10): touches, does not overlap
    s.when(hold("later", "M1")).then_error(ErrorCode.HOLD_CONFLICT)  # overlaps "touching"
    assert s.when(hold("later", "M2")).result.table_ids == ["M2"]


def test_a_bookings_own_holds_never_block_it(s: Scenario) -> None:
    first = place(s, "b1", "M1")
    second = place(s, "b1", "M1")
    assert first.hold_id != second.hold_id
    s.when(assign("b1", "M1"))
    assert s.result.table_ids == ["M1"]


def test_an_expired_hold_blocks_nothing(s: Scenario) -> None:
    stale = place(s, "b1", "M1")
    s.at(stale.expires_at - timedelta(seconds=1))
    s.when(hold("b2", "M1")).then_error(ErrorCode.HOLD_CONFLICT)
    s.at(stale.expires_at)  # expired means now >= expires_at
    taken = place(s, "b2", "M1")
    assert taken.table_ids == ["M1"]
    assert s.service.get_hold("r1", stale.hold_id).status == "expired"


def test_an_expired_hold_does_not_block_a_manual_assignment(s: Scenario) -> None:
    stale = place(s, "b1", "M1", ttl_seconds=60)
    s.after(seconds=60).when(assign("b2", "M1"))
    assert s.result.table_ids == ["M1"]
    # and the stale hold can no longer be confirmed
    s.when(confirm("b1", stale.hold_id)).then_error(ErrorCode.HOLD_EXPIRED)


def test_a_closed_booking_cannot_take_a_hold(s: Scenario) -> None:
    s.given(CancelBooking(restaurant_id="r1", booking_id="b1"))
    s.when(hold("b1", "M1")).then_error(ErrorCode.BOOKING_CLOSED, status="cancelled")


# --- expiry ---------------------------------------------------------------------------------


def test_confirm_one_second_before_expiry_works(s: Scenario) -> None:
    placed = place(s, "b1", "M1")
    s.at(placed.expires_at - timedelta(seconds=1)).when(confirm("b1", placed.hold_id))
    assert s.result.status == "confirmed"


@pytest.mark.parametrize("late", [timedelta(0), timedelta(seconds=1), timedelta(hours=2)])
def test_confirm_at_or_after_expiry_is_hold_expired(s: Scenario, late: timedelta) -> None:
    placed = place(s, "b1", "M1")
    s.at(placed.expires_at + late).when(confirm("b1", placed.hold_id))
    err = s.then_error(ErrorCode.HOLD_EXPIRED, hold_id=placed.hold_id)
    assert err.details["expires_at"] == "2026-11-24T17:03:00Z"
    assert s.service.get_booking("r1", "b1").status == "pending"


def test_the_sweeper_records_expiries_once(s: Scenario) -> None:
    short = place(s, "b1", "M1", ttl_seconds=60)
    long = place(s, "b2", "M2", ttl_seconds=600)

    def sweep() -> ExpireHolds:  # each sweep is a command of its own (a new command id)
        return ExpireHolds(restaurant_id="r1", service_date=DAY, actor_id="sweeper")

    s.after(seconds=59).when(sweep())
    assert s.result == []
    s.then_no_events()
    s.after(seconds=1).when(sweep())
    assert s.result == [short.hold_id]
    s.then_events((HoldExpired, {"hold_id": short.hold_id, "booking_id": "b1"}))
    s.when(sweep())
    assert s.result == []
    s.then_no_events()
    assert s.service.get_hold("r1", long.hold_id).status == "live"
    assert s.service.get_hold("r1", short.hold_id).status == "expired"


def test_the_sweeper_on_a_day_without_bookings_does_nothing(s: Scenario) -> None:
    s.when(ExpireHolds(restaurant_id="r1", service_date=DAY + timedelta(days=3)))
    assert s.result == []
    s.then_no_events()


# --- release --------------------------------------------------------------------------------


def test_release_a_live_hold_then_again(s: Scenario) -> None:
    placed = place(s, "b1", "M1")
    s.when(release(placed.hold_id))
    assert (s.result.released, s.result.status) == (True, "released")
    s.then_events((HoldReleased, {"hold_id": placed.hold_id, "reason": "released"}))
    s.when(release(placed.hold_id))
    assert (s.result.released, s.result.status) == (False, "released")
    s.then_no_events()
    s.when(confirm("b1", placed.hold_id)).then_error(ErrorCode.HOLD_NOT_ACTIVE, status="released")
    place(s, "b2", "M1")  # a released hold blocks nothing


def test_release_an_unknown_hold_says_so(s: Scenario) -> None:
    s.when(release("no-such-hold"))
    assert (s.result.hold_id, s.result.released, s.result.status) == (
        "no-such-hold",
        False,
        "unknown",
    )
    s.then_no_events()


def test_release_a_consumed_hold_changes_nothing(s: Scenario) -> None:
    placed = place(s, "b1", "M1")
    s.given(confirm("b1", placed.hold_id))
    s.when(release(placed.hold_id))
    assert (s.result.released, s.result.status) == (False, "consumed")
    s.then_no_events()
    assert s.service.get_booking("r1", "b1").table_ids == ["M1"]


def test_release_an_expired_hold_changes_nothing(s: Scenario) -> None:
    placed = place(s, "b1", "M1")
    s.at(placed.expires_at).when(release(placed.hold_id))
    assert (s.result.released, s.result.status) == (False, "expired")
    s.then_no_events()
    s.given(ExpireHolds(restaurant_id="r1", service_date=DAY))
    s.when(release(placed.hold_id))
    assert (s.result.released, s.result.status) == (False, "expired")
    s.then_no_events()


# --- replace --------------------------------------------------------------------------------


def test_replacing_places_the_new_hold_first_then_releases_the_old(s: Scenario) -> None:
    old = place(s, "b1", "M1")
    new = place(s, "b1", "M2", replaces_hold_id=old.hold_id)
    s.then_events(
        (HoldPlaced, {"hold_id": new.hold_id, "replaces_hold_id": old.hold_id}),
        (HoldReleased, {"hold_id": old.hold_id, "reason": "replaced"}),
    )
    assert s.service.get_hold("r1", old.hold_id).status == "released"
    assert s.service.get_hold("r1", new.hold_id).status == "live"
    place(s, "b2", "M1")  # the old table is free again


def test_a_failed_replacement_keeps_the_old_hold(s: Scenario) -> None:
    old = place(s, "b1", "M1")
    place(s, "b2", "M3")
    s.when(hold("b1", "M3", replaces_hold_id=old.hold_id)).then_error(ErrorCode.HOLD_CONFLICT)
    assert s.service.get_hold("r1", old.hold_id).status == "live"


def test_replacing_another_bookings_hold_is_hold_booking_mismatch(s: Scenario) -> None:
    theirs = place(s, "b2", "M5")
    s.when(hold("b1", "M1", replaces_hold_id=theirs.hold_id))
    s.then_error(ErrorCode.HOLD_BOOKING_MISMATCH, hold_id=theirs.hold_id, booking_id="b1")
    s.when(hold("b1", "M1", replaces_hold_id="no-such-hold"))
    s.then_error(ErrorCode.HOLD_NOT_FOUND, hold_id="no-such-hold")
    assert s.service.get_hold("r1", theirs.hold_id).status == "live"


def test_replacing_a_hold_of_another_day_is_hold_booking_mismatch(s: Scenario) -> None:
    """Hold ids are global: a hold filed on another service day exists (get_hold finds it)
    and is another booking's, so replacing it is a mismatch, not HOLD_NOT_FOUND."""
    s.given(booking("b9", service_date=DAY + timedelta(days=1)))
    theirs = place(s, "b9", "M5")
    before = position(s.service)
    s.when(hold("b1", "M1", replaces_hold_id=theirs.hold_id))
    s.then_error(ErrorCode.HOLD_BOOKING_MISMATCH, hold_id=theirs.hold_id, booking_id="b1")
    assert position(s.service) == before
    assert s.service.get_hold("r1", theirs.hold_id).status == "live"


# --- extend ---------------------------------------------------------------------------------


def test_extend_moves_expiry_to_now_plus_ttl(s: Scenario) -> None:
    placed = place(s, "b1", "M1")
    s.after(seconds=100).when(extend(placed.hold_id, ttl_seconds=300))
    assert s.result.extended is True
    assert s.result.hold.expires_at == T0 + timedelta(seconds=400)
    s.then_events(
        (
            HoldExtended,
            {
                "hold_id": placed.hold_id,
                "expires_at": T0 + timedelta(seconds=400),
                "previous_expires_at": placed.expires_at,
            },
        )
    )
    s.at(placed.expires_at + timedelta(seconds=10)).when(confirm("b1", placed.hold_id))
    assert s.result.status == "confirmed"


def test_extending_to_an_earlier_time_is_a_no_op(s: Scenario) -> None:
    placed = place(s, "b1", "M1", ttl_seconds=900)
    s.after(seconds=10).when(extend(placed.hold_id, ttl_seconds=60))
    assert s.result.extended is False
    assert s.result.hold.expires_at == placed.expires_at
    s.then_no_events()


def test_only_the_creator_or_a_manager_may_extend(s: Scenario) -> None:
    placed = place(s, "b1", "M1")
    s.when(extend(placed.hold_id, actor_id="host-2"))
    err = s.then_error(
        ErrorCode.HOLD_FORBIDDEN, hold_id=placed.hold_id, actor_id="host-2", action="extend"
    )
    assert http_status(err) == 403
    s.after(seconds=30).when(extend(placed.hold_id, actor_id="boss", actor_role="manager"))
    assert s.result.extended is True
    assert s.result.hold.expires_at == T0 + timedelta(seconds=210)
    assert s.result.hold.actor_id == "host-1"  # still the creator's hold
    s.then_events(HoldExtended)


def test_only_the_creator_or_a_manager_may_release(s: Scenario) -> None:
    placed = place(s, "b1", "M1")
    s.when(release(placed.hold_id, actor_id="host-2"))
    s.then_error(ErrorCode.HOLD_FORBIDDEN, action="release")
    s.when(release(placed.hold_id, actor_id="boss", actor_role="manager"))
    assert s.result.released is True


def test_extend_needs_a_live_hold(s: Scenario) -> None:
    s.when(extend("no-such-hold")).then_error(ErrorCode.HOLD_NOT_FOUND, hold_id="no-such-hold")
    consumed = place(s, "b1", "M1")
    s.given(confirm("b1", consumed.hold_id))
    s.when(extend(consumed.hold_id)).then_error(ErrorCode.HOLD_NOT_ACTIVE, status="consumed")
    stale = place(s, "b2", "M3")
    s.at(stale.expires_at).when(extend(stale.hold_id))
    s.then_error(ErrorCode.HOLD_EXPIRED, hold_id=stale.hold_id)


# --- rate limit -----------------------------------------------------------------------------


def test_the_sixth_hold_in_a_minute_is_rate_limited(s: Scenario) -> None:
    first = place(s, "b1", "M1")
    for _ in range(4):
        s.after(seconds=5)
        released = place(s, "b1", "M1")
        s.given(release(released.hold_id))  # every placement counts, released or not
    s.after(seconds=5).when(hold("b1", "M1"))
    err = s.then_error(
        ErrorCode.HOLD_RATE_LIMITED,
        limit=5,
        window_seconds=60,
        booking_id="b1",
        actor_id="host-1",
    )
    assert err.details["retry_at"] == "2026-11-24T17:01:00Z"
    assert http_status(err) == 429
    # another actor, or another booking, is not limited by host-1's placements
    place(s, "b1", "M2", actor_id="host-2")
    place(s, "b2", "M3")
    # once the first placement leaves the window, host-1 may place again
    s.at(first.placed_at + timedelta(seconds=60))
    place(s, "b1", "M4")


def test_the_default_hold_rules_and_the_frozen_clock(s: Scenario) -> None:
    rules = s.service.hold_rules
    assert (rules.rate_limit, rules.rate_window_seconds) == (5, 60)
    assert (rules.min_ttl_seconds, rules.max_ttl_seconds, rules.default_ttl_seconds) == (
        60,
        900,
        180,
    )
    assert datetime.now(UTC) == T0  # the scenario froze the service's clock

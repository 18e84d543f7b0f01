"""The service day's rules for registrations and holds (docs/domain.md §3, §5), on the
aggregate alone: no store, no service, time as data."""

from __future__ import annotations

from datetime import timedelta

import pytest

from seatledger.application.testing import (
    DaySpec,
    Fact,
    assigned,
    closed,
    expired,
    held,
    registered,
    released,
)
from seatledger.domain.errors import ErrorCode
from seatledger.domain.layout import TableFacts
from seatledger.domain.service_day import (
    BookingRegistered,
    HoldExpired,
    HoldExtended,
    HoldPlaced,
    HoldReleased,
    HoldRules,
)
from seatledger.domain.values import Window
from tests.day_support import T0, at, expire, extend, place, register, release

# --- registration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "size", "window", "derived"),
    [
        ("19:00", 4, ("19:00", "20:20"), ("dinner", False, False)),
        ("13:00", 6, ("13:00", "14:30"), ("lunch", False, False)),
        ("21:50", 2, ("21:50", "22:00"), ("dinner", False, True)),
        ("16:00", 2, ("16:00", "17:05"), ("fallback", True, False)),
    ],
)
def test_a_registration_records_the_window_the_policy_gives(
    start: str, size: int, window: tuple[str, str], derived: tuple[str, bool, bool]
) -> None:
    """``derived``: the service, whether it is the fallback, whether the end was clamped."""
    service, fallback, clamped = derived
    block = Window(start=at(window[0]), end=at(window[1]))
    spec = DaySpec().when(register("b1", size, start))
    spec.then_events(
        (
            BookingRegistered,
            {
                "booking_id": "b1",
                "party_size": size,
                "start_at": at(start),
                "window": block,
                "service": service,
                "fallback": fallback,
                "clamped": clamped,
            },
        )
    )
    spec.then_booking("b1", status="pending", tables=(), window=block)


def test_registering_the_same_booking_again_is_a_no_op() -> None:
    spec = DaySpec().given(registered("b1", 2, "19:00"))
    original = spec.day.bookings["b1"]
    assert spec.when(register("b1", 2, "19:00")).then_no_events() == original


@pytest.mark.parametrize(("size", "start"), [(3, "19:00"), (2, "19:30")])
def test_registering_a_booking_id_with_other_details_is_refused(size: int, start: str) -> None:
    spec = DaySpec().given(registered("b1", 2, "19:00"))
    spec.when(register("b1", size, start))
    spec.then_error(ErrorCode.BOOKING_EXISTS, booking_id="b1", party_size=2)
    spec.then_booking("b1", party_size=2, start_at=at("19:00"))


# --- placing a hold -------------------------------------------------------------------------


def test_a_hold_records_its_tables_window_expiry_and_snapshot() -> None:
    spec = DaySpec().given(registered("b1", 4))
    spec.when(place("b1", "M2", "M1", "M2"), command_id="place-1")
    (placed,) = spec.then_events(
        (
            HoldPlaced,
            {
                "hold_id": spec.hold_id("place-1"),
                "booking_id": "b1",
                "tables": ("M1", "M2"),
                "zone_id": "main",
                "window": Window(start=at("19:00"), end=at("20:20")),
                "expires_at": T0 + timedelta(seconds=180),
                "source": "manual",
                "policy_version": spec.floor.policy_version,
                "zone_ids": ("main",),
                "adjacency_required": True,
            },
        )
    )
    assert isinstance(placed, HoldPlaced)
    assert placed.adjacency is not None and placed.adjacency.edges == (("M1", "M2"),)
    fact = TableFacts(capacity=2, zone_id="main", movable=True, active=True)
    assert placed.table_facts == {"M1": fact, "M2": fact}
    spec.then_hold(spec.hold_id("place-1"), status="live", placed_at=T0, actor_id="host-1")


@pytest.mark.parametrize(
    ("requested", "seconds"),
    [(None, 180), (10, 60), (60, 60), (300, 300), (900, 900), (5000, 900)],
)
def test_the_ttl_is_clamped_between_the_minimum_and_the_maximum(
    requested: int | None, seconds: int
) -> None:
    spec = DaySpec().given(registered("b1")).when(place("b1", "M1", ttl_seconds=requested))
    spec.then_events((HoldPlaced, {"expires_at": T0 + timedelta(seconds=seconds)}))


def test_a_re_sent_placement_returns_its_hold_and_writes_nothing() -> None:
    spec = DaySpec().given(registered("b1"))
    first = spec.when(place("b1", "M1"), command_id="p1").result
    spec.after(seconds=5).when(place("b1", "M1"), command_id="p1")
    assert spec.then_no_events() == first
    assert len(spec.day.holds) == 1


def test_a_hold_needs_an_open_known_booking() -> None:
    spec = DaySpec().given(registered("b1"), closed("b1"))
    spec.when(place("b1", "M1")).then_error(ErrorCode.BOOKING_CLOSED, status="cancelled")
    spec.when(place("b2", "M1")).then_error(ErrorCode.BOOKING_NOT_FOUND, booking_id="b2")


def test_a_hold_gets_the_allocation_checks() -> None:
    spec = DaySpec().given(registered("b1", 4))
    spec.when(place("b1", "M1", "M3")).then_error(ErrorCode.ADJACENCY_INVALID)
    spec.when(place("b1", "M1", "M3", require_adjacency=False)).then_events(HoldPlaced)
    spec.then_hold(spec.hold_id("cmd-2"), adjacency_required=False)


# --- rate limit -----------------------------------------------------------------------------


def five_holds() -> list[Fact]:
    """Five holds host-1 placed for b1 at T0."""
    return [held("b1", "M1", hold_id=f"h{n}") for n in range(5)]


def test_a_sixth_hold_within_the_window_is_rate_limited() -> None:
    spec = DaySpec().given(registered("b1"), *five_holds())
    spec.after(seconds=59).when(place("b1", "M2"))
    spec.then_error(
        ErrorCode.HOLD_RATE_LIMITED,
        booking_id="b1",
        actor_id="host-1",
        limit=5,
        window_seconds=60,
        retry_at="2026-11-24T17:01:00Z",
    )
    spec.after(seconds=1).when(place("b1", "M2")).then_events(HoldPlaced)


def test_released_holds_still_count_towards_the_rate_limit() -> None:
    spec = DaySpec().given(registered("b1"), *five_holds())
    spec.given(*(released(f"h{n}") for n in range(5)))
    spec.when(place("b1", "M2")).then_error(ErrorCode.HOLD_RATE_LIMITED)


def test_the_rate_limit_is_per_actor_and_per_booking() -> None:
    spec = DaySpec().given(registered("b1"), registered("b2", 2, "21:00"))
    spec.given(*five_holds())
    spec.when(place("b1", "M2"), actor_id="host-2").then_events(HoldPlaced)
    spec.when(place("b2", "M2")).then_events(HoldPlaced)


def test_the_rate_limit_follows_the_rules() -> None:
    rules = HoldRules(rate_limit=2, rate_window_seconds=10)
    spec = DaySpec(rules=rules).given(registered("b1"), held("b1", "M1"), held("b1", "M2"))
    spec.after(seconds=9).when(place("b1", "M3", rules=rules))
    spec.then_error(ErrorCode.HOLD_RATE_LIMITED, limit=2, window_seconds=10)
    spec.after(seconds=1).when(place("b1", "M3", rules=rules)).then_events(HoldPlaced)


# --- hold conflicts -------------------------------------------------------------------------


def test_another_bookings_live_hold_blocks_the_tables() -> None:
    spec = DaySpec().given(registered("b1"), registered("b2"), held("b2", "M1", hold_id="h2"))
    spec.when(place("b1", "M2", "M1"))
    error = spec.then_error(ErrorCode.HOLD_CONFLICT)
    assert error.details["holds"] == [
        {
            "hold_id": "h2",
            "booking_id": "b2",
            "tables": ["M1"],
            "window": {"start": "2026-11-24T19:00:00Z", "end": "2026-11-24T20:05:00Z"},
            "expires_at": "2026-11-24T17:03:00Z",
        }
    ]


def test_a_bookings_own_hold_never_blocks_it() -> None:
    spec = DaySpec().given(registered("b1"), held("b1", "M1"))
    spec.when(place("b1", "M1")).then_events(HoldPlaced)


@pytest.mark.parametrize(("seconds", "blocked"), [(179, True), (180, False)])
def test_an_expired_hold_blocks_nothing(seconds: int, blocked: bool) -> None:
    spec = DaySpec().given(registered("b1"), registered("b2"), held("b2", "M1"))
    spec.after(seconds=seconds).when(place("b1", "M1"))
    if blocked:
        spec.then_error(ErrorCode.HOLD_CONFLICT)
    else:
        spec.then_events(HoldPlaced)


def test_a_released_hold_blocks_nothing() -> None:
    spec = DaySpec().given(
        registered("b1"), registered("b2"), held("b2", "M1", hold_id="h2"), released("h2")
    )
    spec.when(place("b1", "M1")).then_events(HoldPlaced)


@pytest.mark.parametrize(
    ("start", "blocked"), [("20:00", True), ("20:05", False), ("18:00", True), ("17:55", False)]
)
def test_only_holds_in_overlapping_windows_block(start: str, blocked: bool) -> None:
    """b1 dines [19:00, 20:05); b2's windows [20:05, 21:10) and [17:55, 19:00) only touch it."""
    spec = DaySpec().given(registered("b1"), registered("b2", 2, start), held("b2", "M1"))
    spec.when(place("b1", "M1"))
    if blocked:
        spec.then_error(ErrorCode.HOLD_CONFLICT)
    else:
        spec.then_events(HoldPlaced)


def test_another_bookings_assignment_blocks_a_hold() -> None:
    spec = DaySpec().given(registered("b1"), registered("b2"), assigned("b2", "M1"))
    spec.when(place("b1", "M1"))
    error = spec.then_error(ErrorCode.ASSIGNMENT_CONFLICT)
    assert [c["booking_id"] for c in error.details["conflicts"]] == ["b2"]


# --- replacing a hold -----------------------------------------------------------------------


def test_a_replacement_is_placed_first_then_the_old_hold_released() -> None:
    spec = DaySpec().given(registered("b1"), held("b1", "M1", hold_id="h1"))
    spec.when(place("b1", "M2", replaces_hold_id="h1"), command_id="p2")
    spec.then_events(
        (HoldPlaced, {"hold_id": spec.hold_id("p2"), "replaces_hold_id": "h1"}),
        (HoldReleased, {"hold_id": "h1", "booking_id": "b1", "reason": "replaced"}),
    )
    spec.then_hold("h1", status="released", closed_by="p2")


def test_replacing_an_expired_hold_only_places_the_new_one() -> None:
    spec = DaySpec().given(registered("b1"), held("b1", "M1", hold_id="h1"))
    spec.after(minutes=3).when(place("b1", "M2", replaces_hold_id="h1"))
    spec.then_events(HoldPlaced)


def test_only_a_known_hold_of_the_same_booking_can_be_replaced() -> None:
    spec = DaySpec().given(registered("b1"), registered("b2"), held("b2", "M1", hold_id="h2"))
    spec.when(place("b1", "M2", replaces_hold_id="h2"))
    spec.then_error(ErrorCode.HOLD_BOOKING_MISMATCH, hold_id="h2", booking_id="b1")
    spec.when(place("b1", "M2", replaces_hold_id="h9"))
    spec.then_error(ErrorCode.HOLD_NOT_FOUND, hold_id="h9")


# --- extending ------------------------------------------------------------------------------


def holding() -> DaySpec:
    """b1 holds M1 as h1 since T0 (expires T0 + 180 s), placed by host-1."""
    return DaySpec().given(registered("b1"), held("b1", "M1", hold_id="h1"))


def test_the_creator_extends_a_hold_from_now() -> None:
    spec = holding().after(seconds=100)
    spec.when(extend("h1", 300))
    spec.then_events(
        (
            HoldExtended,
            {
                "hold_id": "h1",
                "expires_at": T0 + timedelta(seconds=400),
                "previous_expires_at": T0 + timedelta(seconds=180),
            },
        )
    )
    hold, extended = spec.result
    assert extended and hold.expires_at == T0 + timedelta(seconds=400)


def test_an_extension_is_clamped_to_the_maximum_ttl() -> None:
    spec = holding().when(extend("h1", 5000))
    spec.then_events((HoldExtended, {"expires_at": T0 + timedelta(seconds=900)}))


@pytest.mark.parametrize(("seconds", "ttl"), [(10, 60), (0, 180)])
def test_extending_to_an_earlier_or_equal_expiry_is_a_no_op(seconds: int, ttl: int) -> None:
    spec = holding().after(seconds=seconds).when(extend("h1", ttl))
    hold, extended = spec.then_no_events()
    assert not extended and hold.expires_at == T0 + timedelta(seconds=180)


def test_only_the_creator_or_a_manager_extends_a_hold() -> None:
    spec = holding()
    spec.when(extend("h1", 300), actor_id="host-2")
    spec.then_error(ErrorCode.HOLD_FORBIDDEN, hold_id="h1", actor_id="host-2", action="extend")
    spec.when(extend("h1", 300, role="manager"), actor_id="boss").then_events(HoldExtended)
    spec.when(extend("h1", 600, role="system"), actor_id="sweeper").then_events(HoldExtended)


def test_an_expired_or_closed_hold_cannot_be_extended() -> None:
    spec = holding().after(seconds=180)
    spec.when(extend("h1", 300)).then_error(ErrorCode.HOLD_EXPIRED, hold_id="h1")
    spec.at(T0).given(expired("h1"))  # the sweeper's record wins over the clock
    spec.when(extend("h1", 300)).then_error(ErrorCode.HOLD_EXPIRED)
    spec = holding().given(released("h1"))
    spec.when(extend("h1", 300)).then_error(ErrorCode.HOLD_NOT_ACTIVE, status="released")
    spec.when(extend("h9", 300)).then_error(ErrorCode.HOLD_NOT_FOUND, hold_id="h9")


def test_a_re_sent_extension_reports_its_effect_and_writes_nothing() -> None:
    spec = holding().when(extend("h1", 300), command_id="x1")
    spec.then_events(HoldExtended)
    spec.after(seconds=30).when(extend("h1", 300), command_id="x1")
    hold, extended = spec.then_no_events()
    assert extended and hold.expires_at == T0 + timedelta(seconds=300)


# --- releasing ------------------------------------------------------------------------------


def test_the_creator_releases_a_hold() -> None:
    spec = holding().when(release("h1"), command_id="r1")
    spec.then_events((HoldReleased, {"hold_id": "h1", "booking_id": "b1", "reason": "released"}))
    assert spec.result == (True, "released")
    spec.then_hold("h1", status="released", closed_by="r1")


def test_a_re_sent_release_says_released_and_writes_nothing() -> None:
    spec = holding().when(release("h1"), command_id="r1")
    assert spec.when(release("h1"), command_id="r1").then_no_events() == (True, "released")


@pytest.mark.parametrize(
    ("history", "seconds", "answer"),
    [
        ("unknown", 0, (False, "unknown")),
        ("released", 0, (False, "released")),
        ("expired", 0, (False, "expired")),
        ("live", 180, (False, "expired")),
    ],
)
def test_releasing_a_hold_that_is_not_live_is_a_no_op_that_says_so(
    history: str, seconds: int, answer: tuple[bool, str]
) -> None:
    spec = holding()
    if history == "released":
        spec.given(released("h1"))
    elif history == "expired":
        spec.given(expired("h1"))
    hold_id = "h9" if history == "unknown" else "h1"
    assert spec.after(seconds=seconds).when(release(hold_id)).then_no_events() == answer


def test_only_the_creator_or_a_manager_releases_a_hold() -> None:
    spec = holding()
    spec.when(release("h1"), actor_id="host-2")
    spec.then_error(ErrorCode.HOLD_FORBIDDEN, hold_id="h1", action="release")
    spec.then_hold("h1", status="live")
    spec.when(release("h1", role="manager"), actor_id="boss").then_events(HoldReleased)


# --- the sweeper ----------------------------------------------------------------------------


def test_the_sweeper_records_each_hold_past_its_expiry_once() -> None:
    spec = DaySpec().given(
        registered("b1"),
        registered("b2", 2, "21:00"),
        held("b2", "M1", hold_id="h-b", ttl_seconds=60),
        held("b1", "M1", hold_id="h-a", ttl_seconds=60),
        held("b1", "M2", hold_id="h-c", ttl_seconds=300),
        held("b1", "M3", hold_id="h-d", ttl_seconds=60),
        released("h-d"),
    )
    spec.after(seconds=60).when(expire())
    spec.then_events(
        (HoldExpired, {"hold_id": "h-a", "booking_id": "b1", "expires_at": at("17:01")}),
        (HoldExpired, {"hold_id": "h-b", "booking_id": "b2"}),
    )
    assert spec.result == ["h-a", "h-b"]
    spec.then_hold("h-a", status="expired")
    spec.then_hold("h-c", status="live")
    assert spec.when(expire()).then_no_events() == []

"""The service day's conflict indexes answer exactly as scans of every booking and hold.

Random days are built from raw events (applied without the commands' checks, so overlapping
assignments, empty windows, re-registrations and closed holds all occur); every conflict
query is then asked of the indexed day and of the naive scans kept here, the way the day
answered before it had indexes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.planner import Blocker
from seatledger.domain.service_day import (
    BookingClosed,
    BookingRegistered,
    HoldExpired,
    HoldExtended,
    HoldPlaced,
    HoldReleased,
    ServiceDay,
    ServiceDayOpened,
    TableChange,
    TablesAssigned,
    day_id,
)
from seatledger.domain.service_day.slots import Slot, TableSlots
from seatledger.domain.values import Window, utc_instant

DAY = date(2026, 11, 24)
ORIGIN = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
TABLES = ("T1", "T2", "T3", "T4", "T5")
BOOKINGS = ("b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8")
DAY_ID = day_id("r1", DAY)


def naive_assignment_conflicts(
    day: ServiceDay, window: Window, tables: tuple[str, ...], exclude_booking: str
) -> list[dict[str, Any]]:
    wanted = set(tables)
    blocking = []
    for other in day.bookings.values():
        if other.booking_id == exclude_booking or not other.tables:
            continue
        shared = wanted.intersection(other.tables)
        if shared and other.window.overlaps(window):
            blocking.append(
                {
                    "booking_id": other.booking_id,
                    "tables": sorted(shared),
                    "window": other.window.canonical(),
                }
            )
    return sorted(blocking, key=lambda item: item["booking_id"])


def naive_hold_conflicts(
    day: ServiceDay, window: Window, tables: tuple[str, ...], exclude_booking: str, now: datetime
) -> list[dict[str, Any]]:
    wanted = set(tables)
    blocking = []
    for hold in day.holds.values():
        if hold.booking_id == exclude_booking or not hold.is_live(now):
            continue
        shared = wanted.intersection(hold.tables)
        if shared and hold.window.overlaps(window):
            blocking.append(
                {
                    "hold_id": hold.hold_id,
                    "booking_id": hold.booking_id,
                    "tables": sorted(shared),
                    "window": hold.window.canonical(),
                    "expires_at": utc_instant(hold.expires_at),
                }
            )
    return sorted(blocking, key=lambda item: item["hold_id"])


def naive_blockers(
    day: ServiceDay, window: Window, booking_id: str, now: datetime
) -> dict[str, Blocker]:
    blocked: dict[str, Blocker] = {}
    for hold in day.holds.values():
        if hold.booking_id != booking_id and hold.is_live(now) and hold.window.overlaps(window):
            for table_id in hold.tables:
                blocked[table_id] = Blocker("hold", hold.hold_id, hold.booking_id)
    for other in day.bookings.values():
        if other.booking_id != booking_id and other.tables and other.window.overlaps(window):
            for table_id in other.tables:
                blocked[table_id] = Blocker("assignment", other.booking_id, other.booking_id)
    return blocked


def minutes(value: int) -> datetime:
    return ORIGIN + timedelta(minutes=value)


windows = st.builds(
    lambda start, length: Window(start=minutes(start), end=minutes(start + length)),
    st.integers(0, 40).map(lambda q: 15 * q),
    st.integers(-15, 180),
)
table_sets = st.lists(st.sampled_from(TABLES), max_size=3, unique=True).map(
    lambda ts: tuple(sorted(ts))
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("register"), st.sampled_from(BOOKINGS), windows),
        st.tuples(st.just("assign"), st.sampled_from(BOOKINGS), table_sets),
        st.tuples(st.just("hold"), st.sampled_from(BOOKINGS), table_sets, st.integers(0, 600)),
        st.tuples(
            st.just("end-hold"), st.integers(0, 20), st.sampled_from(("released", "expired"))
        ),
        st.tuples(st.just("extend"), st.integers(0, 20), st.integers(0, 900)),
        st.tuples(st.just("close"), st.sampled_from(BOOKINGS)),
    ),
    max_size=40,
)


class _Builder:
    """Raw events for a day (the commands' checks left out)."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = [
            ServiceDayOpened(
                originator_id=DAY_ID,
                originator_version=1,
                timestamp=ORIGIN,
                command_id="c1",
                actor_id="a",
                restaurant_id="r1",
                service_date=DAY,
            )
        ]
        self.day: ServiceDay = self.events[0].mutate(None)

    def emit(self, event_type: Any, **fields: Any) -> None:
        version = len(self.events) + 1
        event = event_type(
            originator_id=DAY_ID,
            originator_version=version,
            timestamp=minutes(version),
            command_id=f"c{version}",
            actor_id="a",
            restaurant_id="r1",
            service_date=DAY,
            **fields,
        )
        self.day = event.mutate(self.day)
        self.events.append(event)

    def change(self, booking_id: str, tables: tuple[str, ...], status: Any) -> TableChange:
        booking = self.day.bookings[booking_id]
        return TableChange(
            booking_id=booking_id,
            requested=tables,
            tables=tables,
            added=tables,
            removed=(),
            members=(),
            window=booking.window,
            zone_id=None,
            merge_group_id=None,
            status=status,
            idempotency_key=None,
            source="manual",
        )

    def apply(self, operation: tuple[Any, ...]) -> None:
        kind, *args = operation
        day = self.day
        if kind == "register":
            booking_id, window = args
            self.emit(
                BookingRegistered,
                booking_id=booking_id,
                party_size=2,
                start_at=window.start,
                window=window,
                service="dinner",
                fallback=False,
                clamped=False,
            )
        elif kind == "assign" and args[0] in day.bookings:
            booking_id, tables = args
            status = "confirmed" if tables else "pending"
            self.emit(TablesAssigned, change=self.change(booking_id, tables, status))
        elif kind == "hold" and args[0] in day.bookings:
            booking_id, tables, ttl = args
            booking = day.bookings[booking_id]
            self.emit(
                HoldPlaced,
                hold_id=f"h{len(self.events)}",
                booking_id=booking_id,
                tables=tables,
                zone_id=None,
                window=booking.window,
                expires_at=minutes(len(self.events) + ttl),
                source="manual",
                policy_version=None,
                zone_ids=None,
                adjacency=None,
                table_facts=None,
                adjacency_required=None,
            )
        elif kind in ("end-hold", "extend") and day.holds:
            hold = list(day.holds.values())[args[0] % len(day.holds)]
            if kind == "extend":
                self.emit(
                    HoldExtended,
                    hold_id=hold.hold_id,
                    expires_at=hold.expires_at + timedelta(seconds=args[1]),
                    previous_expires_at=hold.expires_at,
                )
            elif hold.status == "live":
                event_type = HoldReleased if args[1] == "released" else HoldExpired
                extra: dict[str, Any] = (
                    {"reason": "released"}
                    if event_type is HoldReleased
                    else {"expires_at": hold.expires_at}
                )
                self.emit(event_type, hold_id=hold.hold_id, booking_id=hold.booking_id, **extra)
        elif kind == "close" and args[0] in day.bookings:
            booking_id = args[0]
            booking = day.bookings[booking_id]
            live = tuple(
                sorted(
                    h.hold_id
                    for h in day.holds.values()
                    if h.booking_id == booking_id and h.status == "live"
                )
            )
            change = self.change(booking_id, (), "cancelled") if booking.tables else None
            self.emit(
                BookingClosed,
                booking_id=booking_id,
                status="cancelled",
                change=change,
                released_holds=live,
            )


def build(ops: list[tuple[Any, ...]]) -> _Builder:
    builder = _Builder()
    for operation in ops:
        builder.apply(operation)
    return builder


def assert_same_answers(
    day: ServiceDay,
    window: Window,
    tables: tuple[str, ...],
    exclude: str,
    now: datetime,
) -> None:
    assert day.assignment_conflicts(window, tables, exclude) == naive_assignment_conflicts(
        day, window, tables, exclude
    )
    assert day.hold_conflicts(window, tables, exclude, now) == naive_hold_conflicts(
        day, window, tables, exclude, now
    )
    assert day.blockers(window, exclude, now) == naive_blockers(day, window, exclude, now)


queries = st.lists(
    st.tuples(windows, table_sets, st.sampled_from(("", *BOOKINGS)), st.integers(0, 900)),
    min_size=1,
    max_size=8,
)


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, asked=queries)
def test_indexed_conflicts_answer_as_the_scans(
    ops: list[tuple[Any, ...]], asked: list[tuple[Window, tuple[str, ...], str, int]]
) -> None:
    day = build(ops).day
    for window, tables, exclude, now in asked:
        assert_same_answers(day, window, tables, exclude, minutes(now))


@hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_indexes_are_derived_state_rebuilt_by_a_replay(ops: list[tuple[Any, ...]]) -> None:
    """The indexes follow from the events alone: a replay (and a copy) has the same ones,
    and they hold exactly the seated bookings' and the live holds' windows."""
    builder = build(ops)
    replayed: ServiceDay | None = None
    for event in builder.events:
        replayed = event.mutate(replayed)
    assert replayed is not None
    for name in ("booking_slots", "hold_slots", "holds_by_booking", "live_hold_ids"):
        assert getattr(replayed, name) == getattr(builder.day, name), name
    day = builder.day
    expected: dict[str, set[str]] = {}
    for booking in day.bookings.values():
        if booking.window.start < booking.window.end:
            for table_id in booking.tables:
                expected.setdefault(table_id, set()).add(booking.booking_id)
    assert {t: {s.ref for s in slots.slots} for t, slots in day.booking_slots.items()} == expected
    live = [h.hold_id for h in day.holds.values() if h.status == "live"]
    assert list(day.live_hold_ids) == live


def test_table_slots_walk_back_only_as_far_as_a_window_can_reach() -> None:
    long = Slot(minutes(0), 0, minutes(600), "long")
    short = [Slot(minutes(60 * i), i + 1, minutes(60 * i + 30), f"s{i}") for i in range(1, 9)]
    slots = TableSlots.of([long, *short])
    assert slots is not None
    found = {slot.ref for slot in slots.overlapping(minutes(125), minutes(130))}
    assert found == {"long", "s2"}
    assert list(slots.overlapping(minutes(130), minutes(130))) == []

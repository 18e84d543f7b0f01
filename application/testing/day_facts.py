"""Facts for :class:`~seatledger.application.testing.day_spec.DaySpec`: short ways to say
what already happened on a service day, and an in-memory floor to say it on.

A fact is recorded against the day so far, stamped by the spec (next version, the spec's
instant, a ``given-<version>`` command id unless one is named). Plain facts (``registered``,
``held``, ``released``, ``expired``) build their event directly, so a history may hold what
no command would allow now (six holds in one second, a hold of an absent actor); facts that
carry derived ids (``assigned``, ``unassigned``, ``closed``, ``step``) run the aggregate's
own command, so their ids are exactly the ones it derives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from seatledger.domain.aggregate import DomainEvent, Stamp
from seatledger.domain.layout import Edge, FloorLayout, FloorView, Table, Zone
from seatledger.domain.policy import VenuePolicy, block_window
from seatledger.domain.service_day import (
    BookingRegistered,
    ClosedStatus,
    DayEvent,
    HoldExpired,
    HoldPlaced,
    HoldReleased,
    HoldRules,
    HoldSource,
    ReleaseReason,
    ServiceDay,
    derive_hold_id,
)
from seatledger.domain.values import sorted_unique

#: ``command(day, floor, stamp)``: one call of a ``ServiceDay`` command.
DayCommand = Callable[[ServiceDay, FloorView, Stamp], Any]

Recorder = Callable[[ServiceDay, FloorView, HoldRules, Stamp], list[DomainEvent]]


@dataclass(frozen=True)
class Fact:
    """Something that happened, recorded by ``record(day, floor, rules, stamp)``, which
    applies its events to the day and returns them."""

    record: Recorder
    command_id: str | None = None
    actor_id: str | None = None


def _emit(
    day: ServiceDay, event_type: type[DomainEvent], stamp: Stamp, **fields: Any
) -> list[DomainEvent]:
    if issubclass(event_type, DayEvent):  # day events name their day, as the aggregate's do
        fields = {"restaurant_id": day.restaurant_id, "service_date": day.service_date, **fields}
    event = event_type(
        originator_id=day.id,
        originator_version=day.version + 1,
        timestamp=stamp.now,
        command_id=stamp.command_id,
        actor_id=stamp.actor_id,
        **fields,
    )
    event.mutate(day)
    return [event]


# --- plain facts ----------------------------------------------------------------------------


def registered(
    booking_id: str,
    party_size: int = 2,
    start: str = "19:00",
    *,
    service: str | None = None,
    command_id: str | None = None,
) -> Fact:
    """A booking registered with the block window the floor's policy gives it."""

    def record(
        day: ServiceDay, floor: FloorView, rules: HoldRules, stamp: Stamp
    ) -> list[DomainEvent]:
        block = block_window(
            floor.policy, day.service_date, time.fromisoformat(start), party_size, service
        )
        if block.service_date != day.service_date:
            raise ValueError(f"a {start} start belongs to the service day {block.service_date}")
        return _emit(
            day,
            BookingRegistered,
            stamp,
            booking_id=booking_id,
            party_size=party_size,
            start_at=block.start_at,
            window=block.window,
            service=block.service,
            fallback=block.fallback,
            clamped=block.clamped,
        )

    return Fact(record, command_id)


def held(
    booking_id: str,
    *tables: str,
    hold_id: str | None = None,
    ttl_seconds: int | None = None,
    source: HoldSource = "manual",
    require_adjacency: bool | None = None,
    actor_id: str | None = None,
    command_id: str | None = None,
) -> Fact:
    """A hold placed now on the booking's window, with the floor's snapshot of its tables
    and the rules' TTL; no check is made. The id defaults to the one the aggregate would
    derive from the command id (``DaySpec.hold_id``)."""

    def record(
        day: ServiceDay, floor: FloorView, rules: HoldRules, stamp: Stamp
    ) -> list[DomainEvent]:
        booking = day.booking(booking_id)
        ids = sorted_unique(tables)
        the_id = hold_id or derive_hold_id(day.id, stamp.command_id)
        if the_id in day.holds:
            raise ValueError(f"hold {the_id} exists already: name another hold_id")
        snapshot = floor.snapshot(ids)
        required = (
            floor.policy.requires_adjacency(booking.party_size)
            if require_adjacency is None
            else require_adjacency
        )
        return _emit(
            day,
            HoldPlaced,
            stamp,
            hold_id=the_id,
            booking_id=booking_id,
            tables=ids,
            zone_id=snapshot.zone_ids[0] if len(snapshot.zone_ids) == 1 else None,
            window=booking.window,
            expires_at=stamp.now + rules.ttl(ttl_seconds),
            source=source,
            policy_version=snapshot.policy_version,
            zone_ids=snapshot.zone_ids,
            adjacency=snapshot.adjacency,
            table_facts=snapshot.tables,
            adjacency_required=required,
        )

    return Fact(record, command_id, actor_id)


def released(hold_id: str, reason: ReleaseReason = "released") -> Fact:
    def record(
        day: ServiceDay, floor: FloorView, rules: HoldRules, stamp: Stamp
    ) -> list[DomainEvent]:
        hold = day.hold(hold_id)
        return _emit(
            day, HoldReleased, stamp, hold_id=hold_id, booking_id=hold.booking_id, reason=reason
        )

    return Fact(record)


def expired(hold_id: str) -> Fact:
    """The sweeper's record of an expiry (the hold need not have expired yet: history)."""

    def record(
        day: ServiceDay, floor: FloorView, rules: HoldRules, stamp: Stamp
    ) -> list[DomainEvent]:
        hold = day.hold(hold_id)
        return _emit(
            day,
            HoldExpired,
            stamp,
            hold_id=hold_id,
            booking_id=hold.booking_id,
            expires_at=hold.expires_at,
        )

    return Fact(record)


# --- facts the aggregate records ------------------------------------------------------------


def step(
    command: DayCommand, *, command_id: str | None = None, actor_id: str | None = None
) -> Fact:
    """Any aggregate command, run as history: it must succeed."""

    def record(
        day: ServiceDay, floor: FloorView, rules: HoldRules, stamp: Stamp
    ) -> list[DomainEvent]:
        command(day, floor, stamp)
        return day.collect_events()

    return Fact(record, command_id, actor_id)


def assigned(
    booking_id: str,
    *tables: str,
    replace: bool = False,
    idempotency_key: str | None = None,
    command_id: str | None = None,
) -> Fact:
    return step(
        lambda day, floor, stamp: day.assign_tables(
            booking_id=booking_id,
            tables=tables,
            floor=floor,
            stamp=stamp,
            idempotency_key=idempotency_key,
            replace=replace,
        ),
        command_id=command_id,
    )


def unassigned(booking_id: str, *tables: str) -> Fact:
    """Some tables of the booking, or all of them when none are named."""
    return step(
        lambda day, floor, stamp: day.unassign_tables(
            booking_id=booking_id, tables=tables or None, stamp=stamp
        )
    )


def closed(booking_id: str, status: ClosedStatus = "cancelled") -> Fact:
    return step(
        lambda day, floor, stamp: day.close_booking(
            booking_id=booking_id, status=status, stamp=stamp
        )
    )


# --- floors ---------------------------------------------------------------------------------

_LAYOUT_STAMP = Stamp(datetime(2026, 1, 1, tzinfo=UTC), "layout", "owner")


def floor_view(
    restaurant_id: str,
    *,
    zones: Iterable[Zone],
    tables: Iterable[Table],
    edges: Iterable[Edge] = (),
    policy: VenuePolicy | None = None,
) -> FloorView:
    """A floor built through the layout aggregate's own commands, in memory."""
    layout = FloorLayout.create(
        restaurant_id=restaurant_id,
        name=f"Restaurant {restaurant_id}",
        policy=policy or VenuePolicy(),
        stamp=_LAYOUT_STAMP,
    )
    for zone in zones:
        layout.define_zone(zone, stamp=_LAYOUT_STAMP)
    for table in tables:
        layout.define_table(table, stamp=_LAYOUT_STAMP)
    layout.link_tables(edges, stamp=_LAYOUT_STAMP)
    return layout.view()


def sample_floor(restaurant_id: str = "r1", policy: VenuePolicy | None = None) -> FloorView:
    """Three zones: main (M1-M6 movable 2-tops in a row, fixed 4-top M7, fixed 6-top M8),
    patio (P1-P4 movable 4-tops in a row, fixed 2-top P5), bar (2-top B1, inactive B2)."""
    tables = [
        *(Table(table_id=f"M{i}", zone_id="main", capacity=2, movable=True) for i in range(1, 7)),
        Table(table_id="M7", zone_id="main", capacity=4),
        Table(table_id="M8", zone_id="main", capacity=6),
        *(Table(table_id=f"P{i}", zone_id="patio", capacity=4, movable=True) for i in range(1, 5)),
        Table(table_id="P5", zone_id="patio", capacity=2),
        Table(table_id="B1", zone_id="bar", capacity=2),
        Table(table_id="B2", zone_id="bar", capacity=2, active=False),
    ]
    return floor_view(
        restaurant_id,
        zones=[
            Zone(zone_id="main", name="Main room"),
            Zone(zone_id="patio", name="Patio", preference=1),
            Zone(zone_id="bar", name="Bar", preference=2),
        ],
        tables=tables,
        edges=[(f"M{i}", f"M{i + 1}") for i in range(1, 6)]
        + [(f"P{i}", f"P{i + 1}") for i in range(1, 4)],
        policy=policy,
    )

"""Shared test data: the sample floors as commands, and small command builders."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from seatledger.application.commands import (
    AssignTables,
    ConfirmHold,
    CreateRestaurant,
    PlaceHold,
    RegisterBooking,
    UnassignTables,
)
from seatledger.application.samples import GARDEN_FLOOR, SMALL_FLOOR
from seatledger.application.service import AssignmentService
from seatledger.domain.directory import HoldFiled, hold_index_id
from seatledger.domain.layout import FloorView
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day import HoldPlaced

DAY = date(2026, 11, 24)  # a Tuesday in winter: London is UTC+0
SUMMER_DAY = date(2026, 5, 15)  # London is UTC+1


def floor(restaurant_id: str = "r1", policy: VenuePolicy | None = None) -> CreateRestaurant:
    """The 15-table, three-zone sample floor (``SMALL_FLOOR``: main, patio, bar)."""
    return SMALL_FLOOR.create(restaurant_id, policy=policy)


def booking(
    booking_id: str,
    party_size: int = 2,
    start: str = "19:00",
    restaurant_id: str = "r1",
    service_date: date = DAY,
    **extra: Any,
) -> RegisterBooking:
    return RegisterBooking(
        restaurant_id=restaurant_id,
        booking_id=booking_id,
        party_size=party_size,
        service_date=service_date,
        start_time=time.fromisoformat(start),
        **extra,
    )


def hold(booking_id: str, *tables: str, restaurant_id: str = "r1", **extra: Any) -> PlaceHold:
    return PlaceHold(
        restaurant_id=restaurant_id,
        booking_id=booking_id,
        table_ids=list(tables),
        actor_id=extra.pop("actor_id", "host-1"),
        **extra,
    )


# --- more builders (service tests) ----------------------------------------------------------

#: 17:00Z on DAY: two hours before the usual 19:00 booking, inside no service window concerns.
EVENING = "2026-11-24T17:00:00+00:00"


def other_floor(restaurant_id: str = "r2") -> CreateRestaurant:
    """A second tenant whose table ids (S1..S3) and zone (garden) exist nowhere else."""
    return GARDEN_FLOOR.create(restaurant_id, actor_id="owner-2")


def assign(booking_id: str, *tables: str, restaurant_id: str = "r1", **extra: Any) -> AssignTables:
    return AssignTables(
        restaurant_id=restaurant_id,
        booking_id=booking_id,
        table_ids=list(tables),
        actor_id=extra.pop("actor_id", "host-1"),
        **extra,
    )


def unassign(
    booking_id: str, *tables: str, restaurant_id: str = "r1", **extra: Any
) -> UnassignTables:
    """Unassign the named tables, or all of them when none are named."""
    return UnassignTables(
        restaurant_id=restaurant_id,
        booking_id=booking_id,
        table_ids=list(tables) if tables else None,
        actor_id=extra.pop("actor_id", "host-1"),
        **extra,
    )


def confirm(booking_id: str, hold_id: str, restaurant_id: str = "r1", **extra: Any) -> ConfirmHold:
    return ConfirmHold(
        restaurant_id=restaurant_id,
        booking_id=booking_id,
        hold_id=hold_id,
        actor_id=extra.pop("actor_id", "host-1"),
        **extra,
    )


def position(service: AssignmentService) -> int:
    """How many events the store holds (every write moves it)."""
    return service.recorder.max_notification_id() or 0


def recorded_hold(
    service: AssignmentService,
    *,
    hold_id: str,
    booking_id: str,
    tables: tuple[str, ...],
    expires_at: datetime,
    restaurant_id: str = "r1",
    service_date: date = DAY,
    complete: bool = True,
) -> tuple[HoldPlaced, HoldFiled]:
    """A hold as a recorded history would hold it, for states the API never produces:
    no tables, or (``complete=False``) no snapshot metadata, as a v1 ``HoldPlaced`` upcast
    to v2 yields. Feed the two events to ``Scenario.given``."""
    day = service.load_day(restaurant_id, service_date)
    assert day is not None, "register a booking on that day first"
    view = service.get_restaurant(restaurant_id)
    snapshot = (
        FloorView.build(
            restaurant_id=restaurant_id,
            name=view.name,
            policy=view.policy,
            zones={z.zone_id: z for z in view.zones},
            tables={t.table_id: t for t in view.tables},
            edges=view.adjacency,
            version=view.version,
        ).snapshot(tables)
        if complete
        else None
    )
    booking_state = day.booking(booking_id)
    placed_at = expires_at - timedelta(seconds=180)
    placed = HoldPlaced(
        originator_id=day.id,
        originator_version=day.version + 1,
        timestamp=placed_at,
        command_id=f"recorded-{hold_id}",
        actor_id="host-1",
        restaurant_id=restaurant_id,
        service_date=service_date,
        hold_id=hold_id,
        booking_id=booking_id,
        tables=tables,
        zone_id=snapshot.zone_ids[0] if snapshot and snapshot.zone_ids else None,
        window=booking_state.window,
        expires_at=expires_at,
        source="manual",
        policy_version=snapshot.policy_version if snapshot else None,
        zone_ids=snapshot.zone_ids if snapshot else None,
        adjacency=snapshot.adjacency if snapshot else None,
        table_facts=snapshot.tables if snapshot else None,
        adjacency_required=True if snapshot else None,
    )
    filed = HoldFiled(
        originator_id=hold_index_id(hold_id),
        originator_version=1,
        timestamp=placed_at,
        command_id=f"recorded-{hold_id}",
        actor_id="host-1",
        hold_id=hold_id,
        restaurant_id=restaurant_id,
        service_date=service_date,
        booking_id=booking_id,
    )
    return placed, filed

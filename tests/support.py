"""Shared test data: one realistic floor and small command builders."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from application.commands import CreateRestaurant, PlaceHold, RegisterBooking
from domain.layout import Table, Zone
from domain.policy import VenuePolicy

DAY = date(2026, 11, 24)  # a Tuesday in winter: London is UTC+0
SUMMER_DAY = date(2026, 5, 15)  # London is UTC+1


def floor(restaurant_id: str = "r1", policy: VenuePolicy | None = None) -> CreateRestaurant:
    """Three zones: main (six movable 2-tops in a row, a fixed 4-top, a fixed 6-top),
    patio (four movable 4-tops in a row, a fixed 2-top), bar (a 2-top and an inactive 2-top)."""
    tables = [
        *(Table(table_id=f"M{i}", zone_id="main", capacity=2, movable=True) for i in range(1, 7)),
        Table(table_id="M7", zone_id="main", capacity=4),
        Table(table_id="M8", zone_id="main", capacity=6),
        *(Table(table_id=f"P{i}", zone_id="patio", capacity=4, movable=True) for i in range(1, 5)),
        Table(table_id="P5", zone_id="patio", capacity=2),
        Table(table_id="B1", zone_id="bar", capacity=2),
        Table(table_id="B2", zone_id="bar", capacity=2, active=False),
    ]
    adjacency = [(f"M{i}", f"M{i + 1}") for i in range(1, 6)] + [
        (f"P{i}", f"P{i + 1}") for i in range(1, 4)
    ]
    return CreateRestaurant(
        restaurant_id=restaurant_id,
        name=f"Restaurant {restaurant_id}",
        policy=policy or VenuePolicy(),
        zones=[
            Zone(zone_id="main", name="Main room"),
            Zone(zone_id="patio", name="Patio", preference=1),
            Zone(zone_id="bar", name="Bar", preference=2),
        ],
        tables=tables,
        adjacency=adjacency,
        actor_id="owner",
    )


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

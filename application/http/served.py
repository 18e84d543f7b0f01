"""What the HTTP layer needs of a service: :class:`Served`, met by one store or by shards.

``create_app`` serves an :class:`AssignmentService` (``check_ready`` asks its event store) or a
:class:`~seatledger.application.shards.router.ShardedService` (every method routed by
restaurant, ``check_ready`` asking every shard). Commands are
called by their name in ``COMMAND_METHODS`` (``command_routes``), so the protocol lists only
what is called by attribute.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

from seatledger.application.clock import Clock
from seatledger.application.results import BookingView, DayView, HoldView, Member, RestaurantView
from seatledger.application.telemetry import Telemetry
from seatledger.domain.values import Window
from seatledger.projections.availability import Availability


class Served(Protocol):
    """The service behind the HTTP app."""

    @property
    def telemetry(self) -> Telemetry: ...

    @property
    def clock(self) -> Clock: ...

    def check_ready(self) -> None:
        """Return when every event store answers; else raise ``STORAGE_UNAVAILABLE``."""

    def get_restaurant(self, restaurant_id: str) -> RestaurantView: ...

    def get_booking(self, restaurant_id: str, booking_id: str) -> BookingView: ...

    def members(self, restaurant_id: str, booking_id: str) -> list[Member]: ...

    def get_hold(self, restaurant_id: str, hold_id: str) -> HoldView: ...

    def get_day(self, restaurant_id: str, service_date: date) -> DayView: ...

    def table_availability(
        self,
        restaurant_id: str,
        table_id: str,
        window: Window,
        exclude_booking_id: str | None = None,
    ) -> Availability: ...

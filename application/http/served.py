"""What the HTTP layer needs of a service: :class:`Served`, met by one store or by shards.

``create_app`` serves an :class:`AssignmentService` (one store, wrapped in :class:`OneStore`)
or a :class:`~seatledger.application.shards.router.ShardedService` (it meets the protocol
itself: every method routed by restaurant, ``check_ready`` asking every shard). Commands are
called by their name in ``COMMAND_METHODS`` (``command_routes``), so the protocol lists only
what is called by attribute.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from seatledger.application.clock import Clock
from seatledger.application.errors import InfrastructureCode, InfrastructureError
from seatledger.application.results import BookingView, DayView, HoldView, Member, RestaurantView
from seatledger.application.service import AssignmentService
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


class OneStore:
    """One :class:`AssignmentService` as :class:`Served`: its own event store answers."""

    def __init__(self, service: AssignmentService) -> None:
        self.service = service
        self.telemetry = service.telemetry
        self.clock = service.clock

    def check_ready(self) -> None:
        try:
            self.service.recorder.max_notification_id()
        except Exception as exc:
            raise InfrastructureError(
                InfrastructureCode.STORAGE_UNAVAILABLE,
                f"the event store does not answer: {type(exc).__name__}",
                details={"operation": "readyz", "error": str(exc)},
            ) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self.service, name)


def served(service: AssignmentService | Served) -> Served:
    return OneStore(service) if isinstance(service, AssignmentService) else service

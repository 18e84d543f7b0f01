"""Directory aggregates: where a booking or a hold lives.

Commands address bookings by (restaurant, booking id) and holds by a global hold id. These tiny
aggregates, with ids derived from those addresses and saved in the same ``save()`` as the
service day, let the application find the right day aggregate, and find a hold of another
restaurant to report a tenant mismatch, without any read model.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar
from uuid import UUID

from seatledger.domain.aggregate import Aggregate, CreationEvent, DomainEvent, Stamp
from seatledger.domain.errors import ErrorCode, HoldError
from seatledger.domain.values import derive_id


def booking_index_id(restaurant_id: str, booking_id: str) -> UUID:
    return derive_id("booking-index", restaurant_id, booking_id)


def hold_index_id(hold_id: str) -> UUID:
    return derive_id("hold-index", hold_id)


def hold_restaurant_mismatch(hold_id: str, restaurant_id: str) -> HoldError:
    """A hold filed under another restaurant than the caller's. The details name the caller's
    restaurant only: the other tenant's id is never returned (the application logs it)."""
    return HoldError(
        ErrorCode.HOLD_RESTAURANT_MISMATCH,
        f"hold {hold_id} does not belong to restaurant {restaurant_id}",
        details={"hold_id": hold_id, "restaurant_id": restaurant_id},
    )


class BookingFiled(CreationEvent):
    TOPIC: ClassVar[str] = "seatledger.directory.BookingFiled"

    restaurant_id: str
    booking_id: str
    service_date: date

    def create(self) -> BookingIndex:
        return BookingIndex(
            self.originator_id, self.restaurant_id, self.booking_id, self.service_date
        )


class HoldFiled(CreationEvent):
    TOPIC: ClassVar[str] = "seatledger.directory.HoldFiled"

    hold_id: str
    restaurant_id: str
    service_date: date
    booking_id: str

    def create(self) -> HoldIndex:
        return HoldIndex(
            self.originator_id,
            self.hold_id,
            self.restaurant_id,
            self.service_date,
            self.booking_id,
        )


class BookingIndex(Aggregate):
    EVENTS: ClassVar[tuple[type[DomainEvent], ...]] = (BookingFiled,)

    def __init__(
        self, aggregate_id: UUID, restaurant_id: str, booking_id: str, service_date: date
    ) -> None:
        super().__init__(aggregate_id)
        self.restaurant_id = restaurant_id
        self.booking_id = booking_id
        self.service_date = service_date

    @classmethod
    def file(
        cls,
        *,
        restaurant_id: str,
        booking_id: str,
        service_date: date,
        stamp: Stamp,
    ) -> BookingIndex:
        return cls._start(
            BookingFiled(
                originator_id=booking_index_id(restaurant_id, booking_id),
                originator_version=1,
                timestamp=stamp.now,
                command_id=stamp.command_id,
                actor_id=stamp.actor_id,
                restaurant_id=restaurant_id,
                booking_id=booking_id,
                service_date=service_date,
            )
        )


class HoldIndex(Aggregate):
    EVENTS: ClassVar[tuple[type[DomainEvent], ...]] = (HoldFiled,)

    def __init__(
        self,
        aggregate_id: UUID,
        hold_id: str,
        restaurant_id: str,
        service_date: date,
        booking_id: str,
    ) -> None:
        super().__init__(aggregate_id)
        self.hold_id = hold_id
        self.restaurant_id = restaurant_id
        self.service_date = service_date
        self.booking_id = booking_id

    @classmethod
    def file(
        cls,
        *,
        hold_id: str,
        restaurant_id: str,
        service_date: date,
        booking_id: str,
        stamp: Stamp,
    ) -> HoldIndex:
        return cls._start(
            HoldFiled(
                originator_id=hold_index_id(hold_id),
                originator_version=1,
                timestamp=stamp.now,
                command_id=stamp.command_id,
                actor_id=stamp.actor_id,
                hold_id=hold_id,
                restaurant_id=restaurant_id,
                service_date=service_date,
                booking_id=booking_id,
            )
        )

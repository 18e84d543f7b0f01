"""What every read model implements, and what it is given: the contract between the page
runner and a projection.

A projection turns a page of events into row writes inside the caller's transaction; the
runner (:mod:`seatledger.projections.runner`) owns the transaction and the tracking
position, so rows and position always commit together. The read models themselves live one
per module: :mod:`seatledger.projections.members`, :mod:`seatledger.projections.outbox`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.service_day import (
    BookingClosed,
    ChangeEvent,
    HoldConfirmed,
    TableChange,
    TablesAssigned,
    TablesUnassigned,
)
from seatledger.projections.db import Tx

#: Topics of the events that change a booking's table set.
CHANGE_TOPICS: tuple[str, ...] = (
    TablesAssigned.TOPIC,
    HoldConfirmed.TOPIC,
    TablesUnassigned.TOPIC,
    BookingClosed.TOPIC,
)


def table_change(event: DomainEvent) -> TableChange | None:
    """The table-set change an event records, if any."""
    if isinstance(event, ChangeEvent):
        return event.change
    if isinstance(event, BookingClosed):
        return event.change
    return None


@dataclass(frozen=True)
class DayInfo:
    """Which restaurant and service date a service-day aggregate belongs to."""

    restaurant_id: str
    service_date: date


@dataclass(frozen=True)
class Projected:
    """One notification, decoded, with the service day it belongs to."""

    notification_id: int
    event: DomainEvent
    day: DayInfo


class Projection(ABC):
    #: Name of the tracking row; also keys the advisory lock.
    name: str
    #: Only notifications of these topics are read (the rest cannot change this projection).
    topics: tuple[str, ...]

    @abstractmethod
    def apply(self, tx: Tx, batch: Sequence[Projected]) -> None:
        """Write the rows for a page of events (in notification order)."""

    @abstractmethod
    def reset(self, tx: Tx) -> None:
        """Delete every row (for a rebuild from the start of the log)."""

"""What every read model implements, and what it is given: the contract between the page
runner and a projection.

A projection turns a page of events into row writes inside the caller's transaction; the
runner (:mod:`seatledger.projections.runner`) owns the transaction and the tracking
position, so rows and position always commit together. The read models themselves live one
per module: :mod:`seatledger.projections.members`, :mod:`seatledger.projections.outbox`.
"""

from __future__ import annotations

import functools
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.service_day import TableChange
from seatledger.domain.service_day.events import DAY_EVENTS
from seatledger.domain.values import utc_instant
from seatledger.projections.db import Tx

#: :func:`~seatledger.domain.values.utc_instant`, remembered: a page formats the same few
#: window bounds many times over (rows, keys, payloads), and a hit is cheaper than a format.
#: Instants that occur once (an event's timestamp) go to ``utc_instant`` directly.
instant = functools.lru_cache(maxsize=8192)(utc_instant)


@functools.cache
def change_field(event_class: type[DomainEvent]) -> str | None:
    """The field through which events of this class record a booking's table-set change
    (typed ``TableChange`` or ``TableChange | None``), or None if they record none."""
    names = [
        name
        for name, info in event_class.model_fields.items()
        if info.annotation is TableChange
        or (
            typing.get_origin(info.annotation) in (types.UnionType, typing.Union)
            and TableChange in typing.get_args(info.annotation)
        )
    ]
    if len(names) > 1:
        raise TypeError(f"{event_class.__qualname__} records more than one change: {names}")
    return names[0] if names else None


def change_events(events: Iterable[type[DomainEvent]]) -> tuple[type[DomainEvent], ...]:
    """The event classes that record a table-set change, in the given order."""
    return tuple(event_class for event_class in events if change_field(event_class) is not None)


#: Topics of the events that change a booking's table set: derived from the service day's
#: event classes, so a new change event is read by the projections without a list to update.
CHANGE_TOPICS: tuple[str, ...] = tuple(event.TOPIC for event in change_events(DAY_EVENTS))


def table_change(event: DomainEvent) -> TableChange | None:
    """The table-set change an event records, if any."""
    name = change_field(type(event))
    if name is None:
        return None
    change = getattr(event, name)
    assert change is None or isinstance(change, TableChange)
    return change


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

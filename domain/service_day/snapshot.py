"""A service day's state as one value, so a big day loads without replaying its events.

A snapshot holds what the events made of the day (bookings, holds, idempotency records, the
command ids seen, the changes and drift records by command) in the day's own order; the
derived indexes are left out and rebuilt while the snapshot is turned back into a day (cheaper
than storing them: docs/architecture.md, *Snapshots*). It is versioned by its topic:
``STATE_VERSION`` (raised with any change to the state or to this model) and a fingerprint of
every day event's topic and ``class_version``, so an upcast makes older snapshots unreadable
and the day is rebuilt from its events instead.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar
from uuid import UUID

from pydantic import Field

from seatledger.domain.service_day.aggregate import ServiceDay
from seatledger.domain.service_day.events import DAY_EVENTS, PolicyDriftDetected
from seatledger.domain.service_day.state import (
    BookingState,
    HoldState,
    IdempotencyRecord,
    TableChange,
)
from seatledger.domain.values import Frozen, digest

#: Raise with every change to the day's state or to :class:`DaySnapshot`.
STATE_VERSION = 1
SNAPSHOT_TOPIC_PREFIX = "seatledger.snapshots.ServiceDay"


def snapshot_topic() -> str:
    """The topic snapshots of the current schema are stored under."""
    events = [[event.TOPIC, event.class_version] for event in DAY_EVENTS]
    return f"{SNAPSHOT_TOPIC_PREFIX}.v{STATE_VERSION}.{digest([STATE_VERSION, events])[:16]}"


class CommandChange(Frozen):
    command_id: str
    change: TableChange


class DaySnapshot(Frozen):
    """The day at ``originator_version``; ``mutate(None)`` gives the day back."""

    TOPIC: ClassVar[str] = snapshot_topic()

    originator_id: UUID
    originator_version: int = Field(ge=1)
    restaurant_id: str
    service_date: date
    #: In the day's order (first registered or placed first): the scans' tie-breaks follow it.
    bookings: tuple[BookingState, ...]
    holds: tuple[HoldState, ...]
    idempotency: tuple[IdempotencyRecord, ...]
    seen_commands: tuple[str, ...]
    command_changes: tuple[CommandChange, ...]
    command_drifts: tuple[PolicyDriftDetected, ...]

    @classmethod
    def take(cls, day: ServiceDay) -> DaySnapshot:
        assert not day.pending_events, "snapshots are of stored state"
        return cls(
            originator_id=day.id,
            originator_version=day.version,
            restaurant_id=day.restaurant_id,
            service_date=day.service_date,
            bookings=tuple(day.bookings.values()),
            holds=tuple(day.holds.values()),
            idempotency=tuple(day.idempotency.values()),
            seen_commands=tuple(sorted(day.seen_commands)),
            command_changes=tuple(
                CommandChange(command_id=command_id, change=change)
                for command_id, change in day.command_changes.items()
            ),
            command_drifts=tuple(day.command_drifts.values()),
        )

    def mutate(self, aggregate: object) -> ServiceDay:
        """The library's projector starts a day from its snapshot (``aggregate`` is None)."""
        assert aggregate is None, "a snapshot starts a day"
        day = ServiceDay(self.originator_id, self.restaurant_id, self.service_date)
        for booking in self.bookings:
            day.put_booking(booking)
        for hold in self.holds:
            day.put_hold(hold)
        day.idempotency = {
            (record.change.booking_id, record.key): record for record in self.idempotency
        }
        day.seen_commands = set(self.seen_commands)
        day.command_changes = {item.command_id: item.change for item in self.command_changes}
        day.command_drifts = {drift.command_id: drift for drift in self.command_drifts}
        day.version = self.originator_version
        return day

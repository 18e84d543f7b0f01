"""A service day's state as one value, so a big day loads without replaying its events.

A snapshot holds what the events made of the day (bookings, holds, idempotency records, the
command ids seen, the changes and drift records by command) in the day's own order; the
derived indexes are left out and rebuilt while the snapshot is turned back into a day (cheaper
than storing them: docs/architecture.md, *Snapshots*). It is versioned by its topic:
``STATE_VERSION`` (raised with any change to the state or to this model) and a fingerprint of
every day event's topic and ``class_version``, so an upcast makes older snapshots unreadable
and the day is rebuilt from its events instead.

Stored, it is packed (:mod:`seatledger.domain.packed`): each value once in a pool, decoded
without validation, because a snapshot is data we wrote ourselves under a topic that names
the packed classes and their fields; the drift records in it are events and are validated.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any, ClassVar
from uuid import UUID

import pydantic_core
from pydantic import Field

from seatledger.domain.layout import AdjacencySnapshot, TableFacts
from seatledger.domain.packed import Codebook
from seatledger.domain.service_day.aggregate import ServiceDay
from seatledger.domain.service_day.events import DAY_EVENTS, PolicyDriftDetected
from seatledger.domain.service_day.state import (
    BookingState,
    HoldState,
    IdempotencyRecord,
    SeatedTable,
    TableChange,
)
from seatledger.domain.values import Frozen, Window, digest

#: Raise with every change to the day's state, to :class:`DaySnapshot` or to its packing.
STATE_VERSION = 2
SNAPSHOT_TOPIC_PREFIX = "seatledger.snapshots.ServiceDay"


#: Every class a packed snapshot holds (their order is the tags' in the pool).
PACKED: tuple[type[Frozen], ...] = (
    Window,
    SeatedTable,
    TableChange,
    IdempotencyRecord,
    TableFacts,
    AdjacencySnapshot,
    BookingState,
    HoldState,
)

CODEBOOK = Codebook(PACKED)


def snapshot_topic() -> str:
    """The topic snapshots of the current schema are stored under: the state version, the
    day events' topics and class versions, and the packed classes' fields."""
    events = [[event.TOPIC, event.class_version] for event in DAY_EVENTS]
    fingerprint = digest([STATE_VERSION, events, CODEBOOK.fingerprint()])
    return f"{SNAPSHOT_TOPIC_PREFIX}.v{STATE_VERSION}.{fingerprint[:16]}"


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
    #: (command id, its change), in the order the commands were applied.
    command_changes: tuple[tuple[str, TableChange], ...]
    command_drifts: tuple[PolicyDriftDetected, ...]

    @classmethod
    def take(cls, day: ServiceDay) -> DaySnapshot:
        assert not day.pending_events, "snapshots are of stored state"
        # the day's own values, already valid: constructed, not validated again
        return cls.model_construct(
            originator_id=day.id,
            originator_version=day.version,
            restaurant_id=day.restaurant_id,
            service_date=day.service_date,
            bookings=tuple(day.bookings.values()),
            holds=tuple(day.holds.values()),
            idempotency=tuple(day.idempotency.values()),
            seen_commands=tuple(sorted(day.seen_commands)),
            command_changes=tuple(day.command_changes.items()),
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
        day.command_changes = dict(self.command_changes)
        day.command_drifts = {drift.command_id: drift for drift in self.command_drifts}
        day.version = self.originator_version
        return day

    def pack(self) -> bytes:
        """The stored form: a pool of values and references into it (module docstring)."""
        packer = CODEBOOK.packer()
        ref = packer.ref
        state: dict[str, Any] = {
            "originator_id": str(self.originator_id),
            "originator_version": self.originator_version,
            "restaurant_id": self.restaurant_id,
            "service_date": self.service_date.isoformat(),
            "bookings": [ref(booking) for booking in self.bookings],
            "holds": [ref(hold) for hold in self.holds],
            "idempotency": [ref(record) for record in self.idempotency],
            "seen_commands": list(self.seen_commands),
            "command_changes": [
                [command_id, ref(change)] for command_id, change in self.command_changes
            ],
            "command_drifts": [drift.model_dump(mode="json") for drift in self.command_drifts],
        }
        state["pool"] = packer.pool
        # pydantic's serialiser of plain data (2.4 times json.dumps)
        return pydantic_core.to_json(state)

    @classmethod
    def unpack(cls, data: bytes | str) -> DaySnapshot:
        """What :meth:`pack` wrote, under the same topic (values trusted, drifts validated)."""
        state = json.loads(data)
        pool = CODEBOOK.unpack(state["pool"])
        return cls.model_construct(
            originator_id=UUID(state["originator_id"]),
            originator_version=state["originator_version"],
            restaurant_id=state["restaurant_id"],
            service_date=date.fromisoformat(state["service_date"]),
            bookings=tuple([pool[i] for i in state["bookings"]]),
            holds=tuple([pool[i] for i in state["holds"]]),
            idempotency=tuple([pool[i] for i in state["idempotency"]]),
            seen_commands=tuple(state["seen_commands"]),
            command_changes=tuple([(command, pool[i]) for command, i in state["command_changes"]]),
            command_drifts=tuple(
                PolicyDriftDetected.model_validate(drift) for drift in state["command_drifts"]
            ),
        )

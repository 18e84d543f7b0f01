"""State of a service day: bookings, holds, table changes and idempotency records (values).

Everything here is immutable data; the aggregate (:mod:`.aggregate`) replaces values, never
mutates them, so a cached day can be copied cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime

from seatledger.domain.errors import PolicyDriftError
from seatledger.domain.layout import AdjacencySnapshot, TableFacts
from seatledger.domain.planner import Plan
from seatledger.domain.values import Frozen, Window, derive_id, digest, sorted_unique, utc_instant

BookingStatus = Literal["pending", "confirmed", "cancelled", "no_show", "completed"]
ClosedStatus = Literal["cancelled", "no_show", "completed"]
CLOSED_STATUSES: frozenset[str] = frozenset({"cancelled", "no_show", "completed"})
HoldStatus = Literal["live", "consumed", "released", "expired"]
HoldSource = Literal["manual", "auto"]
ChangeSource = Literal["manual", "auto", "hold", "unassign", "cancel"]
ReleaseReason = Literal["released", "replaced", "booking_closed"]
ActorRole = Literal["host", "manager", "system"]

#: The snapshot fields a hold must carry for its confirm to check drift.
HOLD_METADATA_FIELDS: tuple[str, ...] = (
    "policy_version",
    "zone_ids",
    "adjacency",
    "table_facts",
    "adjacency_required",
)


def day_id(restaurant_id: str, service_date: date) -> UUID:
    return derive_id("day", restaurant_id, service_date.isoformat())


def derive_hold_id(day: UUID, command_id: str) -> str:
    """Hold ids come from the placing command, so a re-sent placement finds its hold."""
    return str(derive_id("hold", str(day), command_id))


def derive_idempotency_key(
    restaurant_id: str,
    booking_id: str,
    tables: tuple[str, ...],
    window: Window,
    policy_version: str,
) -> str:
    """The key used when the caller gives none (docs/domain.md §7)."""
    return "derived:" + digest(
        [
            restaurant_id,
            booking_id,
            list(sorted_unique(tables)),
            utc_instant(window.start),
            utc_instant(window.end),
            policy_version,
        ]
    )


@dataclass(frozen=True)
class HoldRules:
    """Service-wide hold settings (TTL clamp and rate limit), handed in by the application."""

    default_ttl_seconds: int = 180
    min_ttl_seconds: int = 60
    max_ttl_seconds: int = 900
    rate_limit: int = 5
    rate_window_seconds: int = 60

    def ttl(self, requested: int | None) -> timedelta:
        seconds = self.default_ttl_seconds if requested is None else requested
        return timedelta(seconds=min(max(seconds, self.min_ttl_seconds), self.max_ttl_seconds))


class SeatedTable(Frozen):
    """One table of a booking's set, with its stable assignment id (stored field names)."""

    table_id: str
    assignment_id: str


class TableChange(Frozen):
    """A booking's table set after a command, as every assignment event records it."""

    booking_id: str
    requested: tuple[str, ...]
    tables: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    members: tuple[SeatedTable, ...]
    window: Window
    zone_id: str | None
    merge_group_id: str | None
    status: BookingStatus
    idempotency_key: str | None
    key_derived: bool = False
    hold_id: str | None = None
    source: ChangeSource


class BookingState(Frozen):
    booking_id: str
    party_size: int
    start_at: AwareDatetime
    window: Window
    service: str
    fallback: bool
    clamped: bool
    status: BookingStatus = "pending"
    tables: tuple[str, ...] = ()
    members: tuple[SeatedTable, ...] = ()
    zone_id: str | None = None
    merge_group_id: str | None = None
    last_change_version: int = 0

    @property
    def is_closed(self) -> bool:
        return self.status in CLOSED_STATUSES


class HoldState(Frozen):
    hold_id: str
    booking_id: str
    tables: tuple[str, ...]
    zone_id: str | None
    window: Window
    placed_at: AwareDatetime
    expires_at: AwareDatetime
    actor_id: str
    source: HoldSource
    status: HoldStatus = "live"
    policy_version: str | None
    zone_ids: tuple[str, ...] | None
    adjacency: AdjacencySnapshot | None
    table_facts: dict[str, TableFacts] | None
    adjacency_required: bool | None
    relaxations: tuple[str, ...] = ()
    #: The command that consumed, released or expired the hold, and the last one that
    #: extended it: a re-sent command recognises its own effect.
    closed_by: str | None = None
    extended_by: str | None = None

    def is_live(self, now: datetime) -> bool:
        """Live = not consumed, released or expired; expired means ``now >= expires_at``."""
        return self.status == "live" and now < self.expires_at

    def missing_metadata(self) -> list[str]:
        return [name for name in HOLD_METADATA_FIELDS if getattr(self, name) is None]


class IdempotencyRecord(Frozen):
    key: str
    derived: bool
    requested: tuple[str, ...]
    change: TableChange
    version: int


@dataclass(frozen=True)
class Quote:
    """The plan for a booking and the hold placed on its best candidate (None: no candidate,
    and ``plan.reason`` says why)."""

    plan: Plan
    hold: HoldState | None


@dataclass(frozen=True)
class Outcome:
    """What an assignment command did: the booking after it, and the change (None: no-op)."""

    booking: BookingState
    change: TableChange | None
    replayed: bool = False


@dataclass(frozen=True)
class DriftRejected:
    """A confirm rejected for drift: the rejection is recorded on the day (a pending event),
    so the caller saves it first and raises ``error`` after the save."""

    error: PolicyDriftError

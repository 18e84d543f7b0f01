"""State of a service day: bookings, holds, table changes and idempotency records (values).

Everything here is immutable data; the aggregate (:mod:`.aggregate`) replaces values, never
mutates them, so a cached day can be copied cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime

from seatledger.domain.aggregate import Aggregate, E, Stamp
from seatledger.domain.errors import AllocationError, ErrorCode, NotFoundError, PolicyDriftError
from seatledger.domain.layout import AdjacencySnapshot, TableFacts
from seatledger.domain.planner import Plan
from seatledger.domain.service_day.slots import Slot, TableSlots, with_slot, without_slot

if TYPE_CHECKING:
    from seatledger.domain.service_day.events import (
        BookingClosed,
        ChangeEvent,
        PolicyDriftDetected,
    )

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


class DayState(Aggregate):
    """The state of one service day and the helpers its events apply through; the layers
    above (conflicts, idempotency, holds, the aggregate) read it and decide."""

    def __init__(self, aggregate_id: UUID, restaurant_id: str, service_date: date) -> None:
        super().__init__(aggregate_id)
        self.restaurant_id = restaurant_id
        self.service_date = service_date
        self.bookings: dict[str, BookingState] = {}
        self.holds: dict[str, HoldState] = {}
        self.idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
        self.seen_commands: set[str] = set()
        self.command_changes: dict[str, TableChange] = {}
        self.command_drifts: dict[str, PolicyDriftDetected] = {}
        # Derived indexes (docs/architecture.md, *Conflict checks*): rebuilt by the events
        # on every replay, never stored, changed only through put_booking and put_hold.
        #: Per table: the windows of the bookings seated at it.
        self.booking_slots: dict[str, TableSlots] = {}
        #: Per table: the windows of the holds on it whose status is live (expiry by the
        #: clock is checked when asked: ``now`` is the command's).
        self.hold_slots: dict[str, TableSlots] = {}
        #: The order in which bookings were first registered (the scans' tie-break).
        self.booking_ordinals: dict[str, int] = {}
        self.hold_ordinals: dict[str, int] = {}
        #: Per booking: its hold ids, in the order they were placed.
        self.holds_by_booking: dict[str, tuple[str, ...]] = {}
        #: The holds whose status is live, in the order they were placed.
        self.live_hold_ids: dict[str, None] = {}

    def _trigger(self, event_type: type[E], stamp: Stamp, **fields: Any) -> E:
        """Every day event names its day (the one place that fills it in)."""
        return super()._trigger(
            event_type,
            stamp,
            restaurant_id=self.restaurant_id,
            service_date=self.service_date,
            **fields,
        )

    def put_booking(self, booking: BookingState) -> None:
        """Store a booking's new state and keep the table index in step with its tables."""
        booking_id = booking.booking_id
        old = self.bookings.get(booking_id)
        ordinal = self.booking_ordinals.setdefault(booking_id, len(self.booking_ordinals))
        self.bookings[booking_id] = booking
        if (
            old is not None
            and old.tables == booking.tables
            # a copied booking shares its window: no field-by-field comparison then
            and (old.window is booking.window or old.window == booking.window)
        ):
            return
        if old is not None:
            for table_id in old.tables:
                without_slot(self.booking_slots, table_id, booking_id)
        window = booking.window
        for table_id in booking.tables:
            with_slot(
                self.booking_slots, table_id, Slot(window.start, ordinal, window.end, booking_id)
            )

    def put_hold(self, hold: HoldState) -> None:
        """Store a hold's new state and keep the live-holds indexes in step with it."""
        hold_id = hold.hold_id
        old = self.holds.get(hold_id)
        if old is None:
            self.holds_by_booking[hold.booking_id] = (
                *self.holds_by_booking.get(hold.booking_id, ()),
                hold_id,
            )
        ordinal = self.hold_ordinals.setdefault(hold_id, len(self.hold_ordinals))
        self.holds[hold_id] = hold
        was_live = old is not None and old.status == "live"
        live = hold.status == "live"
        if (
            old is not None
            and was_live == live
            and (old.tables, old.window)
            == (
                hold.tables,
                hold.window,
            )
        ):
            return
        if old is not None and was_live:
            for table_id in old.tables:
                without_slot(self.hold_slots, table_id, hold_id)
            self.live_hold_ids.pop(hold_id, None)
        if live:
            self.live_hold_ids[hold_id] = None
            window = hold.window
            for table_id in hold.tables:
                with_slot(
                    self.hold_slots, table_id, Slot(window.start, ordinal, window.end, hold_id)
                )

    def close_hold(self, hold_id: str, status: HoldStatus, command_id: str) -> None:
        """Mark a hold consumed, released or expired by the command that did it."""
        hold = self.holds[hold_id]
        self.put_hold(hold.updated(status=status, closed_by=command_id))

    def record_change(self, event: ChangeEvent | BookingClosed) -> None:
        change = event.change
        assert change is not None
        booking = self.bookings[change.booking_id]
        self.put_booking(
            booking.updated(
                tables=change.tables,
                members=change.members,
                zone_id=change.zone_id,
                merge_group_id=change.merge_group_id,
                status=change.status,
                last_change_version=event.originator_version,
            )
        )
        if change.idempotency_key is not None:
            self.idempotency[(change.booking_id, change.idempotency_key)] = IdempotencyRecord(
                key=change.idempotency_key,
                derived=change.key_derived,
                requested=change.requested,
                change=change,
                version=event.originator_version,
            )
        self.command_changes[event.command_id] = change

    def booking(self, booking_id: str) -> BookingState:
        try:
            return self.bookings[booking_id]
        except KeyError:
            raise NotFoundError(
                ErrorCode.BOOKING_NOT_FOUND,
                f"booking {booking_id} not found in restaurant {self.restaurant_id}",
                details={"restaurant_id": self.restaurant_id, "booking_id": booking_id},
            ) from None

    def hold(self, hold_id: str) -> HoldState:
        try:
            return self.holds[hold_id]
        except KeyError:
            raise NotFoundError(
                ErrorCode.HOLD_NOT_FOUND,
                f"hold {hold_id} not found",
                details={"hold_id": hold_id},
            ) from None

    def _open_booking(self, booking_id: str) -> BookingState:
        booking = self.booking(booking_id)
        if booking.is_closed:
            raise AllocationError(
                ErrorCode.BOOKING_CLOSED,
                f"booking {booking_id} is {booking.status}",
                details={"booking_id": booking_id, "status": booking.status},
            )
        return booking

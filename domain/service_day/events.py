"""Events of a service day (data): what happened, and how each event evolves the state.

``apply`` only copies event data into state: it re-runs on every replay.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import AwareDatetime, Field

from seatledger.domain.aggregate import CreationEvent, DomainEvent
from seatledger.domain.errors import (
    DriftKind,
)
from seatledger.domain.layout import AdjacencySnapshot, TableFacts
from seatledger.domain.service_day.state import (
    BookingState,
    ClosedStatus,
    HoldSource,
    HoldState,
    ReleaseReason,
    TableChange,
)
from seatledger.domain.values import Frozen, Window

if TYPE_CHECKING:
    from seatledger.domain.service_day.aggregate import ServiceDay


def _day_unknown(state: dict[str, Any]) -> None:
    """Version 1 of a day event did not name its day, and the aggregate id is a hash of it:
    the upcast cannot know the day, readers look it up from the day's first event."""
    state.setdefault("restaurant_id", None)
    state.setdefault("service_date", None)


class DayEvent(DomainEvent):
    """An event of a service day after its opening. From version 2 on (version 3 for
    ``HoldPlaced``) every day event names its day, filled in by ``ServiceDay._trigger``, so
    readers (the projections) need no look-up; upcast older events have None."""

    class_version: ClassVar[int] = 2

    restaurant_id: str | None
    service_date: date | None

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        _day_unknown(state)

    def apply(self, aggregate: ServiceDay) -> None:
        raise NotImplementedError

    def mutate(self, aggregate: Any) -> Any:
        result = super().mutate(aggregate)
        aggregate.seen_commands.add(self.command_id)
        return result


class ServiceDayOpened(CreationEvent):
    TOPIC: ClassVar[str] = "seatledger.assignments.ServiceDayOpened"

    restaurant_id: str
    service_date: date

    def create(self) -> ServiceDay:
        # the aggregate module imports these events; importing it here avoids the cycle
        from seatledger.domain.service_day.aggregate import ServiceDay  # noqa: PLC0415

        day = ServiceDay(self.originator_id, self.restaurant_id, self.service_date)
        day.seen_commands.add(self.command_id)
        return day


class BookingRegistered(DayEvent):
    TOPIC: ClassVar[str] = "seatledger.assignments.BookingRegistered"

    booking_id: str
    party_size: int = Field(ge=1)
    start_at: AwareDatetime
    window: Window
    service: str
    fallback: bool
    clamped: bool

    def apply(self, aggregate: ServiceDay) -> None:
        aggregate.put_booking(
            BookingState(
                booking_id=self.booking_id,
                party_size=self.party_size,
                start_at=self.start_at,
                window=self.window,
                service=self.service,
                fallback=self.fallback,
                clamped=self.clamped,
            )
        )


class HoldPlaced(DayEvent):
    """Version 2 added ``table_facts`` and ``adjacency_required`` to the snapshot; holds
    stored as version 1 lack them and cannot be confirmed (``HOLD_METADATA_INCOMPLETE``).
    Version 3 names the day, like every day event."""

    TOPIC: ClassVar[str] = "seatledger.assignments.HoldPlaced"
    class_version: ClassVar[int] = 3

    hold_id: str
    booking_id: str
    tables: tuple[str, ...]
    zone_id: str | None
    window: Window
    expires_at: AwareDatetime
    source: HoldSource
    replaces_hold_id: str | None = None
    policy_version: str | None
    zone_ids: tuple[str, ...] | None
    adjacency: AdjacencySnapshot | None
    table_facts: dict[str, TableFacts] | None
    adjacency_required: bool | None
    relaxations: tuple[str, ...] = ()

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state.setdefault("table_facts", None)
        state.setdefault("adjacency_required", None)

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        _day_unknown(state)

    def apply(self, aggregate: ServiceDay) -> None:
        aggregate.put_hold(
            HoldState(
                hold_id=self.hold_id,
                booking_id=self.booking_id,
                tables=self.tables,
                zone_id=self.zone_id,
                window=self.window,
                placed_at=self.timestamp,
                expires_at=self.expires_at,
                actor_id=self.actor_id,
                source=self.source,
                policy_version=self.policy_version,
                zone_ids=self.zone_ids,
                adjacency=self.adjacency,
                table_facts=self.table_facts,
                adjacency_required=self.adjacency_required,
                relaxations=self.relaxations,
            )
        )


class HoldExtended(DayEvent):
    TOPIC: ClassVar[str] = "seatledger.assignments.HoldExtended"

    hold_id: str
    expires_at: AwareDatetime
    previous_expires_at: AwareDatetime

    def apply(self, aggregate: ServiceDay) -> None:
        hold = aggregate.holds[self.hold_id]
        aggregate.put_hold(hold.updated(expires_at=self.expires_at, extended_by=self.command_id))


class HoldReleased(DayEvent):
    TOPIC: ClassVar[str] = "seatledger.assignments.HoldReleased"

    hold_id: str
    booking_id: str
    reason: ReleaseReason

    def apply(self, aggregate: ServiceDay) -> None:
        aggregate.close_hold(self.hold_id, "released", self.command_id)


class HoldExpired(DayEvent):
    """Recorded by the sweeper for the audit trail; expiry itself is ``now >= expires_at``."""

    TOPIC: ClassVar[str] = "seatledger.assignments.HoldExpired"

    hold_id: str
    booking_id: str
    expires_at: AwareDatetime

    def apply(self, aggregate: ServiceDay) -> None:
        aggregate.close_hold(self.hold_id, "expired", self.command_id)


class ChangeEvent(DayEvent):
    """An event that sets a booking's table set."""

    change: TableChange

    def apply(self, aggregate: ServiceDay) -> None:
        aggregate.record_change(self)


class TablesAssigned(ChangeEvent):
    TOPIC: ClassVar[str] = "seatledger.assignments.TablesAssigned"

    replace: bool = False


class DriftRecovery(Frozen):
    """Set on the confirm that succeeded after drift in the same automated run."""

    kind: DriftKind
    attempt: int
    stale_hold_id: str


class HoldConfirmed(ChangeEvent):
    TOPIC: ClassVar[str] = "seatledger.assignments.HoldConfirmed"

    hold_id: str
    hold_tables: tuple[str, ...]
    zone_id: str | None
    expires_at: AwareDatetime
    recovered_drift: DriftRecovery | None = None

    def apply(self, aggregate: ServiceDay) -> None:
        aggregate.close_hold(self.hold_id, "consumed", self.command_id)
        aggregate.record_change(self)


class TablesUnassigned(ChangeEvent):
    TOPIC: ClassVar[str] = "seatledger.assignments.TablesUnassigned"


class BookingClosed(DayEvent):
    TOPIC: ClassVar[str] = "seatledger.assignments.BookingClosed"

    booking_id: str
    status: ClosedStatus
    change: TableChange | None
    released_holds: tuple[str, ...]

    def apply(self, aggregate: ServiceDay) -> None:
        for hold_id in self.released_holds:
            aggregate.close_hold(hold_id, "released", self.command_id)
        if self.change is not None:
            aggregate.record_change(self)
        booking = aggregate.bookings[self.booking_id]
        if booking.status != self.status or "status" not in booking.__pydantic_fields_set__:
            # (else the change set this very status: a copy would equal the booking stored)
            aggregate.put_booking(booking.updated(status=self.status))


class PolicyDriftDetected(DayEvent):
    """A confirm rejected for drift. Recorded so audits see it and the outbox can publish
    ``capacity.policy.drift``; ``first_in_run`` marks the one drift message of a run.
    The stale hold is released by it: holds never outlive a failed confirm."""

    TOPIC: ClassVar[str] = "seatledger.assignments.PolicyDriftDetected"

    booking_id: str
    hold_id: str
    kind: DriftKind
    details: dict[str, Any]
    attempt: int = Field(ge=1)
    automated: bool = False
    first_in_run: bool = True

    def apply(self, aggregate: ServiceDay) -> None:
        aggregate.command_drifts[self.command_id] = self
        # a stale hold can never be confirmed: the rejection releases it, so it blocks nothing
        hold = aggregate.holds.get(self.hold_id)
        if hold is not None and hold.status == "live":
            aggregate.close_hold(self.hold_id, "released", self.command_id)


DAY_EVENTS: tuple[type[DomainEvent], ...] = (
    ServiceDayOpened,
    BookingRegistered,
    HoldPlaced,
    HoldExtended,
    HoldReleased,
    HoldExpired,
    TablesAssigned,
    HoldConfirmed,
    TablesUnassigned,
    BookingClosed,
    PolicyDriftDetected,
)

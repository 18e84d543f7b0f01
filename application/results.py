"""What the service API returns: pydantic models, built from domain state."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from seatledger.domain.errors import DriftKind
from seatledger.domain.layout import FloorView, Table, Zone
from seatledger.domain.planner import Candidate, NoCandidateReason, Rejected
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day import (
    BookingState,
    BookingStatus,
    ChangeSource,
    HoldSource,
    HoldState,
    HoldStatus,
    ServiceDay,
)
from seatledger.domain.values import Window


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class Member(Result):
    """One (booking, table) assignment. ``assignment_id == ""`` means the row is not yet
    visible in the read model: re-read later. An id is never invented."""

    booking_id: str
    table_id: str
    assignment_id: str
    start_at: datetime
    end_at: datetime
    merge_group_id: str | None


class AssignmentResult(Result):
    restaurant_id: str
    booking_id: str
    status: BookingStatus
    table_ids: list[str]
    window: Window
    zone_id: str | None
    merge_group_id: str | None
    idempotency_key: str | None
    hold_id: str | None
    source: ChangeSource | None
    #: False when the command was a no-op (nothing to change) or a replay.
    changed: bool
    #: True when an earlier identical command's result was returned and nothing was written.
    replayed: bool
    members: list[Member]


class BookingView(Result):
    restaurant_id: str
    booking_id: str
    service_date: date
    party_size: int
    start_at: datetime
    window: Window
    service: str
    fallback: bool
    clamped: bool
    status: BookingStatus
    table_ids: list[str]
    zone_id: str | None
    merge_group_id: str | None

    @classmethod
    def of(cls, day: ServiceDay, booking: BookingState) -> BookingView:
        return cls(
            restaurant_id=day.restaurant_id,
            booking_id=booking.booking_id,
            service_date=day.service_date,
            party_size=booking.party_size,
            start_at=booking.start_at,
            window=booking.window,
            service=booking.service,
            fallback=booking.fallback,
            clamped=booking.clamped,
            status=booking.status,
            table_ids=list(booking.tables),
            zone_id=booking.zone_id,
            merge_group_id=booking.merge_group_id,
        )


class HoldView(Result):
    hold_id: str
    restaurant_id: str
    booking_id: str
    table_ids: list[str]
    zone_id: str | None
    window: Window
    placed_at: datetime
    expires_at: datetime
    actor_id: str
    source: HoldSource
    #: live / consumed / released / expired; a live hold past ``expires_at`` reads "expired".
    status: HoldStatus
    adjacency_required: bool | None
    policy_version: str | None
    relaxations: list[str]

    @classmethod
    def of(cls, day: ServiceDay, hold: HoldState, now: datetime) -> HoldView:
        status: HoldStatus = hold.status
        if status == "live" and not hold.is_live(now):
            status = "expired"
        return cls(
            hold_id=hold.hold_id,
            restaurant_id=day.restaurant_id,
            booking_id=hold.booking_id,
            table_ids=list(hold.tables),
            zone_id=hold.zone_id,
            window=hold.window,
            placed_at=hold.placed_at,
            expires_at=hold.expires_at,
            actor_id=hold.actor_id,
            source=hold.source,
            status=status,
            adjacency_required=hold.adjacency_required,
            policy_version=hold.policy_version,
            relaxations=list(hold.relaxations),
        )


class ExtendResult(Result):
    hold: HoldView
    extended: bool


class ReleaseResult(Result):
    hold_id: str
    released: bool
    #: "released" on success; otherwise why not: unknown, consumed, released or expired.
    status: str


class DayView(Result):
    restaurant_id: str
    service_date: date
    version: int
    bookings: list[BookingView]
    holds: list[HoldView]

    @classmethod
    def of(
        cls, restaurant_id: str, service_date: date, day: ServiceDay | None, now: datetime
    ) -> DayView:
        """The day's bookings and holds (a day nothing was registered on: empty, version 0)."""
        if day is None:
            return cls(
                restaurant_id=restaurant_id,
                service_date=service_date,
                version=0,
                bookings=[],
                holds=[],
            )
        return cls(
            restaurant_id=restaurant_id,
            service_date=service_date,
            version=day.version,
            bookings=[BookingView.of(day, day.bookings[b]) for b in sorted(day.bookings)],
            holds=[HoldView.of(day, day.holds[h], now) for h in sorted(day.holds)],
        )


class RestaurantView(Result):
    restaurant_id: str
    name: str
    policy: VenuePolicy
    policy_version: str
    zones: list[Zone]
    tables: list[Table]
    adjacency: list[tuple[str, str]]
    version: int

    @classmethod
    def of(cls, floor: FloorView) -> RestaurantView:
        return cls(
            restaurant_id=floor.restaurant_id,
            name=floor.name,
            policy=floor.policy,
            policy_version=floor.policy_version,
            zones=[floor.zones[z] for z in sorted(floor.zones)],
            tables=[floor.tables[t] for t in sorted(floor.tables)],
            adjacency=sorted(floor.edges),
            version=floor.version,
        )


class CandidateView(Result):
    table_ids: list[str]
    zone_id: str
    capacity: int
    slack: int
    adjacency_required: bool
    relaxations: list[str]

    @classmethod
    def of(cls, candidate: Candidate) -> CandidateView:
        return cls(
            table_ids=list(candidate.tables),
            zone_id=candidate.zone_id,
            capacity=candidate.capacity,
            slack=candidate.slack,
            adjacency_required=candidate.adjacency_required,
            relaxations=list(candidate.relaxations),
        )


class SkippedCandidate(Result):
    """A candidate the planner could not use, and why (e.g. HOLD_CONFLICT naming the hold)."""

    table_ids: list[str]
    reason: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, rejected: Rejected) -> SkippedCandidate:
        return cls(
            table_ids=list(rejected.tables), reason=rejected.reason, detail=dict(rejected.detail)
        )


class QuoteResult(Result):
    restaurant_id: str
    booking_id: str
    #: The hold on the best candidate; None when there is no candidate (see ``reason``).
    hold: HoldView | None
    reason: NoCandidateReason | None
    #: True when the booking already has tables: nothing was planned or held.
    already_assigned: bool
    relaxations: list[str]
    #: Ranked viable candidates (the best first; at most ten are listed).
    candidates: list[CandidateView]
    skipped: list[SkippedCandidate]
    skipped_total: int
    #: True when the planner's search budget ran out: the hold is on the best candidate it
    #: found, not necessarily the best there is (``PLANNER_SEARCH_BUDGET``).
    stopped_early: bool


class AutoAssignResult(Result):
    restaurant_id: str
    booking_id: str
    #: assigned, already_assigned (the booking had tables: nothing changed) or no_candidate
    outcome: Literal["assigned", "already_assigned", "no_candidate"]
    assignment: AssignmentResult | None
    attempts: int
    drift_recovered: bool
    drift_kind: DriftKind | None
    reason: NoCandidateReason | None
    relaxations: list[str]
    skipped: list[SkippedCandidate]

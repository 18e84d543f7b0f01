"""What each command does inside its unit of work: find its aggregates, let the domain decide,
shape the result.

Every handler takes the :class:`~seatledger.application.unit_of_work.UnitOfWork` of one
attempt (its stamp is the time, command id and actor of every event the attempt records) and
is re-run from scratch when a save turns out stale. Handlers never save, retry, catch storage
errors or read read models: the unit of work, the boundary and read-your-writes do.
"""

from __future__ import annotations

import logging
import time

from seatledger.application.commands import (
    AssignTables,
    CancelBooking,
    ChangePolicy,
    CompleteBooking,
    ConfirmHold,
    CreateRestaurant,
    DefineTable,
    DefineZone,
    ExpireHolds,
    ExtendHold,
    LinkTables,
    MarkNoShow,
    PlaceHold,
    RegisterBooking,
    UnassignTables,
    UnlinkTables,
)
from seatledger.application.results import (
    BookingView,
    CandidateView,
    ExtendResult,
    HoldView,
    QuoteResult,
    ReleaseResult,
    RestaurantView,
    SkippedCandidate,
)
from seatledger.application.telemetry import Telemetry
from seatledger.application.unit_of_work import UnitOfWork
from seatledger.domain.directory import BookingIndex
from seatledger.domain.errors import AlreadyExistsError, ErrorCode, HoldError, NotFoundError
from seatledger.domain.layout import FloorLayout, layout_id
from seatledger.domain.policy import block_window
from seatledger.domain.service_day import (
    ActorRole,
    AutomationContext,
    ClosedStatus,
    ConfirmRequest,
    DriftRejected,
    HoldFacts,
    HoldRules,
    HoldState,
    Outcome,
    ServiceDay,
    confirm_hold,
)


class CommandHandlers:
    """One handler per command (quote and release also serve auto-assign's steps)."""

    def __init__(self, hold_rules: HoldRules, search_budget: int) -> None:
        self.hold_rules = hold_rules
        self.search_budget = search_budget

    # --- layout ---

    def create_restaurant(self, work: UnitOfWork, command: CreateRestaurant) -> RestaurantView:
        existing = work.get(layout_id(command.restaurant_id), FloorLayout)
        if existing is not None:
            if existing.created_by == command.command_id:  # the same command, re-sent
                return RestaurantView.of(existing.view())
            raise AlreadyExistsError(
                ErrorCode.RESTAURANT_EXISTS,
                f"restaurant {command.restaurant_id} already exists",
                details={"restaurant_id": command.restaurant_id},
            )
        layout = work.add(
            FloorLayout.create(
                restaurant_id=command.restaurant_id,
                name=command.name,
                policy=command.policy,
                stamp=work.stamp,
            )
        )
        for zone in command.zones:
            layout.define_zone(zone, stamp=work.stamp)
        for table in command.tables:
            layout.define_table(table, stamp=work.stamp)
        if command.adjacency:
            layout.link_tables(command.adjacency, stamp=work.stamp)
        return RestaurantView.of(layout.view())

    def define_zone(self, work: UnitOfWork, command: DefineZone) -> RestaurantView:
        layout = work.layout(command.restaurant_id)
        layout.define_zone(command.zone, stamp=work.stamp)
        return RestaurantView.of(layout.view())

    def define_table(self, work: UnitOfWork, command: DefineTable) -> RestaurantView:
        layout = work.layout(command.restaurant_id)
        layout.define_table(command.table, stamp=work.stamp)
        return RestaurantView.of(layout.view())

    def link_tables(self, work: UnitOfWork, command: LinkTables) -> RestaurantView:
        layout = work.layout(command.restaurant_id)
        layout.link_tables(command.edges, stamp=work.stamp)
        return RestaurantView.of(layout.view())

    def unlink_tables(self, work: UnitOfWork, command: UnlinkTables) -> RestaurantView:
        layout = work.layout(command.restaurant_id)
        layout.unlink_tables(command.edges, stamp=work.stamp)
        return RestaurantView.of(layout.view())

    def change_policy(self, work: UnitOfWork, command: ChangePolicy) -> RestaurantView:
        layout = work.layout(command.restaurant_id)
        layout.change_policy(command.policy, stamp=work.stamp)
        return RestaurantView.of(layout.view())

    # --- bookings ---

    def register_booking(self, work: UnitOfWork, command: RegisterBooking) -> BookingView:
        floor = work.floor(command.restaurant_id)
        block = block_window(
            floor.policy,
            command.service_date,
            command.start_time,
            command.party_size,
            command.service,
        )
        service_date = block.service_date
        index = work.booking_index(command.restaurant_id, command.booking_id, registering=True)
        if index is not None and index.service_date != service_date:
            raise AlreadyExistsError(
                ErrorCode.BOOKING_EXISTS,
                f"booking {command.booking_id} is registered on {index.service_date}",
                details={
                    "booking_id": command.booking_id,
                    "service_date": index.service_date.isoformat(),
                },
            )
        day = work.find_day(command.restaurant_id, service_date)
        if day is None:
            day = work.add(
                ServiceDay.open(
                    restaurant_id=command.restaurant_id,
                    service_date=service_date,
                    stamp=work.stamp,
                )
            )
        if index is None:
            work.add(
                BookingIndex.file(
                    restaurant_id=command.restaurant_id,
                    booking_id=command.booking_id,
                    service_date=service_date,
                    stamp=work.stamp,
                )
            )
        booking = day.register_booking(
            booking_id=command.booking_id,
            party_size=command.party_size,
            block=block,
            stamp=work.stamp,
        )
        return BookingView.of(day, booking)

    def close_booking(
        self,
        work: UnitOfWork,
        command: CancelBooking | MarkNoShow | CompleteBooking,
        status: ClosedStatus,
    ) -> Outcome:
        work.prefetch_booking(command.restaurant_id, command.booking_id)
        work.floor(command.restaurant_id)
        day = work.booking_day(command.restaurant_id, command.booking_id)
        return day.close_booking(booking_id=command.booking_id, status=status, stamp=work.stamp)

    # --- holds ---

    def place_hold(self, work: UnitOfWork, command: PlaceHold) -> HoldView:
        work.prefetch_booking(command.restaurant_id, command.booking_id)
        floor = work.floor(command.restaurant_id)
        day = work.booking_day(command.restaurant_id, command.booking_id)
        if command.replaces_hold_id is not None:
            replaced = work.hold_location(command.restaurant_id, command.replaces_hold_id)
            if replaced is not None and replaced.service_date != day.service_date:
                # hold ids are global: a hold filed on another day is another booking's
                raise replaced_hold_mismatch(command.replaces_hold_id, command.booking_id)
        hold = day.place_hold(
            booking_id=command.booking_id,
            tables=tuple(command.table_ids),
            floor=floor,
            rules=self.hold_rules,
            stamp=work.stamp,
            ttl_seconds=command.ttl_seconds,
            require_adjacency=command.require_adjacency,
            replaces_hold_id=command.replaces_hold_id,
        )
        work.file_hold(day, hold)
        return HoldView.of(day, hold, work.stamp.now)

    def extend_hold(self, work: UnitOfWork, command: ExtendHold) -> ExtendResult:
        index = work.hold_location(command.restaurant_id, command.hold_id)
        if index is None:
            raise hold_not_found(command.hold_id)
        day = work.day(index.restaurant_id, index.service_date)
        hold, extended = day.extend_hold(
            hold_id=command.hold_id,
            rules=self.hold_rules,
            stamp=work.stamp,
            actor_role=command.actor_role,
            ttl_seconds=command.ttl_seconds,
        )
        return ExtendResult(hold=HoldView.of(day, hold, work.stamp.now), extended=extended)

    def release_hold(
        self, work: UnitOfWork, restaurant_id: str, hold_id: str, actor_role: ActorRole
    ) -> ReleaseResult:
        index = work.hold_location(restaurant_id, hold_id)
        if index is None:
            return ReleaseResult(hold_id=hold_id, released=False, status="unknown")
        day = work.day(index.restaurant_id, index.service_date)
        released, status = day.release_hold(
            hold_id=hold_id, stamp=work.stamp, actor_role=actor_role
        )
        return ReleaseResult(hold_id=hold_id, released=released, status=status)

    def expire_holds(self, work: UnitOfWork, command: ExpireHolds) -> list[str]:
        work.floor(command.restaurant_id)
        day = work.find_day(command.restaurant_id, command.service_date)
        return [] if day is None else day.expire_holds(stamp=work.stamp)

    # --- assignments ---

    def confirm_hold(
        self, work: UnitOfWork, command: ConfirmHold, automation: AutomationContext | None
    ) -> Outcome | DriftRejected:
        """Look up what only the directory knows, then the domain's ten checks."""
        restaurant_id = command.restaurant_id
        floor = work.floor(restaurant_id)
        booking_index = work.booking_index(restaurant_id, command.booking_id)
        day = None if booking_index is None else work.day(restaurant_id, booking_index.service_date)
        hold_index = work.hold_index(command.hold_id)
        hold: HoldState | None = None
        if hold_index is not None and hold_index.restaurant_id == restaurant_id:
            hold = work.day(restaurant_id, hold_index.service_date).holds.get(command.hold_id)
        request = ConfirmRequest(
            restaurant_id=restaurant_id,
            booking_id=command.booking_id,
            hold_id=command.hold_id,
            idempotency_key=command.idempotency_key,
        )
        found = HoldFacts(
            restaurant_id=None if hold_index is None else hold_index.restaurant_id, hold=hold
        )
        try:
            return confirm_hold(
                day, request, found, floor=floor, stamp=work.stamp, automation=automation
            )
        except HoldError as err:
            if err.code is ErrorCode.HOLD_RESTAURANT_MISMATCH and found.restaurant_id is not None:
                work.report_tenancy_violation(
                    command.hold_id, found.restaurant_id, restaurant_id, operation="confirm_hold"
                )
            raise

    def quote(
        self, work: UnitOfWork, restaurant_id: str, booking_id: str, ttl_seconds: int | None
    ) -> QuoteResult:
        work.prefetch_booking(restaurant_id, booking_id)
        floor = work.floor(restaurant_id)
        day = work.booking_day(restaurant_id, booking_id)
        started = time.perf_counter()
        quote = day.quote(
            booking_id=booking_id,
            floor=floor,
            rules=self.hold_rules,
            stamp=work.stamp,
            ttl_seconds=ttl_seconds,
            search_budget=self.search_budget,
        )
        work.telemetry.emit(
            "planner.quoted",
            level=logging.DEBUG,
            restaurant_id=restaurant_id,
            booking_id=booking_id,
            seconds=round(time.perf_counter() - started, 6),
            candidates=len(quote.plan.candidates),
            stopped_early=quote.plan.stopped_early,
        )
        if quote.hold is not None:
            work.file_hold(day, quote.hold)
        plan = quote.plan
        return QuoteResult(
            restaurant_id=restaurant_id,
            booking_id=booking_id,
            hold=None if quote.hold is None else HoldView.of(day, quote.hold, work.stamp.now),
            reason=plan.reason,
            already_assigned=bool(day.booking(booking_id).tables) and quote.hold is None,
            relaxations=list(plan.relaxations),
            candidates=[CandidateView.of(c) for c in plan.candidates[:10]],
            skipped=[SkippedCandidate.of(r) for r in plan.rejected],
            skipped_total=plan.rejected_total,
            stopped_early=plan.stopped_early,
        )

    def assign_tables(self, work: UnitOfWork, command: AssignTables) -> Outcome:
        work.prefetch_booking(command.restaurant_id, command.booking_id)
        floor = work.floor(command.restaurant_id)
        day = work.booking_day(command.restaurant_id, command.booking_id)
        return day.assign_tables(
            booking_id=command.booking_id,
            tables=tuple(command.table_ids),
            floor=floor,
            stamp=work.stamp,
            idempotency_key=command.idempotency_key,
            replace=command.replace,
            require_adjacency=command.require_adjacency,
        )

    def unassign_tables(self, work: UnitOfWork, command: UnassignTables) -> Outcome:
        work.prefetch_booking(command.restaurant_id, command.booking_id)
        work.floor(command.restaurant_id)
        day = work.booking_day(command.restaurant_id, command.booking_id)
        return day.unassign_tables(
            booking_id=command.booking_id,
            tables=None if command.table_ids is None else tuple(command.table_ids),
            stamp=work.stamp,
        )


def confirmed(
    telemetry: Telemetry, command: ConfirmHold, decided: Outcome | DriftRejected
) -> Outcome:
    """A confirm's outcome, once saved. A drift rejection (its record saved by now) is
    reported as ``policy_drift.detected`` and raised."""
    if isinstance(decided, DriftRejected):
        err = decided.error
        telemetry.emit(
            "policy_drift.detected",
            level=logging.WARNING,
            kind=err.kind,
            restaurant_id=command.restaurant_id,
            booking_id=command.booking_id,
            hold_id=command.hold_id,
            details=err.details,
        )
        raise err
    return decided


def replaced_hold_mismatch(hold_id: str, booking_id: str) -> HoldError:
    """What the day answers for another booking's hold on the same day (domain.md §5)."""
    return HoldError(
        ErrorCode.HOLD_BOOKING_MISMATCH,
        f"hold {hold_id} belongs to another booking",
        details={"hold_id": hold_id, "booking_id": booking_id},
    )


def hold_not_found(hold_id: str) -> NotFoundError:
    return NotFoundError(
        ErrorCode.HOLD_NOT_FOUND, f"hold {hold_id} not found", details={"hold_id": hold_id}
    )

"""``ServiceDay``: one aggregate per (restaurant, service date).

It holds every booking registered for that day, their holds and their table assignments, so
every invariant that spans bookings (no table in two overlapping windows, hold conflicts) is
checked inside one aggregate, and optimistic concurrency on its version is enough to keep it
safe under concurrent writers.

Each command validates, then triggers events; ``apply`` methods only copy event data into
state. Ids (holds, assignments, merge groups) are derived from the aggregate id, the event
position and stable names, so a replay of the log always reproduces them.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from seatledger.domain.aggregate import DomainEvent, Stamp
from seatledger.domain.errors import (
    AllocationError,
    AlreadyExistsError,
    ErrorCode,
    PolicyDriftError,
)
from seatledger.domain.layout import FloorView
from seatledger.domain.planner import Plan, plan_tables
from seatledger.domain.policy import BlockWindow
from seatledger.domain.service_day.confirm import AutomationContext
from seatledger.domain.service_day.events import (
    DAY_EVENTS,
    BookingClosed,
    BookingRegistered,
    DriftRecovery,
    HoldConfirmed,
    PolicyDriftDetected,
    ServiceDayOpened,
    TablesAssigned,
    TablesUnassigned,
)
from seatledger.domain.service_day.holds import DayHolds
from seatledger.domain.service_day.runs import FinishedRun, RunSteps
from seatledger.domain.service_day.state import (
    BookingState,
    BookingStatus,
    ChangeSource,
    ClosedStatus,
    DriftRejected,
    HoldRules,
    HoldState,
    Outcome,
    Quote,
    SeatedTable,
    TableChange,
    day_id,
    derive_hold_id,
)
from seatledger.domain.values import derive_id, sorted_unique


class ServiceDay(DayHolds):
    """Bookings, holds and assignments of one restaurant on one service date.

    Built in layers, one concern per module: :class:`.state.DayState` (state and how events
    change it), :class:`.conflicts.DayConflicts`, :class:`.idempotency.DayIdempotency`,
    :class:`.holds.DayHolds`; this class adds bookings, quotes, confirms and assignments.
    """

    EVENTS: ClassVar[tuple[type[DomainEvent], ...]] = DAY_EVENTS

    @classmethod
    def open(
        cls,
        *,
        restaurant_id: str,
        service_date: date,
        stamp: Stamp,
    ) -> ServiceDay:
        return cls._start(
            ServiceDayOpened(
                originator_id=day_id(restaurant_id, service_date),
                originator_version=1,
                timestamp=stamp.now,
                command_id=stamp.command_id,
                actor_id=stamp.actor_id,
                restaurant_id=restaurant_id,
                service_date=service_date,
            )
        )

    def finished_run(self, steps: RunSteps) -> FinishedRun | None:
        """The run's successful confirm, if it made one. A run tries confirm ``n + 1`` only
        after confirm ``n`` was rejected for drift, so its attempts are walked in order."""
        attempt = 1
        while steps.confirm(attempt) in self.command_drifts:
            attempt += 1
        change = self.command_changes.get(steps.confirm(attempt))
        if change is None:
            return None
        return FinishedRun(
            attempts=attempt,
            change=change,
            first_drift=self.command_drifts.get(steps.confirm(1)),
        )

    def register_booking(
        self,
        *,
        booking_id: str,
        party_size: int,
        block: BlockWindow,
        stamp: Stamp,
    ) -> BookingState:
        existing = self.bookings.get(booking_id)
        if existing is not None:
            same = (
                existing.party_size == party_size
                and existing.window == block.window
                and existing.service == block.service
            )
            if same:
                return existing
            raise AlreadyExistsError(
                ErrorCode.BOOKING_EXISTS,
                f"booking {booking_id} is already registered with other details",
                details={
                    "booking_id": booking_id,
                    "party_size": existing.party_size,
                    "window": existing.window.canonical(),
                },
            )
        self._trigger(
            BookingRegistered,
            stamp,
            booking_id=booking_id,
            party_size=party_size,
            start_at=block.start_at,
            window=block.window,
            service=block.service,
            fallback=block.fallback,
            clamped=block.clamped,
        )
        return self.bookings[booking_id]

    def close_booking(
        self,
        *,
        booking_id: str,
        status: ClosedStatus,
        stamp: Stamp,
    ) -> Outcome:
        booking = self.booking(booking_id)
        if stamp.command_id in self.seen_commands or booking.status == status:
            return Outcome(
                booking=booking, change=self.command_changes.get(stamp.command_id), replayed=True
            )
        if booking.is_closed:
            raise AllocationError(
                ErrorCode.BOOKING_CLOSED,
                f"booking {booking_id} is already {booking.status}",
                details={"booking_id": booking_id, "status": booking.status},
            )
        released = tuple(
            sorted(hold.hold_id for hold in self.holds_of(booking_id) if hold.status == "live")
        )
        change = None
        if booking.tables:
            change = self._change(
                booking,
                (),
                requested=(),
                zone_id=None,
                key=None,
                derived=False,
                hold_id=None,
                source="cancel",
                status=status,
            )
        self._trigger(
            BookingClosed,
            stamp,
            booking_id=booking_id,
            status=status,
            change=change,
            released_holds=released,
        )
        return Outcome(booking=self.bookings[booking_id], change=change)

    def quote(
        self,
        *,
        booking_id: str,
        floor: FloorView,
        rules: HoldRules,
        stamp: Stamp,
        ttl_seconds: int | None = None,
        search_budget: int | None = None,
    ) -> Quote:
        """Plan the booking's tables and hold the best candidate, with the adjacency
        requirement the plan actually used (so its confirm honours a relaxed plan).
        ``search_budget`` bounds the planner's work (None: the planner's default)."""
        hold_id = derive_hold_id(self.id, stamp.command_id)
        booking = self._open_booking(booking_id)
        if booking.tables and hold_id not in self.holds:
            # the booking is seated already: nothing to plan (auto-assign returns it as is)
            empty = Plan(booking.party_size, (), (), 0, (), None)
            return Quote(plan=empty, hold=None)
        plan = plan_tables(
            floor,
            party_size=booking.party_size,
            blockers=self.blockers(booking.window, booking_id, stamp.now),
            budget=search_budget,
        )
        if hold_id in self.holds:  # the same quote re-sent
            return Quote(plan=plan, hold=self.holds[hold_id])
        best = plan.best
        if best is None:
            return Quote(plan=plan, hold=None)
        hold = self.place_hold(
            booking_id=booking_id,
            tables=best.tables,
            floor=floor,
            rules=rules,
            stamp=stamp,
            ttl_seconds=ttl_seconds,
            require_adjacency=best.adjacency_required,
            source="auto",
            relaxations=plan.relaxations,
        )
        return Quote(plan=plan, hold=hold)

    def reject_for_drift(
        self,
        *,
        booking_id: str,
        hold: HoldState,
        drift: PolicyDriftError,
        stamp: Stamp,
        automation: AutomationContext | None,
    ) -> DriftRejected:
        """Confirm check 9 failed: record the rejection (it releases the stale hold). The
        caller saves the record, then raises the drift error."""
        self._trigger(
            PolicyDriftDetected,
            stamp,
            booking_id=booking_id,
            hold_id=hold.hold_id,
            kind=drift.kind,
            details={k: v for k, v in drift.details.items() if k != "kind"},
            attempt=1 if automation is None else automation.attempt,
            automated=automation is not None,
            first_in_run=True if automation is None else automation.first_drift_in_run,
        )
        return DriftRejected(error=drift)

    def assign_held_tables(
        self,
        *,
        booking_id: str,
        hold: HoldState,
        idempotency_key: str | None,
        floor: FloorView,
        stamp: Stamp,
        recovered_drift: DriftRecovery | None,
    ) -> Outcome:
        """Confirm check 10 (allocation) for a hold that passed checks 1-9 (see
        :func:`.confirm.confirm_hold`), then the confirmation."""
        booking = self.booking(booking_id)
        assert hold.policy_version is not None and hold.adjacency_required is not None
        key, derived = self._key(idempotency_key, booking, hold.tables, hold.policy_version)
        selection = self._check_allocation(
            floor,
            booking,
            hold.tables,
            replace=False,
            require_adjacency=hold.adjacency_required,
            now=stamp.now,
        )
        change = self._change(
            booking,
            selection.resulting,
            requested=selection.requested,
            zone_id=selection.zone_id,
            key=key,
            derived=derived,
            hold_id=hold.hold_id,
            source="auto" if hold.source == "auto" else "hold",
        )
        self._trigger(
            HoldConfirmed,
            stamp,
            change=change,
            hold_id=hold.hold_id,
            hold_tables=hold.tables,
            zone_id=selection.zone_id,
            expires_at=hold.expires_at,
            recovered_drift=recovered_drift,
        )
        return Outcome(booking=self.bookings[booking_id], change=change)

    def assign_tables(
        self,
        *,
        booking_id: str,
        tables: tuple[str, ...],
        floor: FloorView,
        stamp: Stamp,
        idempotency_key: str | None = None,
        replace: bool = False,
        require_adjacency: bool | None = None,
    ) -> Outcome:
        replay = self._command_replay(stamp.command_id, booking_id)
        if replay is not None:
            return replay
        booking = self.booking(booking_id)
        requested = sorted_unique(tables)
        key, derived = self._key(idempotency_key, booking, requested, floor.policy_version)
        replay = self._idempotent_replay(booking, key, derived, requested)
        if replay is not None:
            return replay
        booking = self._open_booking(booking_id)
        required = (
            floor.policy.requires_adjacency(booking.party_size)
            if require_adjacency is None
            else require_adjacency
        )
        selection = self._check_allocation(
            floor, booking, requested, replace=replace, require_adjacency=required, now=stamp.now
        )
        if selection.resulting == booking.tables:
            return Outcome(booking=booking, change=None)
        change = self._change(
            booking,
            selection.resulting,
            requested=selection.requested,
            zone_id=selection.zone_id,
            key=key,
            derived=derived,
            hold_id=None,
            source="manual",
        )
        self._trigger(
            TablesAssigned,
            stamp,
            change=change,
            replace=replace,
        )
        return Outcome(booking=self.bookings[booking_id], change=change)

    def unassign_tables(
        self,
        *,
        booking_id: str,
        tables: tuple[str, ...] | None,
        stamp: Stamp,
    ) -> Outcome:
        """Remove some (or, with ``tables=None``, all) of a booking's tables. Tables the
        booking does not have are ignored; if nothing is removed, nothing is written."""
        replay = self._command_replay(stamp.command_id, booking_id)
        if replay is not None:
            return replay
        booking = self.booking(booking_id)
        removing = set(booking.tables if tables is None else tables) & set(booking.tables)
        if not removing:
            return Outcome(booking=booking, change=None)
        remaining = tuple(t for t in booking.tables if t not in removing)
        change = self._change(
            booking,
            remaining,
            requested=sorted_unique(removing),
            zone_id=booking.zone_id if remaining else None,
            key=None,
            derived=False,
            hold_id=None,
            source="unassign",
        )
        self._trigger(TablesUnassigned, stamp, change=change)
        return Outcome(booking=self.bookings[booking_id], change=change)

    def _change(
        self,
        booking: BookingState,
        resulting: tuple[str, ...],
        *,
        requested: tuple[str, ...],
        zone_id: str | None,
        key: str | None,
        derived: bool,
        hold_id: str | None,
        source: ChangeSource,
        status: BookingStatus | None = None,
    ) -> TableChange:
        """The booking's next table set, with ids derived from the next event position."""
        position = str(self.version + 1)
        kept = {member.table_id: member.assignment_id for member in booking.members}
        members = tuple(
            SeatedTable(
                table_id=t,
                assignment_id=kept.get(t)
                or str(derive_id("assignment", str(self.id), position, booking.booking_id, t)),
            )
            for t in resulting
        )
        merge_group_id = None
        if len(resulting) > 1:
            merge_group_id = booking.merge_group_id or str(
                derive_id("merge-group", str(self.id), position, booking.booking_id)
            )
        return TableChange(
            booking_id=booking.booking_id,
            requested=requested,
            tables=resulting,
            added=tuple(t for t in resulting if t not in booking.tables),
            removed=tuple(t for t in booking.tables if t not in resulting),
            members=members,
            window=booking.window,
            zone_id=zone_id if resulting else None,
            merge_group_id=merge_group_id,
            status=status or ("confirmed" if resulting else "pending"),
            idempotency_key=key,
            key_derived=derived,
            hold_id=hold_id,
            source=source,
        )

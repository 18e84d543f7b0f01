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

from datetime import date, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from seatledger.domain.aggregate import Aggregate, DomainEvent, E, Stamp
from seatledger.domain.allocation import Selection, check_selection
from seatledger.domain.errors import (
    AllocationError,
    AlreadyExistsError,
    ErrorCode,
    HoldError,
    IdempotencyMismatchError,
    NotFoundError,
    PolicyDriftError,
)
from seatledger.domain.layout import FloorView
from seatledger.domain.planner import Blocker, Plan, plan_tables
from seatledger.domain.policy import BlockWindow
from seatledger.domain.service_day.confirm import AutomationContext, check_hold_usable
from seatledger.domain.service_day.events import (
    DAY_EVENTS,
    BookingClosed,
    BookingRegistered,
    ChangeEvent,
    DriftRecovery,
    HoldConfirmed,
    HoldExpired,
    HoldExtended,
    HoldPlaced,
    HoldReleased,
    PolicyDriftDetected,
    ServiceDayOpened,
    TablesAssigned,
    TablesUnassigned,
)
from seatledger.domain.service_day.runs import FinishedRun, RunSteps
from seatledger.domain.service_day.state import (
    ActorRole,
    BookingState,
    BookingStatus,
    ChangeSource,
    ClosedStatus,
    DriftRejected,
    HoldRules,
    HoldSource,
    HoldState,
    HoldStatus,
    IdempotencyRecord,
    Outcome,
    Quote,
    ReleaseReason,
    SeatedTable,
    TableChange,
    day_id,
    derive_hold_id,
    derive_idempotency_key,
)
from seatledger.domain.values import Window, derive_id, sorted_unique, utc_instant


class ServiceDay(Aggregate):
    """Bookings, holds and assignments of one restaurant on one service date."""

    EVENTS: ClassVar[tuple[type[DomainEvent], ...]] = DAY_EVENTS

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

    def _trigger(self, event_type: type[E], stamp: Stamp, **fields: Any) -> E:
        """Every day event names its day (the one place that fills it in)."""
        return super()._trigger(
            event_type,
            stamp,
            restaurant_id=self.restaurant_id,
            service_date=self.service_date,
            **fields,
        )

    # --- state helpers used by apply ---

    def close_hold(self, hold_id: str, status: HoldStatus, command_id: str) -> None:
        """Mark a hold consumed, released or expired by the command that did it."""
        hold = self.holds[hold_id]
        self.holds[hold_id] = hold.model_copy(update={"status": status, "closed_by": command_id})

    def record_change(self, event: ChangeEvent | BookingClosed) -> None:
        change = event.change
        assert change is not None
        booking = self.bookings[change.booking_id]
        self.bookings[change.booking_id] = booking.model_copy(
            update={
                "tables": change.tables,
                "members": change.members,
                "zone_id": change.zone_id,
                "merge_group_id": change.merge_group_id,
                "status": change.status,
                "last_change_version": event.originator_version,
            }
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

    # --- queries ---

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

    def assignment_conflicts(
        self, window: Window, tables: tuple[str, ...], exclude_booking: str
    ) -> list[dict[str, Any]]:
        wanted = set(tables)
        blocking = []
        for other in self.bookings.values():
            if other.booking_id == exclude_booking or not other.tables:
                continue
            shared = wanted.intersection(other.tables)
            if shared and other.window.overlaps(window):
                blocking.append(
                    {
                        "booking_id": other.booking_id,
                        "tables": sorted(shared),
                        "window": other.window.canonical(),
                    }
                )
        return sorted(blocking, key=lambda item: item["booking_id"])

    def hold_conflicts(
        self, window: Window, tables: tuple[str, ...], exclude_booking: str, now: datetime
    ) -> list[dict[str, Any]]:
        wanted = set(tables)
        blocking = []
        for hold in self.holds.values():
            if hold.booking_id == exclude_booking or not hold.is_live(now):
                continue
            shared = wanted.intersection(hold.tables)
            if shared and hold.window.overlaps(window):
                blocking.append(
                    {
                        "hold_id": hold.hold_id,
                        "booking_id": hold.booking_id,
                        "tables": sorted(shared),
                        "window": hold.window.canonical(),
                        "expires_at": utc_instant(hold.expires_at),
                    }
                )
        return sorted(blocking, key=lambda item: item["hold_id"])

    def blockers(self, window: Window, booking_id: str, now: datetime) -> dict[str, Blocker]:
        """Tables another booking uses in ``window``: its assignments first, then its live
        holds (a booking's own holds and tables never block it)."""
        blocked: dict[str, Blocker] = {}
        for hold in self.holds.values():
            if hold.booking_id != booking_id and hold.is_live(now) and hold.window.overlaps(window):
                for table_id in hold.tables:
                    blocked[table_id] = Blocker("hold", hold.hold_id, hold.booking_id)
        for other in self.bookings.values():
            if other.booking_id != booking_id and other.tables and other.window.overlaps(window):
                for table_id in other.tables:
                    blocked[table_id] = Blocker("assignment", other.booking_id, other.booking_id)
        return blocked

    def live_auto_hold(self, booking_id: str, now: datetime) -> HoldState | None:
        """The booking's newest live hold placed by a quote, if any."""
        holds = [
            hold
            for hold in self.holds.values()
            if hold.booking_id == booking_id and hold.source == "auto" and hold.is_live(now)
        ]
        return max(holds, key=lambda hold: hold.placed_at, default=None)

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

    def drift_of_command(self, command_id: str) -> PolicyDriftError | None:
        recorded = self.command_drifts.get(command_id)
        if recorded is None:
            return None
        return PolicyDriftError(
            recorded.kind,
            f"hold {recorded.hold_id} is stale ({recorded.kind} changed since it was placed)",
            details={k: v for k, v in recorded.details.items() if k != "kind"},
        )

    # --- commands: bookings ---

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
            sorted(
                hold.hold_id
                for hold in self.holds.values()
                if hold.booking_id == booking_id and hold.status == "live"
            )
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

    # --- commands: holds ---

    def place_hold(
        self,
        *,
        booking_id: str,
        tables: tuple[str, ...],
        floor: FloorView,
        rules: HoldRules,
        stamp: Stamp,
        ttl_seconds: int | None = None,
        require_adjacency: bool | None = None,
        replaces_hold_id: str | None = None,
        source: HoldSource = "manual",
        relaxations: tuple[str, ...] = (),
    ) -> HoldState:
        hold_id = derive_hold_id(self.id, stamp.command_id)
        if hold_id in self.holds:
            return self.holds[hold_id]
        booking = self._open_booking(booking_id)

        replaced: HoldState | None = None
        if replaces_hold_id is not None:
            replaced = self.hold(replaces_hold_id)
            if replaced.booking_id != booking_id:
                raise HoldError(
                    ErrorCode.HOLD_BOOKING_MISMATCH,
                    f"hold {replaces_hold_id} belongs to another booking",
                    details={"hold_id": replaces_hold_id, "booking_id": booking_id},
                )

        self._check_rate_limit(booking_id, stamp.actor_id, rules, stamp.now)
        required = (
            floor.policy.requires_adjacency(booking.party_size)
            if require_adjacency is None
            else require_adjacency
        )
        selection = self._check_allocation(
            floor, booking, tables, replace=False, require_adjacency=required, now=stamp.now
        )
        snapshot = floor.snapshot(selection.requested)
        self._trigger(
            HoldPlaced,
            stamp,
            hold_id=hold_id,
            booking_id=booking_id,
            tables=selection.requested,
            zone_id=selection.zone_id,
            window=booking.window,
            expires_at=stamp.now + rules.ttl(ttl_seconds),
            source=source,
            replaces_hold_id=replaces_hold_id,
            policy_version=snapshot.policy_version,
            zone_ids=snapshot.zone_ids,
            adjacency=snapshot.adjacency,
            table_facts=snapshot.tables,
            adjacency_required=required,
            relaxations=relaxations,
        )
        if replaced is not None and replaced.is_live(stamp.now):
            self._trigger(
                HoldReleased,
                stamp,
                hold_id=replaced.hold_id,
                booking_id=booking_id,
                reason="replaced",
            )
        return self.holds[hold_id]

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

    def extend_hold(
        self,
        *,
        hold_id: str,
        rules: HoldRules,
        stamp: Stamp,
        actor_role: ActorRole,
        ttl_seconds: int | None = None,
    ) -> tuple[HoldState, bool]:
        """Returns the hold and whether it was extended (an earlier expiry is a no-op)."""
        hold = self.hold(hold_id)
        if stamp.command_id in self.seen_commands:
            return hold, hold.extended_by == stamp.command_id
        self._check_hold_actor(hold, stamp.actor_id, actor_role, "extend")
        check_hold_usable(hold, stamp.now)
        expires_at = stamp.now + rules.ttl(ttl_seconds)
        if expires_at <= hold.expires_at:
            return hold, False
        self._trigger(
            HoldExtended,
            stamp,
            hold_id=hold_id,
            expires_at=expires_at,
            previous_expires_at=hold.expires_at,
        )
        return self.holds[hold_id], True

    def release_hold(
        self,
        *,
        hold_id: str,
        stamp: Stamp,
        actor_role: ActorRole,
        reason: ReleaseReason = "released",
    ) -> tuple[bool, str]:
        """Returns whether the hold was released, and its status otherwise."""
        hold = self.holds.get(hold_id)
        if hold is None:
            return False, "unknown"
        if hold.status != "live":
            if hold.status == "released" and hold.closed_by == stamp.command_id:
                return True, "released"  # this very command released it (a re-send)
            return False, hold.status
        if stamp.now >= hold.expires_at:
            return False, "expired"
        self._check_hold_actor(hold, stamp.actor_id, actor_role, "release")
        self._trigger(
            HoldReleased,
            stamp,
            hold_id=hold_id,
            booking_id=hold.booking_id,
            reason=reason,
        )
        return True, "released"

    def expire_holds(self, *, stamp: Stamp) -> list[str]:
        """The sweeper: record an expiry event for every hold past its expiry."""
        expired = sorted(
            hold.hold_id
            for hold in self.holds.values()
            if hold.status == "live" and stamp.now >= hold.expires_at
        )
        for hold_id in expired:
            hold = self.holds[hold_id]
            self._trigger(
                HoldExpired,
                stamp,
                hold_id=hold_id,
                booking_id=hold.booking_id,
                expires_at=hold.expires_at,
            )
        return expired

    # --- commands: assignments ---

    def replay_confirm(
        self,
        *,
        booking_id: str,
        command_id: str,
        idempotency_key: str | None,
        hold: HoldState | None,
        floor: FloorView,
    ) -> Outcome | None:
        """Confirm check 1 (the whole order is :func:`.confirm.confirm_hold`): the original
        result of an identical earlier confirm, even if the hold is gone;
        ``IDEMPOTENCY_MISMATCH`` if the key confirmed other tables."""
        replay = self._command_replay(command_id, booking_id)
        if replay is not None:
            return replay
        booking = self.booking(booking_id)
        if hold is None:
            if idempotency_key is None:
                return None  # no key to look up without the hold's table set
            return self._idempotent_replay(booking, idempotency_key, False, None)
        key, derived = self._key(
            idempotency_key, booking, hold.tables, hold.policy_version or floor.policy_version
        )
        return self._idempotent_replay(booking, key, derived, hold.tables)

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

    # --- internals ---

    def _open_booking(self, booking_id: str) -> BookingState:
        booking = self.booking(booking_id)
        if booking.is_closed:
            raise AllocationError(
                ErrorCode.BOOKING_CLOSED,
                f"booking {booking_id} is {booking.status}",
                details={"booking_id": booking_id, "status": booking.status},
            )
        return booking

    def _key(
        self,
        given: str | None,
        booking: BookingState,
        tables: tuple[str, ...],
        policy_version: str,
    ) -> tuple[str, bool]:
        if given is not None:
            return given, False
        return (
            derive_idempotency_key(
                self.restaurant_id, booking.booking_id, tables, booking.window, policy_version
            ),
            True,
        )

    def _command_replay(self, command_id: str, booking_id: str) -> Outcome | None:
        """A command re-sent with the same command id (e.g. after a lost reply)."""
        if command_id not in self.seen_commands:
            return None
        drift = self.drift_of_command(command_id)
        if drift is not None:
            raise drift
        change = self.command_changes.get(command_id)
        booking = self.booking(change.booking_id if change else booking_id)
        return Outcome(booking=booking, change=change, replayed=True)

    def _idempotent_replay(
        self,
        booking: BookingState,
        key: str,
        derived: bool,
        requested: tuple[str, ...] | None,
    ) -> Outcome | None:
        """Same key and table set: the original result. A caller's key is bound for good;
        a derived key only while the booking still has the state it produced.
        ``requested=None`` (the hold is unknown) matches any recorded table set."""
        record = self.idempotency.get((booking.booking_id, key))
        if record is None:
            return None
        if requested is not None and record.requested != sorted_unique(requested):
            raise IdempotencyMismatchError(
                f"idempotency key {key!r} was used for booking {booking.booking_id} "
                "with another table set",
                details={
                    "booking_id": booking.booking_id,
                    "idempotency_key": key,
                    "original_tables": list(record.requested),
                    "requested_tables": list(sorted_unique(requested)),
                },
            )
        if derived and record.version != booking.last_change_version:
            return None
        return Outcome(booking=booking, change=record.change, replayed=True)

    def _check_rate_limit(
        self, booking_id: str, actor_id: str, rules: HoldRules, now: datetime
    ) -> None:
        since = now - timedelta(seconds=rules.rate_window_seconds)
        recent = [
            hold
            for hold in self.holds.values()
            if hold.booking_id == booking_id
            and hold.actor_id == actor_id
            and hold.placed_at > since
        ]
        if len(recent) >= rules.rate_limit:
            oldest = min(hold.placed_at for hold in recent)
            raise HoldError(
                ErrorCode.HOLD_RATE_LIMITED,
                f"{actor_id} placed {len(recent)} holds for booking {booking_id} "
                f"in the last {rules.rate_window_seconds} s",
                details={
                    "booking_id": booking_id,
                    "actor_id": actor_id,
                    "limit": rules.rate_limit,
                    "window_seconds": rules.rate_window_seconds,
                    "retry_at": utc_instant(oldest + timedelta(seconds=rules.rate_window_seconds)),
                },
            )

    @staticmethod
    def _check_hold_actor(hold: HoldState, actor_id: str, role: ActorRole, action: str) -> None:
        if hold.actor_id != actor_id and role not in ("manager", "system"):
            raise HoldError(
                ErrorCode.HOLD_FORBIDDEN,
                f"only {hold.actor_id} or a manager may {action} hold {hold.hold_id}",
                details={"hold_id": hold.hold_id, "actor_id": actor_id, "action": action},
            )

    def _check_allocation(
        self,
        floor: FloorView,
        booking: BookingState,
        tables: tuple[str, ...],
        *,
        replace: bool,
        require_adjacency: bool,
        now: datetime,
    ) -> Selection:
        selection = check_selection(
            floor,
            party_size=booking.party_size,
            requested=tables,
            current=booking.tables,
            current_zone=booking.zone_id,
            replace=replace,
            require_adjacency=require_adjacency,
        )
        conflicts = self.assignment_conflicts(
            booking.window, selection.requested, booking.booking_id
        )
        if conflicts:
            raise AllocationError(
                ErrorCode.ASSIGNMENT_CONFLICT,
                f"table(s) {', '.join(sorted({t for c in conflicts for t in c['tables']}))} "
                f"are assigned to booking(s) "
                f"{', '.join(c['booking_id'] for c in conflicts)} in an overlapping window",
                details={"conflicts": conflicts, "window": booking.window.canonical()},
            )
        holds = self.hold_conflicts(booking.window, selection.requested, booking.booking_id, now)
        if holds:
            raise HoldError(
                ErrorCode.HOLD_CONFLICT,
                f"live hold(s) {', '.join(h['hold_id'] for h in holds)} of other bookings "
                "overlap on these tables",
                details={"holds": holds, "window": booking.window.canonical()},
            )
        return selection

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

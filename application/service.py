"""``AssignmentService``: the application service API of seatledger.

One method per command, each taking a pydantic command (or a mapping validated into one) and
returning a pydantic result. Every command runs as a unit of work: load the aggregates it
needs, let the domain decide, save all new events in one transaction. A stale save (another
writer got there first) re-runs the command on fresh state, a bounded number of times.
Nothing but :class:`~seatledger.domain.errors.SeatLedgerError` ever leaves a public method.
"""

from __future__ import annotations

import functools
import logging
import random
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar, cast
from uuid import UUID

import psycopg
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, PersistenceError
from eventsourcing.utils import Environment, EnvType
from pydantic import BaseModel, ValidationError

from seatledger.application.clock import Clock, SystemClock
from seatledger.application.commands import (
    COMMAND_METHODS,
    AssignTables,
    AutoAssign,
    CancelBooking,
    ChangePolicy,
    Command,
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
    QuoteBooking,
    RegisterBooking,
    ReleaseHold,
    UnassignTables,
    UnlinkTables,
)
from seatledger.application.mapper import PydanticMapper
from seatledger.application.read_models import open_read_models, projection_runners
from seatledger.application.results import (
    AssignmentResult,
    AutoAssignResult,
    BookingView,
    CandidateView,
    DayView,
    ExtendResult,
    HoldView,
    Member,
    QuoteResult,
    ReleaseResult,
    RestaurantView,
    SkippedCandidate,
)
from seatledger.application.settings import Settings
from seatledger.application.telemetry import Telemetry
from seatledger.domain.aggregate import Aggregate, Stamp
from seatledger.domain.directory import BookingIndex, HoldIndex, booking_index_id, hold_index_id
from seatledger.domain.errors import (
    AlreadyExistsError,
    ConcurrencyConflictError,
    ErrorCode,
    HoldError,
    InfrastructureError,
    InvalidInputError,
    NotFoundError,
    PolicyDriftError,
    PolicyRequoteFailedError,
    SeatLedgerError,
)
from seatledger.domain.layout import FloorLayout, FloorView, layout_id
from seatledger.domain.policy import block_window
from seatledger.domain.service_day import (
    ClosedStatus,
    DriftRecovery,
    HoldState,
    Outcome,
    ServiceDay,
    day_id,
)
from seatledger.domain.service_day import (
    Member as DomainMember,
)
from seatledger.domain.values import Window
from seatledger.projections.availability import Availability, AvailabilityQueries
from seatledger.projections.migrations import migrate
from seatledger.projections.queries import booking_members
from seatledger.projections.runner import BackgroundProjections, EventSource, PageRunner

A = TypeVar("A", bound=Aggregate)
C = TypeVar("C", bound=BaseModel)
R = TypeVar("R")
P = ParamSpec("P")
S = TypeVar("S", bound="AssignmentService")

log = logging.getLogger("seatledger.service")


def parse_command(model: type[C], command: C | Mapping[str, Any]) -> C:
    """Validate input into a command model; failures become ``INVALID_INPUT``."""
    try:
        return model.model_validate(command)
    except ValidationError as exc:
        raise InvalidInputError(
            f"invalid {model.__name__}: {exc.error_count()} error(s)",
            details={
                "command": model.__name__,
                "errors": [
                    {
                        "field": ".".join(str(part) for part in error["loc"]) or "(root)",
                        "error": error["msg"],
                        "type": error["type"],
                    }
                    for error in exc.errors(include_url=False)
                ],
            },
        ) from None


def _guarded(service: AssignmentService, operation: str, call: Callable[[], R]) -> R:
    """Run one API call so that only SeatLedgerError escapes, and log the outcome."""
    try:
        return call()
    except PolicyDriftError as err:
        service.telemetry.emit(
            "command.rejected",
            operation=operation,
            code=str(err.code),
            kind=err.kind,
            details=err.details,
        )
        raise
    except SeatLedgerError as err:
        service.telemetry.emit(
            "command.rejected", operation=operation, code=str(err.code), details=err.details
        )
        raise
    except (PersistenceError, psycopg.Error, sqlite3.Error, OSError) as exc:
        service.telemetry.emit(
            "storage.failed", level=logging.ERROR, operation=operation, error=repr(exc)
        )
        raise InfrastructureError(
            ErrorCode.STORAGE_UNAVAILABLE,
            f"{operation} failed in the event store: {type(exc).__name__}",
            details={"operation": operation, "error": str(exc)},
        ) from exc
    except Exception as exc:
        log.exception("internal error in %s", operation)
        service.telemetry.emit(
            "command.failed", level=logging.ERROR, operation=operation, error=repr(exc)
        )
        raise InfrastructureError(
            ErrorCode.INTERNAL_ERROR,
            f"{operation} failed unexpectedly: {type(exc).__name__}",
            details={"operation": operation, "error": str(exc)},
        ) from exc


def command_api(
    model: type[C],
) -> Callable[[Callable[[S, C], R]], Callable[[S, C | Mapping[str, Any]], R]]:
    """Decorate a service method taking the validated ``model``."""

    def decorate(method: Callable[[S, C], R]) -> Callable[[S, C | Mapping[str, Any]], R]:
        @functools.wraps(method)
        def wrapper(self: S, command: C | Mapping[str, Any]) -> R:
            return _guarded(
                self, method.__name__, lambda: method(self, parse_command(model, command))
            )

        return wrapper

    return decorate


def query_api(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return _guarded(self, method.__name__, lambda: method(self, *args, **kwargs))

    return wrapper


class _UnitOfWork:
    """The aggregates one attempt of a command loaded or created; saved together."""

    def __init__(self, service: AssignmentService) -> None:
        self.service = service
        self.aggregates: dict[UUID, Aggregate] = {}

    def get(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        found = self.aggregates.get(aggregate_id)
        if found is None:
            found = self.service._load(aggregate_id)
            if found is None:
                return None
            self.aggregates[aggregate_id] = found
        if not isinstance(found, kind):
            raise TypeError(f"{aggregate_id} is a {type(found).__name__}, not {kind.__name__}")
        return found

    def add(self, aggregate: A) -> A:
        self.aggregates[aggregate.id] = aggregate
        return aggregate

    def pending(self) -> list[Aggregate]:
        return [agg for agg in self.aggregates.values() if agg.pending_events]


class AssignmentService(Application[UUID]):
    """The seatledger core as an eventsourcing ``Application``.

    Construct with :class:`Settings` (defaults: SQLite file ``seatledger.db``), an optional
    clock (default: the wall clock, which freezegun controls) and optional telemetry.
    Use it as a context manager, or call :meth:`close`.
    """

    name = "SeatLedger"
    _DIRECTORY_CACHE_SIZE = 50_000

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.clock: Clock = clock or SystemClock()
        self.telemetry = telemetry or Telemetry()
        self.hold_rules = self.settings.hold_rules()
        self._cache_lock = threading.Lock()
        self._directory: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._floor_views: dict[str, FloorView] = {}
        self._background: BackgroundProjections | None = None
        try:
            _prepare_storage(self.settings)
            super().__init__(env=self.settings.eventsourcing_env())
            self._open_read_side()
        except (PersistenceError, psycopg.Error, sqlite3.Error, OSError) as exc:
            # a store that cannot be opened is reported once, here, as a typed error
            store = _store_description(self.settings)
            raise InfrastructureError(
                ErrorCode.STORAGE_UNAVAILABLE,
                f"cannot open the event store ({store}): {type(exc).__name__}",
                details={
                    "operation": "open",
                    "persistence": self.settings.persistence,
                    "store": store,
                    "error": str(exc),
                },
            ) from exc

    def _open_read_side(self) -> None:
        self.read_models = open_read_models(self.settings)
        if self.settings.migrate_on_start:
            migrate(self.read_models)
        self.event_source = EventSource(self.recorder, self.mapper)
        self.projection_runners: list[PageRunner] = projection_runners(
            self.read_models, self.event_source, self.telemetry, self.settings
        )
        self.availability = AvailabilityQueries(
            self.read_models,
            self.telemetry,
            self._blocking_from_events,
            statement_timeout_ms=self.settings.availability_statement_timeout_ms,
        )
        if self.settings.effective_projection_mode == "in_process":
            self._background = BackgroundProjections(
                self.projection_runners,
                self.telemetry,
                poll_interval=self.settings.projection_poll_seconds,
            )
            self._background.start()

    def close(self) -> None:
        background, self._background = getattr(self, "_background", None), None
        if background is not None:
            background.stop()
        read_models = getattr(self, "read_models", None)
        if read_models is not None:
            read_models.close()
        super().close()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Subclasses keep the store's name: the library names an application's tables and
        its environment prefix after the class, so a subclass would open another store."""
        explicit = "name" in cls.__dict__
        super().__init_subclass__(**kwargs)
        if not explicit:
            cls.name = AssignmentService.name

    # --- eventsourcing hooks ---

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """Only our settings configure the store; the process environment is read by them."""
        return Environment(name, dict(env or {}))

    def construct_mapper(self) -> PydanticMapper:
        return PydanticMapper(compressor=self.factory.compressor(), cipher=self.factory.cipher())

    # --- layout commands ---

    @command_api(CreateRestaurant)
    def create_restaurant(self, command: CreateRestaurant) -> RestaurantView:
        def act(work: _UnitOfWork, now: datetime) -> RestaurantView:
            existing = work.get(layout_id(command.restaurant_id), FloorLayout)
            if existing is not None:
                if existing.created_by == command.command_id:
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
                    stamp=Stamp(now, command.command_id, command.actor_id),
                )
            )
            stamp = Stamp(now, command.command_id, command.actor_id)
            for zone in command.zones:
                layout.define_zone(zone, stamp=stamp)
            for table in command.tables:
                layout.define_table(table, stamp=stamp)
            if command.adjacency:
                layout.link_tables(command.adjacency, stamp=stamp)
            return RestaurantView.of(layout.view())

        return self._run(act)

    @command_api(DefineZone)
    def define_zone(self, command: DefineZone) -> RestaurantView:
        return self._change_layout(
            command.restaurant_id,
            lambda layout, now: layout.define_zone(
                command.zone, stamp=Stamp(now, command.command_id, command.actor_id)
            ),
        )

    @command_api(DefineTable)
    def define_table(self, command: DefineTable) -> RestaurantView:
        return self._change_layout(
            command.restaurant_id,
            lambda layout, now: layout.define_table(
                command.table, stamp=Stamp(now, command.command_id, command.actor_id)
            ),
        )

    @command_api(LinkTables)
    def link_tables(self, command: LinkTables) -> RestaurantView:
        return self._change_layout(
            command.restaurant_id,
            lambda layout, now: layout.link_tables(
                command.edges, stamp=Stamp(now, command.command_id, command.actor_id)
            ),
        )

    @command_api(UnlinkTables)
    def unlink_tables(self, command: UnlinkTables) -> RestaurantView:
        return self._change_layout(
            command.restaurant_id,
            lambda layout, now: layout.unlink_tables(
                command.edges, stamp=Stamp(now, command.command_id, command.actor_id)
            ),
        )

    @command_api(ChangePolicy)
    def change_policy(self, command: ChangePolicy) -> RestaurantView:
        return self._change_layout(
            command.restaurant_id,
            lambda layout, now: layout.change_policy(
                command.policy, stamp=Stamp(now, command.command_id, command.actor_id)
            ),
        )

    # --- booking commands ---

    @command_api(RegisterBooking)
    def register_booking(self, command: RegisterBooking) -> BookingView:
        def act(work: _UnitOfWork, now: datetime) -> BookingView:
            floor = self._floor(work, command.restaurant_id)
            block = block_window(
                floor.policy,
                command.service_date,
                command.start_time,
                command.party_size,
                command.service,
            )
            service_date = block.service_date
            index = self._booking_index(work, command.restaurant_id, command.booking_id)
            if index is not None and index.service_date != service_date:
                raise AlreadyExistsError(
                    ErrorCode.BOOKING_EXISTS,
                    f"booking {command.booking_id} is registered on {index.service_date}",
                    details={
                        "booking_id": command.booking_id,
                        "service_date": index.service_date.isoformat(),
                    },
                )
            stamp = Stamp(now, command.command_id, command.actor_id)
            day = work.get(day_id(command.restaurant_id, service_date), ServiceDay)
            if day is None:
                day = work.add(
                    ServiceDay.open(
                        restaurant_id=command.restaurant_id,
                        service_date=service_date,
                        stamp=stamp,
                    )
                )
            if index is None:
                work.add(
                    BookingIndex.file(
                        restaurant_id=command.restaurant_id,
                        booking_id=command.booking_id,
                        service_date=service_date,
                        stamp=stamp,
                    )
                )
            booking = day.register_booking(
                booking_id=command.booking_id,
                party_size=command.party_size,
                block=block,
                stamp=stamp,
            )
            return BookingView.of(day, booking)

        return self._run(act)

    @command_api(CancelBooking)
    def cancel_booking(self, command: CancelBooking) -> AssignmentResult:
        return self._close(command.restaurant_id, command.booking_id, "cancelled", command)

    @command_api(MarkNoShow)
    def mark_no_show(self, command: MarkNoShow) -> AssignmentResult:
        return self._close(command.restaurant_id, command.booking_id, "no_show", command)

    @command_api(CompleteBooking)
    def complete_booking(self, command: CompleteBooking) -> AssignmentResult:
        return self._close(command.restaurant_id, command.booking_id, "completed", command)

    # --- hold commands ---

    @command_api(PlaceHold)
    def place_hold(self, command: PlaceHold) -> HoldView:
        def act(work: _UnitOfWork, now: datetime) -> HoldView:
            floor = self._floor(work, command.restaurant_id)
            day = self._booking_day(work, command.restaurant_id, command.booking_id)
            if command.replaces_hold_id is not None:
                self._hold_location(work, command.restaurant_id, command.replaces_hold_id)
            hold = day.place_hold(
                booking_id=command.booking_id,
                tables=tuple(command.table_ids),
                floor=floor,
                rules=self.hold_rules,
                stamp=Stamp(now, command.command_id, command.actor_id),
                ttl_seconds=command.ttl_seconds,
                require_adjacency=command.require_adjacency,
                replaces_hold_id=command.replaces_hold_id,
            )
            self._file_hold(work, day, hold, Stamp(now, command.command_id, command.actor_id))
            return HoldView.of(day, hold, now)

        return self._run(act)

    @command_api(ExtendHold)
    def extend_hold(self, command: ExtendHold) -> ExtendResult:
        def act(work: _UnitOfWork, now: datetime) -> ExtendResult:
            index = self._hold_location(work, command.restaurant_id, command.hold_id)
            if index is None:
                raise NotFoundError(
                    ErrorCode.HOLD_NOT_FOUND,
                    f"hold {command.hold_id} not found",
                    details={"hold_id": command.hold_id},
                )
            day = self._day(work, index.restaurant_id, index.service_date)
            hold, extended = day.extend_hold(
                hold_id=command.hold_id,
                rules=self.hold_rules,
                stamp=Stamp(now, command.command_id, command.actor_id),
                actor_role=command.actor_role,
                ttl_seconds=command.ttl_seconds,
            )
            return ExtendResult(hold=HoldView.of(day, hold, now), extended=extended)

        return self._run(act)

    @command_api(ReleaseHold)
    def release_hold(self, command: ReleaseHold) -> ReleaseResult:
        def act(work: _UnitOfWork, now: datetime) -> ReleaseResult:
            index = self._hold_location(work, command.restaurant_id, command.hold_id)
            if index is None:
                return ReleaseResult(hold_id=command.hold_id, released=False, status="unknown")
            day = self._day(work, index.restaurant_id, index.service_date)
            released, status = day.release_hold(
                hold_id=command.hold_id,
                stamp=Stamp(now, command.command_id, command.actor_id),
                actor_role=command.actor_role,
            )
            return ReleaseResult(hold_id=command.hold_id, released=released, status=status)

        return self._run(act)

    @command_api(ExpireHolds)
    def expire_holds(self, command: ExpireHolds) -> list[str]:
        """The sweeper: records an expiry event for each hold past its expiry (audit trail)."""

        def act(work: _UnitOfWork, now: datetime) -> list[str]:
            self._floor(work, command.restaurant_id)
            day = work.get(day_id(command.restaurant_id, command.service_date), ServiceDay)
            if day is None:
                return []
            return day.expire_holds(stamp=Stamp(now, command.command_id, command.actor_id))

        return self._run(act)

    # --- assignment commands ---

    @command_api(ConfirmHold)
    def confirm_hold(self, command: ConfirmHold) -> AssignmentResult:
        return self._confirm(command)

    def _confirm(
        self,
        command: ConfirmHold,
        **automation: Any,
    ) -> AssignmentResult:
        restaurant_id, booking_id = command.restaurant_id, command.booking_id

        def act(work: _UnitOfWork, now: datetime) -> Outcome:
            floor = self._floor(work, restaurant_id)
            booking_index = self._booking_index(work, restaurant_id, booking_id)
            day = (
                self._day(work, restaurant_id, booking_index.service_date)
                if booking_index is not None
                else None
            )
            hold_index = self._directory_get(hold_index_id(command.hold_id), HoldIndex)
            hold: HoldState | None = None
            if hold_index is not None and hold_index.restaurant_id == restaurant_id:
                hold_day = self._day(work, restaurant_id, hold_index.service_date)
                hold = hold_day.holds.get(command.hold_id)

            # 1. idempotent replay, even if the hold is gone
            if day is not None and booking_id in day.bookings:
                replay = day.replay_confirm(
                    booking_id=booking_id,
                    command_id=command.command_id,
                    idempotency_key=command.idempotency_key,
                    hold=hold,
                    floor=floor,
                )
                if replay is not None:
                    return replay
            # 2. the hold exists anywhere in the service
            if hold_index is None:
                raise NotFoundError(
                    ErrorCode.HOLD_NOT_FOUND,
                    f"hold {command.hold_id} not found",
                    details={"hold_id": command.hold_id},
                )
            # 3. the booking exists in the caller's restaurant
            if day is None:
                raise self._booking_not_found(restaurant_id, booking_id)
            # 4. the hold belongs to the booking's restaurant
            if hold_index.restaurant_id != restaurant_id:
                raise self._tenant_mismatch(
                    command.hold_id,
                    hold_index.restaurant_id,
                    restaurant_id,
                    operation="confirm_hold",
                )
            assert hold is not None
            # 5-10 in the domain
            outcome = day.confirm_hold(
                booking_id=booking_id,
                hold=hold,
                idempotency_key=command.idempotency_key,
                floor=floor,
                stamp=Stamp(now, command.command_id, command.actor_id),
                **automation,
            )
            return outcome

        try:
            outcome = self._run(act)
        except PolicyDriftError as err:
            if err.recorded:
                self.telemetry.emit(
                    "policy_drift.detected",
                    level=logging.WARNING,
                    kind=err.kind,
                    restaurant_id=restaurant_id,
                    booking_id=booking_id,
                    hold_id=command.hold_id,
                    details=err.details,
                )
            raise
        return self._assignment_result(restaurant_id, outcome)

    # --- automated path ---

    @command_api(QuoteBooking)
    def quote(self, command: QuoteBooking) -> QuoteResult:
        return self._quote(
            command.restaurant_id,
            command.booking_id,
            Stamp(self.clock.now(), command.command_id, command.actor_id),
            command.ttl_seconds,
        )

    def _quote(
        self, restaurant_id: str, booking_id: str, stamp: Stamp, ttl_seconds: int | None
    ) -> QuoteResult:
        def act(work: _UnitOfWork, now: datetime) -> QuoteResult:
            step = Stamp(now, stamp.command_id, stamp.actor_id)
            floor = self._floor(work, restaurant_id)
            day = self._booking_day(work, restaurant_id, booking_id)
            quote = day.quote(
                booking_id=booking_id,
                floor=floor,
                rules=self.hold_rules,
                stamp=step,
                ttl_seconds=ttl_seconds,
                search_budget=self.settings.planner_search_budget,
            )
            if quote.hold is not None:
                self._file_hold(work, day, quote.hold, step)
            plan = quote.plan
            return QuoteResult(
                restaurant_id=restaurant_id,
                booking_id=booking_id,
                hold=None if quote.hold is None else HoldView.of(day, quote.hold, now),
                reason=plan.reason,
                already_assigned=bool(day.booking(booking_id).tables) and quote.hold is None,
                relaxations=list(plan.relaxations),
                candidates=[CandidateView.of(c) for c in plan.candidates[:10]],
                skipped=[SkippedCandidate.of(r) for r in plan.rejected],
                skipped_total=plan.rejected_total,
                stopped_early=plan.stopped_early,
            )

        return self._run(act)

    @command_api(AutoAssign)
    def auto_assign(self, command: AutoAssign) -> AutoAssignResult:
        """Quote then confirm, recovering from drift by re-quoting (domain.md 8-9).

        Every step runs under a command id derived from this command's id, so re-sending
        the same auto-assign replays its steps instead of repeating them. After a failure no
        hold of this run is left, and the booking's earlier assignments are never touched.
        """
        restaurant_id, booking_id = command.restaurant_id, command.booking_id
        retry = (
            self.settings.auto_assign_retry_on_drift
            if command.retry_on_drift is None
            else command.retry_on_drift
        )
        max_attempts = (
            (command.max_attempts or self.settings.auto_assign_max_attempts) if retry else 1
        )

        day = self._booking_day(_UnitOfWork(self), restaurant_id, booking_id)
        booking = day.booking(booking_id)
        replayed = self._replayed_run(day, command)
        if replayed is not None:
            return replayed
        if booking.tables:
            return AutoAssignResult(
                restaurant_id=restaurant_id,
                booking_id=booking_id,
                outcome="already_assigned",
                assignment=self._assignment_result(restaurant_id, Outcome(booking, None)),
                attempts=0,
                drift_recovered=False,
                drift_kind=None,
                reason=None,
                relaxations=[],
                skipped=[],
            )
        existing = day.live_auto_hold(booking_id, self.clock.now())
        hold_id = existing.hold_id if existing is not None else None
        relaxations: list[str] = list(existing.relaxations) if existing is not None else []
        skipped: list[SkippedCandidate] = []
        first_drift: PolicyDriftError | None = None
        stale_hold_id = ""
        attempts = 0
        while True:
            if hold_id is None:
                quote = self._quote(
                    restaurant_id,
                    booking_id,
                    Stamp(
                        self.clock.now(),
                        f"{command.command_id}:quote:{attempts + 1}",
                        command.actor_id,
                    ),
                    command.ttl_seconds,
                )
                skipped, relaxations = quote.skipped, quote.relaxations
                if quote.hold is None:
                    if first_drift is not None:
                        self._drift_failed(command, first_drift, attempts, quote.reason)
                        raise PolicyRequoteFailedError(
                            f"after {first_drift.kind} drift no candidate is left "
                            f"for booking {booking_id}: {quote.reason}",
                            details={
                                "booking_id": booking_id,
                                "reason": quote.reason,
                                "kind": first_drift.kind,
                                "attempts": attempts,
                            },
                        )
                    return AutoAssignResult(
                        restaurant_id=restaurant_id,
                        booking_id=booking_id,
                        outcome="no_candidate",
                        assignment=None,
                        attempts=attempts,
                        drift_recovered=False,
                        drift_kind=None,
                        reason=quote.reason,
                        relaxations=relaxations,
                        skipped=skipped,
                    )
                hold_id = quote.hold.hold_id
            attempts += 1
            try:
                assignment = self._confirm(
                    ConfirmHold(
                        restaurant_id=restaurant_id,
                        booking_id=booking_id,
                        hold_id=hold_id,
                        command_id=f"{command.command_id}:confirm:{attempts}",
                        actor_id=command.actor_id,
                        actor_role=command.actor_role,
                    ),
                    attempt=attempts,
                    automated=True,
                    first_drift_in_run=first_drift is None,
                    recovered_drift=None
                    if first_drift is None
                    else DriftRecovery(
                        kind=first_drift.kind, attempt=attempts, stale_hold_id=stale_hold_id
                    ),
                )
            except PolicyDriftError as drift:
                # the recorded rejection has released the stale hold
                first_drift = first_drift or drift
                stale_hold_id = hold_id
                hold_id = None
                if attempts >= max_attempts:
                    self._drift_failed(command, drift, attempts, None)
                    raise
                continue
            except SeatLedgerError:
                self._release_for_run(command, hold_id, attempts)
                raise
            if first_drift is not None:
                self.telemetry.emit(
                    "policy_drift.recovered",
                    level=logging.WARNING,
                    kind=first_drift.kind,
                    restaurant_id=restaurant_id,
                    booking_id=booking_id,
                    attempts=attempts,
                    hold_id=hold_id,
                )
            return AutoAssignResult(
                restaurant_id=restaurant_id,
                booking_id=booking_id,
                outcome="assigned",
                assignment=assignment,
                attempts=attempts,
                drift_recovered=first_drift is not None,
                drift_kind=None if first_drift is None else first_drift.kind,
                reason=None,
                relaxations=relaxations,
                skipped=skipped,
            )

    def _replayed_run(self, day: ServiceDay, command: AutoAssign) -> AutoAssignResult | None:
        """A re-sent auto-assign whose run succeeded: its original result, nothing written."""
        prefix = f"{command.command_id}:confirm:"
        attempts = [
            int(command_id.removeprefix(prefix))
            for command_id in day.command_changes
            if command_id.startswith(prefix)
        ]
        if not attempts:
            return None
        attempt = max(attempts)
        change = day.command_changes[f"{prefix}{attempt}"]
        drift = day.command_drifts.get(f"{prefix}1")
        hold = day.holds.get(change.hold_id or "")
        return AutoAssignResult(
            restaurant_id=command.restaurant_id,
            booking_id=command.booking_id,
            outcome="assigned",
            assignment=self._assignment_result(
                command.restaurant_id,
                Outcome(day.booking(command.booking_id), change, replayed=True),
            ),
            attempts=attempt,
            drift_recovered=drift is not None,
            drift_kind=None if drift is None else drift.kind,
            reason=None,
            relaxations=[] if hold is None else list(hold.relaxations),
            skipped=[],
        )

    def _release_for_run(self, command: AutoAssign, hold_id: str, attempt: int) -> None:
        """Release a hold of an automated run (a failed confirm never leaves one behind)."""

        def act(work: _UnitOfWork, now: datetime) -> None:
            index = self._hold_location(work, command.restaurant_id, hold_id)
            if index is None:
                return
            day = self._day(work, index.restaurant_id, index.service_date)
            day.release_hold(
                hold_id=hold_id,
                stamp=Stamp(now, f"{command.command_id}:release:{attempt}", command.actor_id),
                actor_role="system",
            )

        self._run(act)

    def _drift_failed(
        self,
        command: AutoAssign,
        drift: PolicyDriftError,
        attempts: int,
        requote_reason: str | None,
    ) -> None:
        self.telemetry.emit(
            "policy_drift.failed",
            level=logging.ERROR,
            kind=drift.kind,
            restaurant_id=command.restaurant_id,
            booking_id=command.booking_id,
            attempts=attempts,
            requote_reason=requote_reason,
            details=drift.details,
        )

    @command_api(AssignTables)
    def assign_tables(self, command: AssignTables) -> AssignmentResult:
        def act(work: _UnitOfWork, now: datetime) -> Outcome:
            floor = self._floor(work, command.restaurant_id)
            day = self._booking_day(work, command.restaurant_id, command.booking_id)
            outcome = day.assign_tables(
                booking_id=command.booking_id,
                tables=tuple(command.table_ids),
                floor=floor,
                stamp=Stamp(now, command.command_id, command.actor_id),
                idempotency_key=command.idempotency_key,
                replace=command.replace,
                require_adjacency=command.require_adjacency,
            )
            return outcome

        return self._assignment_result(command.restaurant_id, self._run(act))

    @command_api(UnassignTables)
    def unassign_tables(self, command: UnassignTables) -> AssignmentResult:
        def act(work: _UnitOfWork, now: datetime) -> Outcome:
            self._floor(work, command.restaurant_id)
            day = self._booking_day(work, command.restaurant_id, command.booking_id)
            outcome = day.unassign_tables(
                booking_id=command.booking_id,
                tables=None if command.table_ids is None else tuple(command.table_ids),
                stamp=Stamp(now, command.command_id, command.actor_id),
            )
            return outcome

        return self._assignment_result(command.restaurant_id, self._run(act))

    # --- generic dispatch ---

    def execute(self, command: Command) -> Any:
        """Run any command model through its service method (for message-driven callers,
        the scenario helper and the CLI)."""
        method_name = COMMAND_METHODS.get(type(command))
        if method_name is None:
            raise InvalidInputError(
                f"{type(command).__name__} is not a seatledger command",
                details={"errors": [{"field": "(root)", "error": "unknown command type"}]},
            )
        return getattr(self, method_name)(command)

    # --- queries ---

    @query_api
    def get_restaurant(self, restaurant_id: str) -> RestaurantView:
        return RestaurantView.of(self._floor(_UnitOfWork(self), restaurant_id))

    @query_api
    def get_booking(self, restaurant_id: str, booking_id: str) -> BookingView:
        work = _UnitOfWork(self)
        day = self._booking_day(work, restaurant_id, booking_id)
        return BookingView.of(day, day.booking(booking_id))

    @query_api
    def get_hold(self, restaurant_id: str, hold_id: str) -> HoldView:
        work = _UnitOfWork(self)
        index = self._hold_location(work, restaurant_id, hold_id)
        if index is None:
            raise NotFoundError(
                ErrorCode.HOLD_NOT_FOUND, f"hold {hold_id} not found", details={"hold_id": hold_id}
            )
        day = self._day(work, restaurant_id, index.service_date)
        return HoldView.of(day, day.hold(hold_id), self.clock.now())

    @query_api
    def get_day(self, restaurant_id: str, service_date: date) -> DayView:
        work = _UnitOfWork(self)
        self._floor(work, restaurant_id)
        day = work.get(day_id(restaurant_id, service_date), ServiceDay)
        if day is None:
            return DayView(
                restaurant_id=restaurant_id,
                service_date=service_date,
                version=0,
                bookings=[],
                holds=[],
            )
        now = self.clock.now()
        return DayView(
            restaurant_id=restaurant_id,
            service_date=service_date,
            version=day.version,
            bookings=[BookingView.of(day, day.bookings[b]) for b in sorted(day.bookings)],
            holds=[HoldView.of(day, day.holds[h], now) for h in sorted(day.holds)],
        )

    @query_api
    def members(self, restaurant_id: str, booking_id: str) -> list[Member]:
        """The booking's rows in the members read model (what other readers see)."""
        return [
            Member(
                booking_id=row.booking_id,
                table_id=row.table_id,
                assignment_id=row.assignment_id,
                start_at=datetime.fromisoformat(row.start_at),
                end_at=datetime.fromisoformat(row.end_at),
                merge_group_id=row.merge_group_id,
            )
            for row in booking_members(self.read_models, restaurant_id, booking_id)
        ]

    @query_api
    def table_availability(
        self,
        restaurant_id: str,
        table_id: str,
        window: Window,
        exclude_booking_id: str | None = None,
    ) -> Availability:
        """Whether a table is free of other bookings' assignments in ``window``, and which
        path answered (database function, legacy scan, or the event store)."""
        return self.availability.check(restaurant_id, table_id, window, exclude_booking_id)

    def is_table_available(
        self,
        restaurant_id: str,
        table_id: str,
        window: Window,
        exclude_booking_id: str | None = None,
    ) -> bool:
        return self.table_availability(
            restaurant_id, table_id, window, exclude_booking_id
        ).available

    def catch_up_projections(self) -> int:
        """Bring every read model up to date now (tests, tools); returns events applied."""
        return sum(runner.catch_up() for runner in self.projection_runners)

    def _blocking_from_events(
        self, restaurant_id: str, table_id: str, window: Window, exclude: str | None
    ) -> list[str]:
        """Availability straight from the service days' events (read models missing)."""
        floor = self._floor(_UnitOfWork(self), restaurant_id)
        zone = floor.policy.zone
        first = window.start.astimezone(zone).date()
        last = window.end.astimezone(zone).date()
        dates = {first - timedelta(days=1), first, last}
        blocking: set[str] = set()
        for service_date in sorted(dates):
            day = self.load_day(restaurant_id, service_date)
            if day is not None:
                conflicts = day.assignment_conflicts(window, (table_id,), exclude or "")
                blocking.update(conflict["booking_id"] for conflict in conflicts)
        return sorted(blocking)

    def load_day(self, restaurant_id: str, service_date: date) -> ServiceDay | None:
        """The service day aggregate itself (read-only use: audits, tests, projections)."""
        found = self._load(day_id(restaurant_id, service_date))
        return found if isinstance(found, ServiceDay) else None

    # --- the command runner ---

    def _run(self, act: Callable[[_UnitOfWork, datetime], R]) -> R:
        attempts = self.settings.command_retries + 1
        for attempt in range(1, attempts + 1):
            work = _UnitOfWork(self)
            now = self.clock.now()
            try:
                try:
                    result = act(work, now)
                except PolicyDriftError as err:
                    if err.recorded:
                        self._save(work)
                    raise
                self._save(work)
                return result
            except IntegrityError:
                self.telemetry.emit("command.retry", level=logging.DEBUG, attempt=attempt)
                if attempt < attempts:
                    time.sleep(random.uniform(0, 0.002 * attempt))
        raise ConcurrencyConflictError(
            f"gave up after {attempts} attempts: other writers kept changing the same data",
            details={"attempts": attempts},
        )

    def _save(self, work: _UnitOfWork) -> None:
        pending = work.pending()
        if pending:
            recordings = self.save(*pending)
            if self._background is not None:
                self._background.catch_up({r.notification.topic for r in recordings})

    def _load(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            return cast(Aggregate, self.repository.get(aggregate_id))
        except AggregateNotFoundError:
            return None

    def _directory_get(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        """Directory aggregates never change once filed, so found ones are cached for good."""
        with self._cache_lock:
            cached = self._directory.get(aggregate_id)
        if cached is None:
            cached = self._load(aggregate_id)
            if cached is None:
                return None
            with self._cache_lock:
                self._directory[aggregate_id] = cached
                while len(self._directory) > self._DIRECTORY_CACHE_SIZE:
                    self._directory.popitem(last=False)
        return cached if isinstance(cached, kind) else None

    def _floor(self, work: _UnitOfWork, restaurant_id: str) -> FloorView:
        layout = work.get(layout_id(restaurant_id), FloorLayout)
        if layout is None:
            raise NotFoundError(
                ErrorCode.RESTAURANT_NOT_FOUND,
                f"restaurant {restaurant_id} not found",
                details={"restaurant_id": restaurant_id},
            )
        with self._cache_lock:
            view = self._floor_views.get(restaurant_id)
        if view is None or view.version != layout.version:
            view = layout.view()
            with self._cache_lock:
                self._floor_views[restaurant_id] = view
        return view

    def _change_layout(
        self, restaurant_id: str, change: Callable[[FloorLayout, datetime], bool]
    ) -> RestaurantView:
        def act(work: _UnitOfWork, now: datetime) -> RestaurantView:
            self._floor(work, restaurant_id)
            layout = work.get(layout_id(restaurant_id), FloorLayout)
            assert layout is not None
            change(layout, now)
            return RestaurantView.of(layout.view())

        return self._run(act)

    def _booking_index(
        self, work: _UnitOfWork, restaurant_id: str, booking_id: str
    ) -> BookingIndex | None:
        aggregate_id = booking_index_id(restaurant_id, booking_id)
        return (
            work.get(aggregate_id, BookingIndex)
            if aggregate_id in work.aggregates
            else (self._directory_get(aggregate_id, BookingIndex))
        )

    def _day(self, work: _UnitOfWork, restaurant_id: str, service_date: date) -> ServiceDay:
        day = work.get(day_id(restaurant_id, service_date), ServiceDay)
        if day is None:  # a directory entry always has its day: this is a storage fault
            raise RuntimeError(f"service day {restaurant_id}/{service_date} is missing")
        return day

    def _booking_day(self, work: _UnitOfWork, restaurant_id: str, booking_id: str) -> ServiceDay:
        index = self._booking_index(work, restaurant_id, booking_id)
        if index is None:
            raise self._booking_not_found(restaurant_id, booking_id)
        return self._day(work, restaurant_id, index.service_date)

    def _hold_location(
        self, work: _UnitOfWork, restaurant_id: str, hold_id: str
    ) -> HoldIndex | None:
        """Where a hold lives; a hold of another restaurant is a tenancy violation."""
        index = self._directory_get(hold_index_id(hold_id), HoldIndex)
        if index is not None and index.restaurant_id != restaurant_id:
            raise self._tenant_mismatch(
                hold_id, index.restaurant_id, restaurant_id, operation="hold"
            )
        return index

    def _file_hold(
        self,
        work: _UnitOfWork,
        day: ServiceDay,
        hold: HoldState,
        stamp: Stamp,
    ) -> None:
        aggregate_id = hold_index_id(hold.hold_id)
        if self._directory_get(aggregate_id, HoldIndex) is None:
            work.add(
                HoldIndex.file(
                    hold_id=hold.hold_id,
                    restaurant_id=day.restaurant_id,
                    service_date=day.service_date,
                    booking_id=hold.booking_id,
                    stamp=stamp,
                )
            )

    def _close(
        self,
        restaurant_id: str,
        booking_id: str,
        status: ClosedStatus,
        command: CancelBooking | MarkNoShow | CompleteBooking,
    ) -> AssignmentResult:
        def act(work: _UnitOfWork, now: datetime) -> Outcome:
            self._floor(work, restaurant_id)
            day = self._booking_day(work, restaurant_id, booking_id)
            outcome = day.close_booking(
                booking_id=booking_id,
                status=status,
                stamp=Stamp(now, command.command_id, command.actor_id),
            )
            return outcome

        return self._assignment_result(restaurant_id, self._run(act))

    def _assignment_result(self, restaurant_id: str, outcome: Outcome) -> AssignmentResult:
        booking, change = outcome.booking, outcome.change
        if change is None:  # nothing changed: the booking as it stands
            return AssignmentResult(
                restaurant_id=restaurant_id,
                booking_id=booking.booking_id,
                status=booking.status,
                table_ids=list(booking.tables),
                window=booking.window,
                zone_id=booking.zone_id,
                merge_group_id=booking.merge_group_id,
                idempotency_key=None,
                hold_id=None,
                source=None,
                changed=False,
                replayed=outcome.replayed,
                members=self._visible_members(
                    restaurant_id,
                    booking.booking_id,
                    booking.members,
                    booking.window,
                    booking.merge_group_id,
                ),
            )
        return AssignmentResult(
            restaurant_id=restaurant_id,
            booking_id=change.booking_id,
            status=change.status,
            table_ids=list(change.tables),
            window=change.window,
            zone_id=change.zone_id,
            merge_group_id=change.merge_group_id,
            idempotency_key=change.idempotency_key,
            hold_id=change.hold_id,
            source=change.source,
            changed=not outcome.replayed,
            replayed=outcome.replayed,
            # a replay returns the original result, ids included (section 7): the rows may
            # have changed since, so the read model is not asked
            members=(
                self._members_of(
                    change.booking_id,
                    change.members,
                    {m.table_id: m.assignment_id for m in change.members},
                    change.window,
                    change.merge_group_id,
                )
                if outcome.replayed
                else self._visible_members(
                    restaurant_id,
                    change.booking_id,
                    change.members,
                    change.window,
                    change.merge_group_id,
                )
            ),
        )

    def _visible_members(
        self,
        restaurant_id: str,
        booking_id: str,
        members: tuple[DomainMember, ...],
        window: Window,
        merge_group_id: str | None,
    ) -> list[Member]:
        """Read-your-writes: the booking's members as the read model shows them. If rows are
        missing, re-read a bounded number of times, then return them with assignment id ""
        (not yet visible; re-read later) and warn. Ids are never invented."""
        expected = {member.table_id: member.assignment_id for member in members}
        if not expected:
            return []
        retries = self.settings.read_your_writes_retries
        visible: dict[str, str] = {}
        for attempt in range(retries + 1):
            rows = booking_members(self.read_models, restaurant_id, booking_id)
            visible = {
                row.table_id: row.assignment_id
                for row in rows
                if expected.get(row.table_id) == row.assignment_id
            }
            if len(visible) == len(expected):
                break
            if attempt < retries:
                time.sleep(self.settings.read_your_writes_delay_ms / 1000)
        missing = sorted(set(expected) - set(visible))
        if missing:
            self.telemetry.emit(
                "assignments.rows_missing",
                level=logging.WARNING,
                message="[capacity.assignments] assignment rows missing",
                restaurant_id=restaurant_id,
                booking_id=booking_id,
                table_ids=missing,
                reads=retries + 1,
            )
        return self._members_of(booking_id, members, visible, window, merge_group_id)

    @staticmethod
    def _members_of(
        booking_id: str,
        members: tuple[DomainMember, ...],
        assignment_ids: Mapping[str, str],
        window: Window,
        merge_group_id: str | None,
    ) -> list[Member]:
        """The members with these ids ("" where a row is not visible)."""
        return [
            Member(
                booking_id=booking_id,
                table_id=member.table_id,
                assignment_id=assignment_ids.get(member.table_id, ""),
                start_at=window.start,
                end_at=window.end,
                merge_group_id=merge_group_id,
            )
            for member in members
        ]

    def _booking_not_found(self, restaurant_id: str, booking_id: str) -> NotFoundError:
        return NotFoundError(
            ErrorCode.BOOKING_NOT_FOUND,
            f"booking {booking_id} not found in restaurant {restaurant_id}",
            details={"restaurant_id": restaurant_id, "booking_id": booking_id},
        )

    def _tenant_mismatch(
        self, hold_id: str, hold_restaurant: str, caller_restaurant: str, *, operation: str
    ) -> HoldError:
        """Log both tenants at error severity; tell the caller only about its own."""
        self.telemetry.emit(
            "tenancy.violation",
            level=logging.ERROR,
            operation=operation,
            hold_id=hold_id,
            hold_restaurant_id=hold_restaurant,
            booking_restaurant_id=caller_restaurant,
        )
        return HoldError(
            ErrorCode.HOLD_RESTAURANT_MISMATCH,
            f"hold {hold_id} does not belong to restaurant {caller_restaurant}",
            details={"hold_id": hold_id, "restaurant_id": caller_restaurant},
        )


def _store_description(settings: Settings) -> str:
    """Where the event store is, for error messages (never the password)."""
    if settings.persistence == "sqlite":
        return f"sqlite {settings.sqlite_path}"
    if settings.persistence == "postgres":
        return (
            f"postgres {settings.postgres_host}:{settings.postgres_port}/"
            f"{settings.postgres_dbname} schema {settings.postgres_schema}"
        )
    return "memory"


def _prepare_storage(settings: Settings) -> None:
    """Create what the event store needs before the library opens it."""
    if settings.persistence == "sqlite":
        settings.sqlite_path.expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    elif settings.persistence == "postgres":
        with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    psycopg.sql.Identifier(settings.postgres_schema)
                )
            )

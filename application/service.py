"""``AssignmentService``: the application service API of seatledger.

One method per command, each taking a pydantic command (or a mapping validated into one) and
returning a pydantic result; one per query. Each is a short delegation to a named part:

* :mod:`.boundary` — validation, error translation, rejection telemetry (``command_api``);
  the infrastructure codes and HTTP statuses are :mod:`.errors`;
* :mod:`.unit_of_work` — loading, the directory, one stamp per attempt, saving, retries;
* :mod:`.ledger` and :mod:`.answers` — the command ledger: every command recorded with its
  answer, and re-sends answered from it;
* :mod:`.handlers` — what each command does inside its unit of work;
* :mod:`.read_your_writes` — assignment results: members from the events, visible in the read model;
* :mod:`.auto_assign` — the auto-assign process and its steps;
* :mod:`.wiring` — the event store and the read side this service runs on.

Nothing but :class:`~seatledger.domain.errors.SeatLedgerError` ever leaves a public method.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

from eventsourcing.utils import Environment, EnvType

from seatledger.application.answers import (
    Answers,
    AssignmentAnswers,
    ConfirmAnswers,
    ListAnswers,
    ModelAnswers,
)
from seatledger.application.audit.report import BookingTimeline, FloorAt, FloorDiff
from seatledger.application.audit.timetravel import TimeTravel
from seatledger.application.auto_assign import AutoAssignProcess
from seatledger.application.boundary import command_api, query_api
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
from seatledger.application.errors import STORAGE_ERRORS
from seatledger.application.handlers import CommandHandlers, confirmed, hold_not_found
from seatledger.application.ledger import CommandLedger
from seatledger.application.mapper import PydanticMapper
from seatledger.application.queries import (
    CatchUpProjections,
    GetBooking,
    GetDay,
    GetFloorAt,
    GetFloorDiff,
    GetHold,
    GetMembers,
    GetRestaurant,
    LoadDay,
    TableAvailability,
)
from seatledger.application.read_your_writes import ReadYourWrites
from seatledger.application.results import (
    AssignmentResult,
    AutoAssignResult,
    BookingView,
    DayView,
    ExtendResult,
    HoldView,
    Member,
    QuoteResult,
    ReleaseResult,
    RestaurantView,
)
from seatledger.application.schema import EVENT_STORE_NAME
from seatledger.application.settings import Settings
from seatledger.application.snapshots import SnapshottingApplication
from seatledger.application.telemetry import Telemetry
from seatledger.application.unit_of_work import UnitOfWork
from seatledger.application.wiring import GatedStore, ReadSide, opening, store_unavailable
from seatledger.domain.errors import InvalidInputError
from seatledger.domain.service_day import Outcome, ServiceDay
from seatledger.domain.values import Window
from seatledger.projections.availability import Availability
from seatledger.projections.runner import catch_up_together

C = TypeVar("C", bound=Command)
V = TypeVar("V")
R = TypeVar("R")


class AssignmentService(SnapshottingApplication):
    """The seatledger core as an eventsourcing ``Application``.

    Construct with :class:`Settings` (defaults: SQLite file ``seatledger.db``), an optional
    clock (default: the wall clock, which freezegun controls) and optional telemetry.
    Use it as a context manager, or call :meth:`close`.
    """

    name = EVENT_STORE_NAME

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.clock: Clock = clock or SystemClock()
        self.telemetry = telemetry or Telemetry.configured(otel=self.settings.otel_enabled)
        self.hold_rules = self.settings.hold_rules()
        self.snapshot_interval = self.settings.snapshot_interval
        self._read_side: ReadSide | None = None
        try:
            with opening(self.settings) as migrator:
                super().__init__(env=self.settings.eventsourcing_env())
                self._read_side = read_side = ReadSide(
                    self.settings,
                    self.telemetry,
                    self.recorder,
                    self.mapper,
                    lambda *query: self._store.reads().blocking_bookings(*query),
                    migrator=migrator,
                )
        except BaseException as exc:
            factory = getattr(self, "factory", None)
            if factory is not None:  # half-built: nobody else will close its pool
                factory.close()
            if isinstance(exc, STORAGE_ERRORS):
                raise store_unavailable(self.settings, exc) from exc
            raise
        self.read_models = read_side.read_models
        self.event_source = read_side.event_source
        self.projection_runners = read_side.projection_runners
        self.availability = read_side.availability
        self.telemetry.watch_projections(self.projection_runners)
        self.telemetry.watch_outbox(self.read_models)
        self._store = GatedStore(
            self,
            gate=read_side.writer_gate,
            clock=self.clock,
            telemetry=self.telemetry,
            retries=self.settings.command_retries,
            saved=read_side.saved,
            directory_cache_size=self.settings.directory_cache_entries,
        )
        self._ledger = CommandLedger(self._store)
        self._handlers = CommandHandlers(self.hold_rules, self.settings.planner_search_budget)
        self._results = ReadYourWrites(
            self.read_models,
            self.settings,
            self.telemetry,
            members_runner=read_side.members_runner,
            last_save=self._store.last_save,
        )
        self._auto_assign = AutoAssignProcess(
            self._store,
            self._handlers,
            self._results,
            telemetry=self.telemetry,
            settings=self.settings,
            clock=self.clock,
        )

    def close(self) -> None:
        read_side, self._read_side = getattr(self, "_read_side", None), None
        if read_side is not None:
            read_side.close()
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
        return self._do(command, self._handlers.create_restaurant, ModelAnswers(RestaurantView))

    @command_api(DefineZone)
    def define_zone(self, command: DefineZone) -> RestaurantView:
        return self._do(command, self._handlers.define_zone, ModelAnswers(RestaurantView))

    @command_api(DefineTable)
    def define_table(self, command: DefineTable) -> RestaurantView:
        return self._do(command, self._handlers.define_table, ModelAnswers(RestaurantView))

    @command_api(LinkTables)
    def link_tables(self, command: LinkTables) -> RestaurantView:
        return self._do(command, self._handlers.link_tables, ModelAnswers(RestaurantView))

    @command_api(UnlinkTables)
    def unlink_tables(self, command: UnlinkTables) -> RestaurantView:
        return self._do(command, self._handlers.unlink_tables, ModelAnswers(RestaurantView))

    @command_api(ChangePolicy)
    def change_policy(self, command: ChangePolicy) -> RestaurantView:
        return self._do(command, self._handlers.change_policy, ModelAnswers(RestaurantView))

    # --- booking commands ---

    @command_api(RegisterBooking)
    def register_booking(self, command: RegisterBooking) -> BookingView:
        return self._do(command, self._handlers.register_booking, ModelAnswers(BookingView))

    @command_api(CancelBooking)
    def cancel_booking(self, command: CancelBooking) -> AssignmentResult:
        return self._assignment(
            command, lambda w, c: self._handlers.close_booking(w, c, "cancelled")
        )

    @command_api(MarkNoShow)
    def mark_no_show(self, command: MarkNoShow) -> AssignmentResult:
        return self._assignment(command, lambda w, c: self._handlers.close_booking(w, c, "no_show"))

    @command_api(CompleteBooking)
    def complete_booking(self, command: CompleteBooking) -> AssignmentResult:
        return self._assignment(
            command, lambda w, c: self._handlers.close_booking(w, c, "completed")
        )

    # --- hold commands ---

    @command_api(PlaceHold)
    def place_hold(self, command: PlaceHold) -> HoldView:
        return self._do(command, self._handlers.place_hold, ModelAnswers(HoldView))

    @command_api(ExtendHold)
    def extend_hold(self, command: ExtendHold) -> ExtendResult:
        return self._do(command, self._handlers.extend_hold, ModelAnswers(ExtendResult))

    @command_api(ReleaseHold)
    def release_hold(self, command: ReleaseHold) -> ReleaseResult:
        return self._do(
            command,
            lambda w, c: self._handlers.release_hold(w, c.restaurant_id, c.hold_id, c.actor_role),
            ModelAnswers(ReleaseResult),
        )

    @command_api(ExpireHolds)
    def expire_holds(self, command: ExpireHolds) -> list[str]:
        """The sweeper: records an expiry event for each hold past its expiry (audit trail)."""
        return self._do(command, self._handlers.expire_holds, ListAnswers())

    # --- assignment commands ---

    @command_api(ConfirmHold)
    def confirm_hold(self, command: ConfirmHold) -> AssignmentResult:
        """A drift rejection is saved (and recorded), then raised."""
        answers = ConfirmAnswers(
            self._assignment_answers(command.restaurant_id),
            lambda decided: confirmed(self.telemetry, command, decided),
        )
        return self._do(command, lambda w, c: self._handlers.confirm_hold(w, c, None), answers)

    @command_api(QuoteBooking)
    def quote(self, command: QuoteBooking) -> QuoteResult:
        return self._do(
            command,
            lambda w, c: self._handlers.quote(w, c.restaurant_id, c.booking_id, c.ttl_seconds),
            ModelAnswers(QuoteResult),
        )

    @command_api(AutoAssign)
    def auto_assign(self, command: AutoAssign) -> AutoAssignResult:
        """Quote then confirm, recovering from drift by re-quoting (docs/domain.md §8-§9);
        re-sending the same auto-assign replays its steps instead of repeating them."""
        return self._auto_assign.run(command)

    @command_api(AssignTables)
    def assign_tables(self, command: AssignTables) -> AssignmentResult:
        return self._assignment(command, self._handlers.assign_tables)

    @command_api(UnassignTables)
    def unassign_tables(self, command: UnassignTables) -> AssignmentResult:
        return self._assignment(command, self._handlers.unassign_tables)

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

    @query_api(GetRestaurant)
    def get_restaurant(self, restaurant_id: str) -> RestaurantView:
        return RestaurantView.of(self._store.reads().floor(restaurant_id))

    @query_api(GetBooking)
    def get_booking(self, restaurant_id: str, booking_id: str) -> BookingView:
        day = self._store.reads().booking_day(restaurant_id, booking_id)
        return BookingView.of(day, day.booking(booking_id))

    @query_api(GetHold)
    def get_hold(self, restaurant_id: str, hold_id: str) -> HoldView:
        reads = self._store.reads()
        index = reads.hold_location(restaurant_id, hold_id)
        if index is None:
            raise hold_not_found(hold_id)
        day = reads.day(restaurant_id, index.service_date)
        return HoldView.of(day, day.hold(hold_id), self.clock.now())

    @query_api(GetDay)
    def get_day(self, restaurant_id: str, service_date: date) -> DayView:
        reads = self._store.reads()
        reads.floor(restaurant_id)
        day = reads.find_day(restaurant_id, service_date)
        return DayView.of(restaurant_id, service_date, day, self.clock.now())

    @query_api(GetMembers)
    def members(self, restaurant_id: str, booking_id: str) -> list[Member]:
        """The booking's rows in the members read model (what other readers see)."""
        return self._results.members(restaurant_id, booking_id)

    @query_api(TableAvailability)
    def table_availability(
        self,
        restaurant_id: str,
        table_id: str,
        window: Window,
        exclude_booking_id: str | None = None,
    ) -> Availability:
        """Whether a table of this restaurant is free of other bookings' assignments in
        ``window``, and which path answered (database function, legacy scan, or the event
        store). Another restaurant's table is ``TABLE_NOT_FOUND`` (tenancy logged)."""
        return self._availability(restaurant_id, table_id, window, exclude_booking_id)

    @query_api(TableAvailability)
    def is_table_available(
        self,
        restaurant_id: str,
        table_id: str,
        window: Window,
        exclude_booking_id: str | None = None,
    ) -> bool:
        return self._availability(restaurant_id, table_id, window, exclude_booking_id).available

    # --- time travel (from the event log alone: docs/operations.md, "Audits") ---

    @query_api(GetFloorAt)
    def floor_at(
        self,
        restaurant_id: str,
        service_date: date,
        *,
        at: datetime | None = None,
        position: int | None = None,
    ) -> FloorAt:
        """The floor of a restaurant-day at an instant or a log position (give one)."""
        return TimeTravel(self.recorder, self.mapper).floor(
            restaurant_id, service_date, at=at, position=position
        )

    @query_api(GetBooking)
    def booking_timeline(self, restaurant_id: str, booking_id: str) -> BookingTimeline:
        """Every event about a booking: when, who, under which command, with what effect."""
        return TimeTravel(self.recorder, self.mapper).timeline(restaurant_id, booking_id)

    @query_api(GetFloorDiff)
    def floor_diff(
        self, restaurant_id: str, service_date: date, start: datetime, end: datetime
    ) -> FloorDiff:
        """What changed on a restaurant-day's floor between two instants."""
        return TimeTravel(self.recorder, self.mapper).diff(restaurant_id, service_date, start, end)

    @query_api(CatchUpProjections)
    def catch_up_projections(self) -> int:
        """Bring every read model up to date now (tests, tools); returns events applied."""
        return catch_up_together(self.projection_runners)

    @query_api(LoadDay)
    def load_day(self, restaurant_id: str, service_date: date) -> ServiceDay | None:
        """The service day aggregate itself (read-only use: audits, tests, projections)."""
        return self._store.reads().find_day(restaurant_id, service_date)

    # --- the parts, joined ---

    def _do(self, command: C, handler: Callable[[UnitOfWork, C], V], answers: Answers[V, R]) -> R:
        """Run ``handler`` for ``command`` as a unit of work (saved with its ledger entry,
        retried when stale); a re-send gets the recorded answer."""
        return self._ledger.run(command, lambda work: handler(work, command), answers)

    def _assignment(
        self, command: C, handler: Callable[[UnitOfWork, C], Outcome]
    ) -> AssignmentResult:
        return self._do(command, handler, self._assignment_answers(command.restaurant_id))

    def _availability(
        self, restaurant_id: str, table_id: str, window: Window, exclude: str | None
    ) -> Availability:
        self._store.reads().require_table(
            restaurant_id, table_id, owners=self.availability.table_owners
        )
        return self.availability.check(restaurant_id, table_id, window, exclude)

    def _assignment_answers(self, restaurant_id: str) -> AssignmentAnswers:
        return AssignmentAnswers(restaurant_id, self._results.result, self._results.recorded)

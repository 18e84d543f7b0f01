"""``AssignmentService``: the application service API of seatledger.

One method per command, each taking a pydantic command (or a mapping validated into one) and
returning a pydantic result; one per query. Each is a short delegation to a named part:

* :mod:`.boundary` — validation, error translation, rejection telemetry (``command_api``);
  the infrastructure codes and HTTP statuses are :mod:`.errors`;
* :mod:`.unit_of_work` — loading, the directory, one stamp per attempt, saving, retries;
* :mod:`.handlers` — what each command does inside its unit of work;
* :mod:`.read_your_writes` — assignment results with members read back from the read model;
* :mod:`.auto_assign` — the auto-assign process and its steps;
* :mod:`.wiring` — the event store and the read side this service runs on.

Nothing but :class:`~seatledger.domain.errors.SeatLedgerError` ever leaves a public method.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.utils import Environment, EnvType

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
from seatledger.application.mapper import PydanticMapper
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
from seatledger.application.telemetry import Telemetry
from seatledger.application.unit_of_work import UnitOfWork
from seatledger.application.wiring import GatedStore, ReadSide, opening, store_unavailable
from seatledger.domain.errors import InvalidInputError
from seatledger.domain.service_day import AutomationContext, Outcome, ServiceDay, day_id
from seatledger.domain.values import Window
from seatledger.projections.availability import Availability

C = TypeVar("C", bound=Command)
R = TypeVar("R")


class AssignmentService(Application[UUID]):
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
        self.telemetry = telemetry or Telemetry()
        self.hold_rules = self.settings.hold_rules()
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
        self._store = GatedStore(
            self,
            gate=read_side.writer_gate,
            clock=self.clock,
            telemetry=self.telemetry,
            retries=self.settings.command_retries,
            saved=read_side.saved,
        )
        self._handlers = CommandHandlers(self.hold_rules, self.settings.planner_search_budget)
        self._results = ReadYourWrites(self.read_models, self.settings, self.telemetry)
        self._auto_assign = AutoAssignProcess(
            self._store,
            self._handlers,
            self._results,
            self._confirm,
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
        return self._do(command, self._handlers.create_restaurant)

    @command_api(DefineZone)
    def define_zone(self, command: DefineZone) -> RestaurantView:
        return self._do(command, self._handlers.define_zone)

    @command_api(DefineTable)
    def define_table(self, command: DefineTable) -> RestaurantView:
        return self._do(command, self._handlers.define_table)

    @command_api(LinkTables)
    def link_tables(self, command: LinkTables) -> RestaurantView:
        return self._do(command, self._handlers.link_tables)

    @command_api(UnlinkTables)
    def unlink_tables(self, command: UnlinkTables) -> RestaurantView:
        return self._do(command, self._handlers.unlink_tables)

    @command_api(ChangePolicy)
    def change_policy(self, command: ChangePolicy) -> RestaurantView:
        return self._do(command, self._handlers.change_policy)

    # --- booking commands ---

    @command_api(RegisterBooking)
    def register_booking(self, command: RegisterBooking) -> BookingView:
        return self._do(command, self._handlers.register_booking)

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
        return self._do(command, self._handlers.place_hold)

    @command_api(ExtendHold)
    def extend_hold(self, command: ExtendHold) -> ExtendResult:
        return self._do(command, self._handlers.extend_hold)

    @command_api(ReleaseHold)
    def release_hold(self, command: ReleaseHold) -> ReleaseResult:
        return self._do(
            command,
            lambda w, c: self._handlers.release_hold(w, c.restaurant_id, c.hold_id, c.actor_role),
        )

    @command_api(ExpireHolds)
    def expire_holds(self, command: ExpireHolds) -> list[str]:
        """The sweeper: records an expiry event for each hold past its expiry (audit trail)."""
        return self._do(command, self._handlers.expire_holds)

    # --- assignment commands ---

    @command_api(ConfirmHold)
    def confirm_hold(self, command: ConfirmHold) -> AssignmentResult:
        return self._confirm(command, None)

    @command_api(QuoteBooking)
    def quote(self, command: QuoteBooking) -> QuoteResult:
        return self._do(
            command,
            lambda w, c: self._handlers.quote(w, c.restaurant_id, c.booking_id, c.ttl_seconds),
        )

    @command_api(AutoAssign)
    def auto_assign(self, command: AutoAssign) -> AutoAssignResult:
        """Quote then confirm, recovering from drift by re-quoting (domain.md 8-9); re-sending
        the same auto-assign replays its steps instead of repeating them."""
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

    @query_api
    def get_restaurant(self, restaurant_id: str) -> RestaurantView:
        return RestaurantView.of(self._store.reads().floor(restaurant_id))

    @query_api
    def get_booking(self, restaurant_id: str, booking_id: str) -> BookingView:
        day = self._store.reads().booking_day(restaurant_id, booking_id)
        return BookingView.of(day, day.booking(booking_id))

    @query_api
    def get_hold(self, restaurant_id: str, hold_id: str) -> HoldView:
        reads = self._store.reads()
        index = reads.hold_location(restaurant_id, hold_id)
        if index is None:
            raise hold_not_found(hold_id)
        day = reads.day(restaurant_id, index.service_date)
        return HoldView.of(day, day.hold(hold_id), self.clock.now())

    @query_api
    def get_day(self, restaurant_id: str, service_date: date) -> DayView:
        reads = self._store.reads()
        reads.floor(restaurant_id)
        day = reads.find_day(restaurant_id, service_date)
        return DayView.of(restaurant_id, service_date, day, self.clock.now())

    @query_api
    def members(self, restaurant_id: str, booking_id: str) -> list[Member]:
        """The booking's rows in the members read model (what other readers see)."""
        return self._results.members(restaurant_id, booking_id)

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

    def load_day(self, restaurant_id: str, service_date: date) -> ServiceDay | None:
        """The service day aggregate itself (read-only use: audits, tests, projections)."""
        found = self._store.load(day_id(restaurant_id, service_date))
        return found if isinstance(found, ServiceDay) else None

    # --- the parts, joined ---

    def _do(self, command: C, handler: Callable[[UnitOfWork, C], R]) -> R:
        """Run ``handler`` for ``command`` as a unit of work (saved, retried when stale)."""
        return self._store.run(command, lambda work: handler(work, command))

    def _assignment(
        self, command: C, handler: Callable[[UnitOfWork, C], Outcome]
    ) -> AssignmentResult:
        return self._results.result(command.restaurant_id, self._do(command, handler))

    def _confirm(
        self, command: ConfirmHold, automation: AutomationContext | None
    ) -> AssignmentResult:
        """Confirm, manual or a step of auto-assign: a drift rejection is saved, then raised."""
        decided = self._do(command, lambda w, c: self._handlers.confirm_hold(w, c, automation))
        return self._results.result(
            command.restaurant_id, confirmed(self.telemetry, command, decided)
        )

"""Given / when / then scenarios with moving time, against a real ``AssignmentService``.

    with Scenario(service, start="2026-11-24T17:00:00Z") as s:
        s.given(CreateRestaurant(...), RegisterBooking(...))
        hold = s.when(PlaceHold(...)).result
        s.after(seconds=181).when(ConfirmHold(..., hold_id=hold.hold_id))
        s.then_error("HOLD_EXPIRED")

``given`` takes commands (run through the service) and stored domain events (a recorded
history, appended as they are). ``when`` runs one command (or any zero-argument call of the
service, e.g. a query or a raw mapping: ``s.when(lambda: service.register_booking({...}))``)
and remembers its result or error and the events it wrote; the ``then_*`` methods assert on
those. ``then_error`` also asserts that the failed command wrote nothing (a drift rejection:
only its ``PolicyDriftDetected`` and its ledger entry), directory events included. Ledger
entries (every accepted command writes one, no-ops too) and directory events are left out of
``events``; ``then_no_events`` allows the command's ledger entry, ``then_nothing_written``
allows nothing (what a re-send must write). Time is frozen with freezegun
(the service's default clock reads it) or, if the service was built with a ``ManualClock``,
that clock is moved instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from seatledger.application.clock import ManualClock
from seatledger.application.commands import Command
from seatledger.application.service import AssignmentService
from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.directory import BookingFiled, HoldFiled
from seatledger.domain.errors import ErrorCode, SeatLedgerError
from seatledger.domain.ledger import CommandRecorded, RunAnswered
from seatledger.domain.service_day import PolicyDriftDetected

#: Modules whose clocks freezegun must leave alone: connection pools and the event store
#: measure timeouts with the real monotonic clock.
FREEZEGUN_IGNORE = ("psycopg", "psycopg_pool", "eventsourcing", "sqlite3")

_DIRECTORY_EVENTS = (BookingFiled, HoldFiled)
_LEDGER_EVENTS = (CommandRecorded, RunAnswered)

ExpectedEvent = type[DomainEvent] | tuple[type[DomainEvent], Mapping[str, Any]]


def _bookkeeping(event: DomainEvent) -> bool:
    """Bookkeeping: where a booking or hold is filed, and the command ledger."""
    return isinstance(event, (*_DIRECTORY_EVENTS, *_LEDGER_EVENTS))


class ScenarioError(AssertionError):
    """A ``then_*`` expectation did not hold."""


def _instant(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError("scenario instants must be timezone-aware")
    return moment.astimezone(UTC)


class Scenario:
    def __init__(
        self,
        service: AssignmentService,
        *,
        start: datetime | str = "2026-01-15T12:00:00+00:00",
        include_directory_events: bool = False,
    ) -> None:
        self.service = service
        self.include_directory_events = include_directory_events
        self._now = _instant(start)
        self._freezer: Any = None
        self._frozen: Any = None
        self._result: Any = None
        self._error: SeatLedgerError | None = None
        self._events: list[DomainEvent] = []
        self._written = 0
        self._ledger_written = 0
        self._ran = False

    # --- lifecycle ---

    def start(self) -> Self:
        if isinstance(self.service.clock, ManualClock):
            self.service.clock.set(self._now)
        elif self._freezer is None:
            try:
                from freezegun import freeze_time  # noqa: PLC0415 - a test-only dependency
            except ImportError as exc:
                raise ImportError(
                    "the scenario helper freezes time with freezegun: "
                    "pip install 'seatledger[testing]'"
                ) from exc

            self._freezer = freeze_time(self._now, ignore=list(FREEZEGUN_IGNORE))
            self._frozen = self._freezer.start()
        return self

    def stop(self) -> None:
        if self._freezer is not None:
            self._freezer.stop()
            self._freezer = self._frozen = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- time ---

    @property
    def now(self) -> datetime:
        return self._now

    def at(self, moment: datetime | str) -> Self:
        """Move time to an instant (forwards or backwards)."""
        self._now = _instant(moment)
        self._move()
        return self

    def after(self, **delta: float) -> Self:
        """Move time forward by ``timedelta(**delta)``, e.g. ``after(seconds=179)``."""
        self._now += timedelta(**delta)
        self._move()
        return self

    def _move(self) -> None:
        if isinstance(self.service.clock, ManualClock):
            self.service.clock.set(self._now)
        elif self._frozen is not None:
            self._frozen.move_to(self._now)

    # --- given / when ---

    def given(self, *facts: Command | DomainEvent) -> Self:
        """Establish history: commands run through the service (they must succeed),
        domain events are stored as they are (e.g. a history recorded elsewhere)."""
        for fact in facts:
            if isinstance(fact, DomainEvent):
                self.service.events.put([fact])
            else:
                self.service.execute(fact)
        return self

    def when(self, command: Command | Callable[[], Any]) -> Self:
        """Run one command (or a zero-argument call of the service); its result or error
        and its new events are kept for ``then``."""
        position = self.position()
        self._result, self._error, self._ran = None, None, True
        try:
            if isinstance(command, Command):
                self._result = self.service.execute(command)
            else:
                self._result = command()
        except SeatLedgerError as err:
            self._error = err
        written = self._events_after(position, include_directory=True)
        self._events = [e for e in written if self.include_directory_events or not _bookkeeping(e)]
        self._written = self.position() - position
        self._ledger_written = sum(isinstance(event, _LEDGER_EVENTS) for event in written)
        return self

    def position(self) -> int:
        """The store's notification position: how many events were ever written."""
        return self.service.recorder.max_notification_id() or 0

    # --- then ---

    @property
    def result(self) -> Any:
        self._require_run()
        if self._error is not None:
            raise ScenarioError(f"expected a result, got {self._error!r}: {self._error.details}")
        return self._result

    @property
    def events(self) -> list[DomainEvent]:
        """The events the last ``when`` wrote."""
        self._require_run()
        return list(self._events)

    def then_error(
        self, code: ErrorCode | str, *, wrote_events: bool = False, **details: Any
    ) -> SeatLedgerError:
        """Assert the last command failed with ``code`` (and these details), writing nothing
        except, for drift, its recorded rejection (and the ledger entry that records it). An
        automated run that failed after some of its steps succeeded (holds placed, then
        released) passes ``wrote_events=True`` and checks ``events`` itself."""
        self._require_run()
        if self._error is None:
            raise ScenarioError(f"expected {code}, the command succeeded with {self._result!r}")
        if self._error.code != code:
            raise ScenarioError(
                f"expected {code}, got {self._error.code}: {self._error.message} "
                f"{self._error.details}"
            )
        for key, value in details.items():
            if self._error.details.get(key) != value:
                raise ScenarioError(
                    f"{code}: details[{key!r}] is {self._error.details.get(key)!r}, "
                    f"expected {value!r}"
                )
        allowed = sum(isinstance(event, PolicyDriftDetected) for event in self._events)
        if allowed:
            allowed += self._ledger_written
        if self._written > allowed and not wrote_events:
            raise ScenarioError(
                f"{code}: the failed command wrote {self._written} event(s) "
                f"({[type(e).__name__ for e in self._events]}); a rejection writes nothing "
                "but, for drift, its PolicyDriftDetected and its ledger entry"
            )
        return self._error

    def then_events(self, *expected: ExpectedEvent) -> list[DomainEvent]:
        """Assert the exact sequence of event types (with optional field values)."""
        self._require_run()
        if self._error is not None and not self._events:
            raise ScenarioError(f"expected events, the command failed: {self._error!r}")
        actual = [type(event) for event in self._events]
        wanted = [item[0] if isinstance(item, tuple) else item for item in expected]
        if actual != wanted:
            raise ScenarioError(
                f"expected events {[w.__name__ for w in wanted]}, "
                f"got {[a.__name__ for a in actual]}"
            )
        for event, item in zip(self._events, expected, strict=True):
            if isinstance(item, tuple):
                for name, value in item[1].items():
                    if getattr(event, name) != value:
                        raise ScenarioError(
                            f"{type(event).__name__}.{name} is {getattr(event, name)!r}, "
                            f"expected {value!r}"
                        )
        return list(self._events)

    def then_no_events(self) -> None:
        """Assert the last ``when`` wrote no event (directory events included) but its
        ledger entry: a command that changed nothing is still recorded."""
        self._require_run()
        if self._events or self._written > self._ledger_written:
            raise ScenarioError(
                f"expected no events but a ledger entry, got {self._written}: "
                f"{[type(e).__name__ for e in self._events]}"
            )

    def then_nothing_written(self) -> None:
        """Assert the last ``when`` wrote nothing at all, not even a ledger entry (a
        re-sent command: answered from the ledger)."""
        self._require_run()
        if self._written:
            raise ScenarioError(
                f"expected nothing written, got {self._written} event(s): "
                f"{[type(e).__name__ for e in self._events]}"
            )

    # --- history ---

    def history(self) -> list[DomainEvent]:
        """Every stored event so far, in notification order (feed it to another ``given``)."""
        return self._events_after(0, include_directory=True)

    def _events_after(
        self, position: int, *, include_directory: bool | None = None
    ) -> list[DomainEvent]:
        keep_directory = (
            self.include_directory_events if include_directory is None else include_directory
        )
        events: list[DomainEvent] = []
        while True:
            page = self.service.recorder.select_notifications(
                start=position, limit=500, inclusive_of_start=False
            )
            if not page:
                return events
            for notification in page:
                event = self.service.mapper.to_domain_event(notification)
                assert isinstance(event, DomainEvent)
                if keep_directory or not _bookkeeping(event):
                    events.append(event)
            position = page[-1].id

    def _require_run(self) -> None:
        if not self._ran:
            raise ScenarioError("call when(...) first")

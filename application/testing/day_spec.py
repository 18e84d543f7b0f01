"""Given events / when a command / then events, on one ``ServiceDay`` and nothing else.

    spec = DaySpec()                                   # restaurant r1, 2026-11-24, 17:00Z
    spec.given(registered("b1", 2, "19:00"), registered("b2"), held("b2", "M1"))
    spec.when(lambda day, floor, stamp: day.assign_tables(
        booking_id="b1", tables=("M1",), floor=floor, stamp=stamp))
    spec.then_error("HOLD_CONFLICT")                   # and no event was emitted

The aggregate-level twin of :class:`~seatledger.application.testing.scenario.Scenario`: no
store, no service, no clock, so a rule is tested in a millisecond. Time is data: ``at`` and
``after`` move the instant the next facts and command are stamped with. ``given`` opens the
day (its creation event) if no fact did. Facts come from :mod:`.day_facts`
(``registered``, ``held``, ...), or are recorded events (``history()`` of another spec).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Self
from uuid import UUID

from seatledger.application.testing.day_facts import DayCommand, Fact, sample_floor
from seatledger.domain.aggregate import CreationEvent, DomainEvent, Stamp
from seatledger.domain.errors import ErrorCode, SeatLedgerError
from seatledger.domain.layout import FloorView
from seatledger.domain.service_day import (
    BookingState,
    DriftRejected,
    HoldRules,
    HoldState,
    ServiceDay,
    ServiceDayOpened,
    day_id,
    derive_hold_id,
)

#: A Tuesday in winter: London is on UTC, so local times read as UTC instants.
DEFAULT_DATE = date(2026, 11, 24)
DEFAULT_START = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)

ExpectedEvent = (
    type[DomainEvent] | tuple[type[DomainEvent], Mapping[str, Any]] | Callable[[DomainEvent], bool]
)


class DaySpecError(AssertionError):
    """A ``then_*`` expectation did not hold."""


def _instant(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError("spec instants must be timezone-aware")
    return moment.astimezone(UTC)


def _names(events: list[DomainEvent]) -> list[str]:
    return [type(event).__name__ for event in events]


class DaySpec:
    """One service day, built from facts; one command at a time; assertions on its events."""

    def __init__(
        self,
        *,
        restaurant_id: str = "r1",
        service_date: date = DEFAULT_DATE,
        floor: FloorView | None = None,
        rules: HoldRules | None = None,
        start: datetime | str = DEFAULT_START,
        actor_id: str = "host-1",
    ) -> None:
        self.restaurant_id = restaurant_id
        self.service_date = service_date
        #: The floor every fact and command sees; assign another to model a layout change.
        self.floor = floor or sample_floor(restaurant_id)
        self.rules = rules or HoldRules()
        self.actor_id = actor_id
        self._now = _instant(start)
        self._day: ServiceDay | None = None
        self._history: list[DomainEvent] = []
        self._commands = 0
        self._ran = False
        self._result: Any = None
        self._error: SeatLedgerError | None = None
        self._events: list[DomainEvent] = []

    # --- time and identity ---

    @property
    def now(self) -> datetime:
        return self._now

    def at(self, moment: datetime | str) -> Self:
        """Stamp what follows with this instant (forwards or backwards)."""
        self._now = _instant(moment)
        return self

    def after(self, **delta: float) -> Self:
        """Move the instant forward by ``timedelta(**delta)``, e.g. ``after(seconds=60)``."""
        self._now += timedelta(**delta)
        return self

    def stamp(self, command_id: str, actor_id: str | None = None) -> Stamp:
        return Stamp(self._now, command_id, actor_id or self.actor_id)

    @property
    def day_id(self) -> UUID:
        return day_id(self.restaurant_id, self.service_date)

    def hold_id(self, command_id: str) -> str:
        """The id a hold placed by ``command_id`` gets (derived, so a re-send finds it)."""
        return derive_hold_id(self.day_id, command_id)

    @property
    def day(self) -> ServiceDay:
        """The day as it stands (opened on first use)."""
        if self._day is None:
            opened = ServiceDayOpened(
                originator_id=self.day_id,
                originator_version=1,
                timestamp=self._now,
                command_id="open-day",
                actor_id=self.actor_id,
                restaurant_id=self.restaurant_id,
                service_date=self.service_date,
            )
            self._open(opened)
        assert self._day is not None
        return self._day

    # --- given / when ---

    def given(self, *facts: Fact | DomainEvent) -> Self:
        """Extend the history: facts are stamped with the next version and the current
        instant; events are applied as they are (their versions must follow on)."""
        for fact in facts:
            if isinstance(fact, CreationEvent):
                if self._day is not None:
                    raise ValueError("the day is open already: a creation event comes first")
                self._open(fact)
            elif isinstance(fact, DomainEvent):
                fact.mutate(self.day)
                self._history.append(fact)
            else:
                day = self.day
                stamp = self.stamp(fact.command_id or f"given-{day.version + 1}", fact.actor_id)
                self._history.extend(fact.record(day, self.floor, self.rules, stamp))
        return self

    def when(
        self, command: DayCommand, *, command_id: str | None = None, actor_id: str | None = None
    ) -> Self:
        """Run one aggregate command, ``command(day, floor, stamp)``; keep its result or
        error and its new events. A rejected command leaves the day as it was, unless the
        command returned a recorded rejection (``DriftRejected``), which the service saves."""
        day = self.day
        before = copy.deepcopy(day)
        self._commands += 1
        stamp = self.stamp(command_id or f"cmd-{self._commands}", actor_id)
        self._ran, self._result, self._error = True, None, None
        recorded = False
        try:
            self._result = command(day, self.floor, stamp)
        except SeatLedgerError as err:
            self._error = err
        if isinstance(self._result, DriftRejected):  # a rejection the service saves first
            self._result, self._error, recorded = None, self._result.error, True
        self._events = day.collect_events()
        if self._error is not None and not recorded:
            self._day = before
        else:
            self._history.extend(self._events)
        return self

    # --- then ---

    @property
    def result(self) -> Any:
        self._require_run()
        if self._error is not None:
            raise DaySpecError(f"expected a result, got {self._error!r}: {self._error.details}")
        return self._result

    @property
    def error(self) -> SeatLedgerError | None:
        self._require_run()
        return self._error

    @property
    def events(self) -> list[DomainEvent]:
        """The events the last ``when`` emitted."""
        self._require_run()
        return list(self._events)

    def then_events(self, *expected: ExpectedEvent) -> list[DomainEvent]:
        """Assert the exact new events, one item each: a type, a type with field values, or
        a predicate. A failed command fails this (use ``then_error``)."""
        self._require_run()
        if self._error is not None:
            raise DaySpecError(f"expected events, the command failed: {self._error!r}")
        if len(self._events) != len(expected):
            raise DaySpecError(f"expected {len(expected)} event(s), got {_names(self._events)}")
        for index, (event, item) in enumerate(zip(self._events, expected, strict=True)):
            self._match(index, event, item)
        return list(self._events)

    def then_no_events(self) -> Any:
        """Assert the command succeeded and emitted nothing (a no-op or a replay); returns
        its result."""
        self.then_events()
        return self._result

    def then_error(
        self,
        code: ErrorCode | str,
        *,
        recorded: tuple[type[DomainEvent], ...] = (),
        **details: Any,
    ) -> SeatLedgerError:
        """Assert the command failed with ``code`` (and these details) and emitted no event
        but the ``recorded`` ones (a drift rejection records one)."""
        self._require_run()
        if self._error is None:
            raise DaySpecError(f"expected {code}, the command succeeded with {self._result!r}")
        if self._error.code != code:
            raise DaySpecError(
                f"expected {code}, got {self._error.code}: {self._error.message} "
                f"{self._error.details}"
            )
        for key, value in details.items():
            if self._error.details.get(key) != value:
                raise DaySpecError(
                    f"{code}: details[{key!r}] is {self._error.details.get(key)!r}, "
                    f"expected {value!r}"
                )
        if [type(event) for event in self._events] != list(recorded):
            raise DaySpecError(
                f"{code}: the rejected command emitted {_names(self._events)}, "
                f"expected {[t.__name__ for t in recorded]}"
            )
        return self._error

    def then_booking(self, booking_id: str, **fields: Any) -> BookingState:
        """Assert fields of a booking's state; returns it."""
        booking = self.day.bookings.get(booking_id)
        if booking is None:
            raise DaySpecError(f"no booking {booking_id!r}; have {sorted(self.day.bookings)}")
        self._fields(f"booking {booking_id}", booking, fields)
        return booking

    def then_hold(self, hold_id: str, **fields: Any) -> HoldState:
        """Assert fields of a hold's state; returns it."""
        hold = self.day.holds.get(hold_id)
        if hold is None:
            raise DaySpecError(f"no hold {hold_id!r}; have {sorted(self.day.holds)}")
        self._fields(f"hold {hold_id}", hold, fields)
        return hold

    # --- history and replay ---

    def history(self) -> list[DomainEvent]:
        """Every event of the day so far, creation first (feed it to another spec)."""
        return list(self._history)

    def replayed(self) -> ServiceDay:
        """A new day rebuilt from the history, each event through its JSON form (as a
        store would keep it)."""
        day: Any = None
        for event in self._history:
            day = type(event).model_validate_json(event.model_dump_json()).mutate(day)
        assert isinstance(day, ServiceDay)
        return day

    def then_replay_matches(self) -> ServiceDay:
        """Assert a replay of the history rebuilds exactly the current state."""
        replayed = self.replayed()
        live, again = day_state(self.day), day_state(replayed)
        for name, value in live.items():
            if again[name] != value:
                raise DaySpecError(f"replay differs in {name}: {again[name]!r} != {value!r}")
        return replayed

    # --- internals ---

    def _open(self, event: CreationEvent) -> None:
        created = event.mutate(None)
        assert isinstance(created, ServiceDay)
        self._day = created
        self._history.append(event)

    def _match(self, index: int, event: DomainEvent, item: ExpectedEvent) -> None:
        where = f"event {index} ({type(event).__name__})"
        if isinstance(item, type):
            if not isinstance(event, item):
                raise DaySpecError(f"{where}: expected {item.__name__}")
        elif isinstance(item, tuple):
            event_type, fields = item
            if not isinstance(event, event_type):
                raise DaySpecError(f"{where}: expected {event_type.__name__}")
            self._fields(where, event, fields)
        elif not item(event):
            raise DaySpecError(f"{where}: the predicate rejected {event!r}")

    @staticmethod
    def _fields(where: str, value: Any, fields: Mapping[str, Any]) -> None:
        for name, wanted in fields.items():
            actual = getattr(value, name)
            if actual != wanted:
                raise DaySpecError(f"{where}: {name} is {actual!r}, expected {wanted!r}")

    def _require_run(self) -> None:
        if not self._ran:
            raise DaySpecError("call when(...) first")


def day_state(day: ServiceDay) -> dict[str, Any]:
    """Everything a replay must rebuild, in comparable form."""
    return {
        "version": day.version,
        "bookings": dict(day.bookings),
        "holds": dict(day.holds),
        "idempotency": dict(day.idempotency),
        "seen_commands": set(day.seen_commands),
        "command_changes": dict(day.command_changes),
        "command_drifts": dict(day.command_drifts),
    }

"""A deterministic, realistic event log for tests, benchmarks and users' own experiments.

    from seatledger.application.testing.workload import copy_log, generate_log

    log = generate_log(20_000, seed=7, restaurants=2)   # list[StoredEvent], notification order
    settings = Settings(persistence="sqlite", sqlite_path="copy.db", projection_mode="off")
    with AssignmentService(settings) as target:
        copy_log(log, target.recorder)                   # the same history, in another store
        target.catch_up_projections()

:func:`generate_log` drives an in-memory :class:`~seatledger.application.service.AssignmentService`
through its public command API only, so every event is one the service really writes:
restaurants created with a whole floor; bookings registered over consecutive service dates
(lunch and dinner, parties of 1 to 8); holds placed and confirmed (some confirms re-sent:
replays write nothing), released, or abandoned until the sweeper expires them; manual
assignments, moves (``replace=True``), extra tables, partial and full unassigns;
cancellations, no-shows and completions; and now and then a policy change between a hold and
its confirm, so the confirm is rejected for drift, the stale hold is released and a fresh one
confirmed. Commands the domain rejects (a conflict the generator did not foresee) are simply
skipped; they write nothing, or only their ``PolicyDriftDetected``.

Nothing depends on the wall clock or on chance outside ``random.Random(seed)``: command ids are
numbered (``wl-0000001``...), the clock is a :class:`~seatledger.application.clock.ManualClock`
that starts at a fixed instant and moves 1-20 s per command, every choice comes from the seeded
generator. The same arguments therefore give the same stored events, byte for byte, in the same
order (for a given version of seatledger: a domain change may change the log). Nothing is cached
on disk. Restaurants are ``r1``..``rN`` with the floor of :func:`restaurant_floor`; their days
are interleaved command by command, as concurrent hosts would be."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import TypeVar

from eventsourcing.persistence import ApplicationRecorder, StoredEvent

from seatledger.application.clock import ManualClock
from seatledger.application.commands import (
    AssignTables,
    CancelBooking,
    ChangePolicy,
    CompleteBooking,
    ConfirmHold,
    CreateRestaurant,
    ExpireHolds,
    MarkNoShow,
    PlaceHold,
    RegisterBooking,
    ReleaseHold,
    UnassignTables,
)
from seatledger.application.mapper import PydanticMapper
from seatledger.application.results import AssignmentResult
from seatledger.application.samples import MEDIUM_FLOOR
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import Telemetry
from seatledger.domain.errors import SeatLedgerError
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day import (
    BookingClosed,
    ChangeEvent,
    HoldConfirmed,
    TablesAssigned,
    TablesUnassigned,
)
from seatledger.domain.values import Window

__all__ = ["copy_log", "generate_log", "restaurant_floor", "table_set_changes"]

R = TypeVar("R")

#: The first service date and the instant the generator's clock starts at.
FIRST_DAY = date(2026, 3, 2)
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
_PAGE = 1000
_ACTOR = "host-1"


def restaurant_floor(restaurant_id: str, policy: VenuePolicy | None = None) -> CreateRestaurant:
    """The 21-table sample floor (``MEDIUM_FLOOR``: main room, patio and bar)."""
    return MEDIUM_FLOOR.create(
        restaurant_id, policy=policy, command_id=f"wl-{restaurant_id}-create"
    )


def _combinations() -> list[tuple[tuple[str, ...], int]]:
    """Table sets the floor allows (single active tables, and runs of 2-3 movable neighbours
    along its rows), with their seats."""
    seats = {table.table_id: table.capacity for table in MEDIUM_FLOOR.tables}
    combos: list[tuple[tuple[str, ...], int]] = [
        ((t.table_id,), t.capacity) for t in MEDIUM_FLOOR.tables if t.active
    ]
    rows: list[list[str]] = []  # the adjacency is listed row by row, neighbour after neighbour
    for a, b in MEDIUM_FLOOR.adjacency:
        if rows and rows[-1][-1] == a:
            rows[-1].append(b)
        else:
            rows.append([a, b])
    for row in rows:
        for length in (2, 3):
            for first in range(len(row) - length + 1):
                run = tuple(row[first : first + length])
                combos.append((run, sum(seats[t] for t in run)))
    return combos


_COMBOS = _combinations()
_SLACK = VenuePolicy().slack_budget


def _fits(size: int) -> list[tuple[str, ...]]:
    return [tables for tables, seats in _COMBOS if size <= seats <= size + _SLACK]


_FITS = {size: _fits(size) for size in range(1, 9)}
_PARTY_SIZES = (1, 2, 2, 2, 2, 2, 3, 3, 4, 4, 4, 4, 5, 6, 6, 7, 8)
_LUNCH = [time(12, 0), time(12, 30), time(13, 0), time(13, 30), time(14, 0)]
_DINNER = [time(h, m) for h in range(17, 21) for m in (0, 15, 30, 45)] + [time(21, 0)]


_DONE = object()


class _LogCompleteError(Exception):
    """The log is long enough."""


@dataclass
class _Booking:
    booking_id: str
    size: int
    window: Window
    tables: tuple[str, ...] = ()
    closed: bool = False


@dataclass
class _Hold:
    booking_id: str
    tables: tuple[str, ...]
    window: Window
    expires_at: datetime


@dataclass
class _Restaurant:
    restaurant_id: str
    post_buffer: int = 5
    bookings: dict[str, _Booking] = field(default_factory=dict)
    holds: dict[str, _Hold] = field(default_factory=dict)


class _Generator:
    def __init__(self, service: AssignmentService, clock: ManualClock, seed: int) -> None:
        self.service = service
        self.clock = clock
        self.rng = random.Random(seed)
        self.sequence = 0
        self.target = 0
        self.rejected = 0

    # --- plumbing ---

    def cid(self) -> str:
        self.sequence += 1
        return f"wl-{self.sequence:07d}"

    def events(self) -> int:
        return self.service.recorder.max_notification_id() or 0

    def send(self, call: Callable[[], R]) -> R | None:
        """Run one command after a few seconds of wall time; None if the domain said no."""
        if self.events() >= self.target:
            raise _LogCompleteError
        self.clock.advance(timedelta(seconds=self.rng.randint(1, 20)))
        try:
            return call()
        except SeatLedgerError:
            self.rejected += 1
            return None

    # --- choices ---

    def blocked(self, r: _Restaurant, booking: _Booking) -> set[str]:
        """Tables other bookings hold or have (live holds) in windows overlapping this one's."""
        now = self.clock.now()
        taken: set[str] = set()
        for other in r.bookings.values():
            if (
                other.tables
                and other.booking_id != booking.booking_id
                and other.window.overlaps(booking.window)
            ):
                taken.update(other.tables)
        for hold in r.holds.values():
            if (
                hold.booking_id != booking.booking_id
                and hold.expires_at > now
                and hold.window.overlaps(booking.window)
            ):
                taken.update(hold.tables)
        return taken

    def pick(self, r: _Restaurant, booking: _Booking) -> tuple[str, ...] | None:
        taken = self.blocked(r, booking)
        options = [t for t in _FITS[booking.size] if taken.isdisjoint(t)]
        return self.rng.choice(options) if options else None

    # --- commands ---

    def register(self, r: _Restaurant, booking_id: str, day: date) -> Iterator[None]:
        size = self.rng.choice(_PARTY_SIZES)
        start = self.rng.choice(_LUNCH if self.rng.random() < 0.3 else _DINNER)
        command = RegisterBooking(
            restaurant_id=r.restaurant_id,
            booking_id=booking_id,
            party_size=size,
            service_date=day,
            start_time=start,
            command_id=self.cid(),
            actor_id=_ACTOR,
        )
        view = self.send(lambda: self.service.register_booking(command))
        if view is not None:
            r.bookings[booking_id] = _Booking(booking_id, size, view.window)
        yield

    def hold(self, r: _Restaurant, booking: _Booking, tables: tuple[str, ...]) -> str | None:
        command = PlaceHold(
            restaurant_id=r.restaurant_id,
            booking_id=booking.booking_id,
            table_ids=list(tables),
            ttl_seconds=self.rng.choice((None, 120, 300)),
            command_id=self.cid(),
            actor_id=_ACTOR,
        )
        view = self.send(lambda: self.service.place_hold(command))
        if view is None:
            return None
        r.holds[view.hold_id] = _Hold(booking.booking_id, tables, booking.window, view.expires_at)
        return view.hold_id

    def confirm(self, r: _Restaurant, booking: _Booking, hold_id: str) -> bool:
        key = f"key-{booking.booking_id}-{self.sequence}" if self.rng.random() < 0.5 else None
        command = ConfirmHold(
            restaurant_id=r.restaurant_id,
            booking_id=booking.booking_id,
            hold_id=hold_id,
            idempotency_key=key,
            command_id=self.cid(),
            actor_id=_ACTOR,
        )
        result = self.send(lambda: self.service.confirm_hold(command))
        if result is None:
            return False
        r.holds.pop(hold_id, None)
        booking.tables = tuple(result.table_ids)
        if self.rng.random() < 0.1:  # a lost reply: the host's tablet re-sends (a replay)
            self.send(lambda: self.service.confirm_hold(command))
        return True

    def release(self, r: _Restaurant, hold_id: str) -> None:
        command = ReleaseHold(
            restaurant_id=r.restaurant_id, hold_id=hold_id, command_id=self.cid(), actor_id=_ACTOR
        )
        if self.send(lambda: self.service.release_hold(command)) is not None:
            r.holds.pop(hold_id, None)

    def assign(
        self, r: _Restaurant, booking: _Booking, tables: tuple[str, ...], *, replace: bool
    ) -> None:
        command = AssignTables(
            restaurant_id=r.restaurant_id,
            booking_id=booking.booking_id,
            table_ids=list(tables),
            replace=replace,
            command_id=self.cid(),
            actor_id=_ACTOR,
        )
        result = self.send(lambda: self.service.assign_tables(command))
        if result is not None:
            booking.tables = tuple(result.table_ids)

    def unassign(self, r: _Restaurant, booking: _Booking, tables: tuple[str, ...] | None) -> None:
        command = UnassignTables(
            restaurant_id=r.restaurant_id,
            booking_id=booking.booking_id,
            table_ids=None if tables is None else list(tables),
            command_id=self.cid(),
            actor_id=_ACTOR,
        )
        result = self.send(lambda: self.service.unassign_tables(command))
        if result is not None:
            booking.tables = tuple(result.table_ids)

    def close(self, r: _Restaurant, booking: _Booking) -> None:
        roll = self.rng.random()
        ids = {
            "restaurant_id": r.restaurant_id,
            "booking_id": booking.booking_id,
            "command_id": self.cid(),
            "actor_id": _ACTOR,
        }
        call: Callable[[], AssignmentResult]
        if roll < 0.7:
            call = partial(self.service.complete_booking, CompleteBooking(**ids))
        elif roll < 0.9:
            call = partial(self.service.cancel_booking, CancelBooking(**ids))
        else:
            call = partial(self.service.mark_no_show, MarkNoShow(**ids))
        if self.send(call) is not None:
            booking.tables, booking.closed = (), True
            for hold_id in [
                h for h, hold in r.holds.items() if hold.booking_id == booking.booking_id
            ]:
                del r.holds[hold_id]

    # --- a booking's story ---

    def seat(self, r: _Restaurant, booking: _Booking) -> Iterator[None]:
        roll = self.rng.random()
        tables = self.pick(r, booking)
        if tables is None:
            return  # the room is full for that slot: the booking waits
        if roll < 0.5:
            hold_id = self.hold(r, booking, tables)
            yield
            if hold_id is not None:
                self.confirm(r, booking, hold_id)
        elif roll < 0.8:
            self.assign(r, booking, tables, replace=False)
        elif roll < 0.88:
            hold_id = self.hold(r, booking, tables)
            yield
            if hold_id is not None:
                self.release(r, hold_id)
        elif roll < 0.93:
            self.hold(r, booking, tables)  # abandoned: the sweeper expires it
        yield

    def change(self, r: _Restaurant, booking: _Booking) -> Iterator[None]:
        if booking.closed:
            return
        roll = self.rng.random()
        if not booking.tables:
            yield from self.seat(r, booking)
        elif roll < 0.35:  # a move
            tables = self.pick(r, booking)
            if tables is not None:
                self.assign(r, booking, tables, replace=True)
        elif roll < 0.5:  # an extra table next to a movable run
            taken = self.blocked(r, booking)
            extra = [
                t
                for t, _ in _COMBOS
                if len(t) == 1
                and t[0][0] == booking.tables[0][0]
                and t[0] not in booking.tables
                and t[0] not in taken
            ]
            if extra:
                self.assign(r, booking, self.rng.choice(extra), replace=False)
        elif roll < 0.7 and len(booking.tables) > 1:
            self.unassign(r, booking, (self.rng.choice(booking.tables),))
        elif roll < 0.85:
            self.unassign(r, booking, None)
        else:
            self.unassign(r, booking, ("B3",))  # a table it does not have: a no-op
        yield

    def drift(self, r: _Restaurant, booking: _Booking) -> Iterator[None]:
        """A hold placed under one policy, confirmed after the policy changed."""
        if booking.closed or booking.tables:
            return
        tables = self.pick(r, booking)
        if tables is None:
            return
        stale = self.hold(r, booking, tables)
        yield
        if stale is None:
            return
        r.post_buffer = 10 if r.post_buffer == 5 else 5
        policy = ChangePolicy(
            restaurant_id=r.restaurant_id,
            policy=VenuePolicy(post_buffer_minutes=r.post_buffer),
            command_id=self.cid(),
            actor_id="manager",
        )
        self.send(lambda: self.service.change_policy(policy))
        yield
        self.confirm(r, booking, stale)  # rejected: drift (only PolicyDriftDetected is written)
        self.release(r, stale)
        yield
        fresh = self.hold(r, booking, tables)
        if fresh is not None:
            self.confirm(r, booking, fresh)
        yield

    def day(self, r: _Restaurant, day: date) -> Iterator[None]:
        r.bookings.clear()
        r.holds.clear()
        prefix = f"b{day:%Y%m%d}-"
        count = self.rng.randint(24, 44)
        for n in range(count):
            yield from self.register(r, f"{prefix}{n:02d}", day)
        bookings = list(r.bookings.values())
        self.rng.shuffle(bookings)
        for booking in bookings:
            yield from self.seat(r, booking)
        waiting = [b for b in bookings if not b.tables]
        if waiting and self.rng.random() < 0.35:
            yield from self.drift(r, self.rng.choice(waiting))
        for _ in range(len(bookings) // 2):
            yield from self.change(r, self.rng.choice(bookings))
        for booking in bookings:
            if self.rng.random() < 0.85:
                self.close(r, booking)
                yield
        # the sweeper runs after the service: abandoned holds are recorded as expired
        self.clock.advance(timedelta(minutes=20))
        sweep = ExpireHolds(
            restaurant_id=r.restaurant_id,
            service_date=day,
            command_id=self.cid(),
            actor_id="system",
        )
        self.send(lambda: self.service.expire_holds(sweep))
        r.holds.clear()
        yield

    def run(self, target: int, restaurants: int) -> None:
        self.target = target
        states = [_Restaurant(f"r{n}") for n in range(1, restaurants + 1)]
        try:
            for state in states:
                floor = restaurant_floor(state.restaurant_id)
                self.send(partial(self.service.create_restaurant, floor))
            day = FIRST_DAY
            while True:
                self.clock.set(max(self.clock.now(), datetime.combine(day, time(9), UTC)))
                stories = [self.day(state, day) for state in states]
                while stories:  # interleave the restaurants, command by command
                    story = self.rng.choice(stories)
                    if next(story, _DONE) is _DONE:
                        stories.remove(story)
                day += timedelta(days=1)
        except _LogCompleteError:
            return


def _quiet_telemetry() -> Telemetry:
    """The generator's service works with projections off: no read-model rows ever appear,
    so every assignment would log 'rows missing'. Keep that out of the caller's logs."""
    logger = logging.Logger("seatledger.workload", level=logging.CRITICAL + 1)
    return Telemetry(logger=logger)


def generate_log(events: int, *, seed: int = 1, restaurants: int = 1) -> list[StoredEvent]:
    """At least ``events`` stored events (a few more at most: a command's events are saved
    together), in notification order, from a memory store driven through the command API.

    Deterministic for given arguments. Costs what the service costs: about 1.5-2 k events
    per second on one core (20,000 events in 10-13 s)."""
    if events < 1:
        raise ValueError("events must be positive")
    if restaurants < 1:
        raise ValueError("restaurants must be positive")
    settings = Settings(
        persistence="memory",
        projection_mode="off",
        read_your_writes_timeout_ms=0,
    )
    clock = ManualClock(START)
    with AssignmentService(settings, clock=clock, telemetry=_quiet_telemetry()) as service:
        _Generator(service, clock, seed).run(events, restaurants)
        stored: list[StoredEvent] = []
        last = 0
        while True:
            page = service.recorder.select_notifications(
                start=last, limit=_PAGE, inclusive_of_start=False
            )
            if not page:
                break
            stored.extend(
                StoredEvent(n.originator_id, n.originator_version, n.topic, n.state) for n in page
            )
            last = page[-1].id
    return stored


def copy_log(
    stored: Sequence[StoredEvent], recorder: ApplicationRecorder, batch: int = 1000
) -> int:
    """Insert ``stored`` into another store's recorder, ``batch`` events per transaction, in
    the given order: each aggregate's events keep their order, and the target's notification
    ids follow the insertion order (a fresh store numbers them 1..n). Returns events inserted."""
    if batch < 1:
        raise ValueError("batch must be positive")
    for first in range(0, len(stored), batch):
        recorder.insert_events(list(stored[first : first + batch]))
    return len(stored)


def table_set_changes(stored: Sequence[StoredEvent]) -> int:
    """How many events of the log change a booking's table set: exactly the number of
    ``capacity.assignment.sync`` messages the outbox must hold for it. (Decodes with a plain
    :class:`~seatledger.application.mapper.PydanticMapper`: no cipher, no compression, as
    :func:`generate_log` stores them.)"""
    mapper = PydanticMapper()
    topics = {
        TablesAssigned.TOPIC,
        HoldConfirmed.TOPIC,
        TablesUnassigned.TOPIC,
        BookingClosed.TOPIC,
    }
    changes = 0
    for item in stored:
        if item.topic not in topics:
            continue
        event = mapper.to_domain_event(item)
        if isinstance(event, ChangeEvent) or (
            isinstance(event, BookingClosed) and event.change is not None
        ):
            changes += 1
    return changes

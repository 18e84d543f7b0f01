"""Units of work: how a command gets its aggregates, and how what it decided is saved.

Owns loading aggregates (with the caches: directory entries for good, floor views per layout
version; whole aggregates are cached by the library's repository), the directory look-ups
(which day a booking lives in, where a hold is filed, the tenancy check on a hold), and the
optimistic retry loop: every attempt of a command is one :class:`UnitOfWork`, stamped once
(time, command id, actor), whose new events are saved together; a stale save re-runs the
command on fresh state, a bounded number of times. A :class:`SaveHook` joins the command
ledger to an attempt: it adds the command's entry to the save and decides, after a conflict,
whether the ledger answers (:mod:`.ledger`); ledger entries are read only through
:meth:`AggregateStore.ledger_entry`, never cached.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Recording

from seatledger.application.clock import Clock
from seatledger.application.errors import ConcurrencyConflictError
from seatledger.application.fastforward import fast_forward
from seatledger.application.telemetry import Telemetry
from seatledger.domain.aggregate import Aggregate, Stamp
from seatledger.domain.directory import (
    BookingIndex,
    HoldIndex,
    booking_index_id,
    hold_index_id,
    hold_restaurant_mismatch,
)
from seatledger.domain.errors import AlreadyExistsError, ErrorCode, NotFoundError
from seatledger.domain.layout import FloorLayout, FloorView, layout_id
from seatledger.domain.ledger import CommandEntry, ledger_entry_id
from seatledger.domain.service_day import HoldState, ServiceDay, day_id
from seatledger.domain.values import Window

A = TypeVar("A", bound=Aggregate)
R = TypeVar("R")
V_contra = TypeVar("V_contra", contravariant=True)


#: Back-off between attempts of a command that lost the race for a save: "full jitter" over a
#: capped exponential (the first re-run waits up to 4 ms, then 8, 16, ... at most 128 ms), so
#: writers that collided spread out instead of colliding again (bench contention).
BACKOFF_BASE_SECONDS = 0.004
BACKOFF_CAP_SECONDS = 0.128


def backoff_seconds(attempt: int) -> float:
    """How long to wait after the ``attempt``-th attempt lost the race (1, 2, ...)."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(0, ceiling)


class Origin(Protocol):
    """Who issued a command, under which id: every command model is one."""

    @property
    def command_id(self) -> str: ...

    @property
    def actor_id(self) -> str: ...


class SaveHook(Protocol[V_contra]):
    """What the command ledger does around the save of one attempt."""

    def before_save(self, work: UnitOfWork, value: V_contra) -> None:
        """Add the ledger's part to the attempt's save (or raise: the ledger answers)."""

    def after_conflict(self) -> None:
        """The save was stale: raise if the ledger answers; return to re-run the attempt."""

    def saved(self) -> None:
        """The attempt's save went through."""


@dataclass(frozen=True)
class SaveMark:
    """The last save of this thread's command: the notification id and topic of each of
    its events, and whether the service projected them in this thread right after the save
    (in-process projections)."""

    notifications: tuple[tuple[int, str], ...]
    projected: bool

    def last(self, topics: Collection[str]) -> int | None:
        """The last notification id of the save among ``topics`` (None: none of them)."""
        return max((nid for nid, topic in self.notifications if topic in topics), default=None)


@dataclass(frozen=True)
class Step:
    """The origin of a step of an automated run (its command id derived from the run's)."""

    command_id: str
    actor_id: str


class Reads:
    """The aggregates one command attempt (or one query) has loaded, and the directory."""

    def __init__(self, store: AggregateStore) -> None:
        self._store = store
        self.aggregates: dict[UUID, Aggregate] = {}

    @property
    def telemetry(self) -> Telemetry:
        return self._store.telemetry

    def get(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        found = self.aggregates.get(aggregate_id)
        if found is None:
            found = self._store.load(aggregate_id)
            if found is None:
                return None
            self.aggregates[aggregate_id] = found
            self._loaded(found)
        if not isinstance(found, kind):
            raise TypeError(f"{aggregate_id} is a {type(found).__name__}, not {kind.__name__}")
        return found

    def _loaded(self, aggregate: Aggregate) -> None:
        """An aggregate was loaded from the store (as stored, before this attempt)."""

    def prefetch_booking(self, restaurant_id: str, booking_id: str) -> None:
        """Load the restaurant's layout and the booking's day together, in one read when
        both are cached (:mod:`.fastforward`); a booking the directory does not know (or
        files elsewhere) is left to :meth:`booking_day` to report."""
        index = self._store.directory_get(booking_index_id(restaurant_id, booking_id), BookingIndex)
        if index is None or (index.restaurant_id, index.booking_id) != (restaurant_id, booking_id):
            return
        wanted = [layout_id(restaurant_id), day_id(restaurant_id, index.service_date)]
        for aggregate_id, aggregate in self._store.fast_forward(wanted).items():
            if aggregate_id not in self.aggregates:
                self.aggregates[aggregate_id] = aggregate
                self._loaded(aggregate)

    def layout(self, restaurant_id: str) -> FloorLayout:
        layout = self.get(layout_id(restaurant_id), FloorLayout)
        if layout is None:
            raise NotFoundError(
                ErrorCode.RESTAURANT_NOT_FOUND,
                f"restaurant {restaurant_id} not found",
                details={"restaurant_id": restaurant_id},
            )
        return layout

    def floor(self, restaurant_id: str) -> FloorView:
        return self._store.floor_view(self.layout(restaurant_id))

    def find_day(self, restaurant_id: str, service_date: date) -> ServiceDay | None:
        return self.get(day_id(restaurant_id, service_date), ServiceDay)

    def require_table(
        self, restaurant_id: str, table_id: str, *, owners: Callable[[str, str], list[str]]
    ) -> None:
        """``TABLE_NOT_FOUND`` unless the restaurant has the table (ids are per restaurant);
        when ``owners`` names other restaurants using that id, the probe is a tenancy
        violation, logged with both tenants (the caller's error names only its own)."""
        floor = self.floor(restaurant_id)
        if table_id in floor.tables:
            return
        others = owners(table_id, restaurant_id)
        if others:
            self._store.telemetry.emit(
                "tenancy.violation",
                level=logging.ERROR,
                operation="table_availability",
                table_id=table_id,
                restaurant_id=restaurant_id,
                owner_restaurant_ids=others,
            )
        floor.require_tables([table_id])

    def day(self, restaurant_id: str, service_date: date) -> ServiceDay:
        """A day the directory points at: it always exists, or the storage is at fault."""
        day = self.find_day(restaurant_id, service_date)
        if day is None:
            raise RuntimeError(f"service day {restaurant_id}/{service_date} is missing")
        return day

    def booking_index(
        self, restaurant_id: str, booking_id: str, *, registering: bool = False
    ) -> BookingIndex | None:
        """Where the caller's booking is filed. An entry filed for another address (an id
        stored before the input contract, whose parts collide) is never the caller's:
        reported as a tenancy violation and refused, without its date."""
        aggregate_id = booking_index_id(restaurant_id, booking_id)
        if aggregate_id in self.aggregates:  # filed by this very attempt
            index = self.get(aggregate_id, BookingIndex)
        else:
            index = self._store.directory_get(aggregate_id, BookingIndex)
        if index is not None and (index.restaurant_id, index.booking_id) != (
            restaurant_id,
            booking_id,
        ):
            self._store.telemetry.emit(
                "tenancy.violation",
                level=logging.ERROR,
                operation="register_booking" if registering else "find_booking",
                booking_id=booking_id,
                restaurant_id=restaurant_id,
                owner_restaurant_id=index.restaurant_id,
            )
            if registering:  # the id's entry is taken: the booking cannot be filed
                raise AlreadyExistsError(
                    ErrorCode.BOOKING_EXISTS,
                    f"booking id {booking_id} cannot be used in restaurant {restaurant_id}",
                    details={"booking_id": booking_id, "restaurant_id": restaurant_id},
                )
            return None
        return index

    def booking_day(self, restaurant_id: str, booking_id: str) -> ServiceDay:
        index = self.booking_index(restaurant_id, booking_id)
        if index is None:
            raise NotFoundError(
                ErrorCode.BOOKING_NOT_FOUND,
                f"booking {booking_id} not found in restaurant {restaurant_id}",
                details={"restaurant_id": restaurant_id, "booking_id": booking_id},
            )
        return self.day(restaurant_id, index.service_date)

    def hold_index(self, hold_id: str) -> HoldIndex | None:
        """Where a hold is filed, in whichever restaurant (hold ids are global)."""
        return self._store.directory_get(hold_index_id(hold_id), HoldIndex)

    def hold_location(
        self, restaurant_id: str, hold_id: str, *, operation: str = "hold"
    ) -> HoldIndex | None:
        """Where a hold of this restaurant is filed; another restaurant's is a tenancy
        violation (reported, and refused)."""
        index = self.hold_index(hold_id)
        if index is not None and index.restaurant_id != restaurant_id:
            self.report_tenancy_violation(
                hold_id, index.restaurant_id, restaurant_id, operation=operation
            )
            raise hold_restaurant_mismatch(hold_id, restaurant_id)
        return index

    def blocking_bookings(
        self, restaurant_id: str, table_id: str, window: Window, exclude: str | None
    ) -> list[str]:
        """Availability straight from the service days' events (read models missing): the
        bookings whose assignments keep the table busy in ``window``."""
        zone = self.floor(restaurant_id).policy.zone
        first = window.start.astimezone(zone).date()
        last = window.end.astimezone(zone).date()
        blocking: set[str] = set()
        for service_date in sorted({first - timedelta(days=1), first, last}):
            day = self.find_day(restaurant_id, service_date)
            if day is not None:
                conflicts = day.assignment_conflicts(window, (table_id,), exclude or "")
                blocking.update(conflict["booking_id"] for conflict in conflicts)
        return sorted(blocking)

    def report_tenancy_violation(
        self, hold_id: str, hold_restaurant: str, caller_restaurant: str, *, operation: str
    ) -> None:
        """Log both tenants at error severity (the caller's error names only its own)."""
        self._store.telemetry.emit(
            "tenancy.violation",
            level=logging.ERROR,
            operation=operation,
            hold_id=hold_id,
            hold_restaurant_id=hold_restaurant,
            booking_restaurant_id=caller_restaurant,
        )


class UnitOfWork(Reads):
    """One attempt of one command: what it loaded and created, saved together, and the one
    stamp (time, command id, actor) every event of the attempt carries."""

    def __init__(self, store: AggregateStore, stamp: Stamp) -> None:
        super().__init__(store)
        self.stamp = stamp
        self._seen = False

    def _loaded(self, aggregate: Aggregate) -> None:
        command_id = self.stamp.command_id
        if (isinstance(aggregate, ServiceDay) and command_id in aggregate.seen_commands) or (
            isinstance(aggregate, FloorLayout) and aggregate.created_by == command_id
        ):
            self._seen = True

    def add(self, aggregate: A) -> A:
        self.aggregates[aggregate.id] = aggregate
        return aggregate

    def file_hold(self, day: ServiceDay, hold: HoldState) -> None:
        """File a new hold in the directory (in the same save as the hold itself)."""
        if self.hold_index(hold.hold_id) is None:
            self.add(
                HoldIndex.file(
                    hold_id=hold.hold_id,
                    restaurant_id=day.restaurant_id,
                    service_date=day.service_date,
                    booking_id=hold.booking_id,
                    stamp=self.stamp,
                )
            )

    def pending(self) -> list[Aggregate]:
        return [agg for agg in self.aggregates.values() if agg.pending_events]

    def resent(self) -> bool:
        """The stored events of what this attempt loaded show its command id (seen as
        loaded, before the attempt added its own): the command ran before (a re-send, or a
        twin that got there first)."""
        return self._seen


class AggregateStore:
    """Where commands and queries get their aggregates, and where commands are run.

    Two caches, so that neither crowds the other out: service days and layouts are cached
    (and fast-forwarded) by the library's repository; directory entries, one per booking
    and hold, are read straight from the event store and kept in a cache of their own."""

    #: Directory entries kept (``Settings.directory_cache_entries`` in a service).
    DIRECTORY_CACHE_SIZE = 50_000

    def __init__(
        self,
        app: Application[UUID],
        *,
        clock: Clock,
        telemetry: Telemetry,
        retries: int,
        saved: Callable[[Sequence[Recording[UUID]]], bool],
        directory_cache_size: int | None = None,
    ) -> None:
        self._app = app
        self._clock = clock
        self.telemetry = telemetry
        self._retries = retries
        self._saved = saved
        self._cache_lock = threading.Lock()
        self._directory: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._directory_size = (
            self.DIRECTORY_CACHE_SIZE if directory_cache_size is None else directory_cache_size
        )
        self._floor_views: dict[str, FloorView] = {}
        self._marks = threading.local()

    def run(
        self, origin: Origin, act: Callable[[UnitOfWork], R], hook: SaveHook[R] | None = None
    ) -> R:
        """Run ``act`` as a unit of work and save what it decided (with what ``hook`` adds);
        on a stale save, ask the hook, then re-run it on fresh state
        (``CONCURRENCY_CONFLICT`` once the retries are spent)."""
        attempts = self._retries + 1
        self._marks.last = None
        for attempt in range(1, attempts + 1):
            work = UnitOfWork(self, Stamp(self._clock.now(), origin.command_id, origin.actor_id))
            result = act(work)
            if hook is not None:
                hook.before_save(work, result)
            try:
                self._save(work)
            except IntegrityError:
                if hook is not None:
                    hook.after_conflict()
                self.telemetry.emit("command.retry", level=logging.DEBUG, attempt=attempt)
                if attempt < attempts:
                    time.sleep(backoff_seconds(attempt))
                continue
            if hook is not None:
                hook.saved()
            return result
        raise ConcurrencyConflictError(
            f"gave up after {attempts} attempts: other writers kept changing the same data",
            details={"attempts": attempts},
        )

    def reads(self) -> Reads:
        """Loading for a query (nothing is saved)."""
        return Reads(self)

    def load(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            return cast(Aggregate, self._app.repository.get(aggregate_id))
        except AggregateNotFoundError:
            return None

    def fast_forward(self, ids: Sequence[UUID]) -> dict[UUID, Aggregate]:
        """Those of ``ids`` the repository has cached, brought up to date in one read."""
        if len(ids) < 2:
            return {}
        return fast_forward(self._app, ids)

    def ledger_entry(self, restaurant_id: str, command_id: str) -> CommandEntry | None:
        """The command's ledger entry, read from the store itself: entries are looked up
        only when a command turns out to be a re-send, and a cached miss could hide an
        entry another process wrote since."""
        return cast(CommandEntry | None, self._replay(ledger_entry_id(restaurant_id, command_id)))

    def _replay(self, aggregate_id: UUID) -> Aggregate | None:
        """An aggregate from its events, past the repository and its cache."""
        aggregate: Aggregate | None = None
        for event in self._app.events.get(aggregate_id):
            aggregate = cast(Aggregate, event.mutate(aggregate))  # type: ignore[attr-defined]
        return aggregate

    def directory_get(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        """Directory aggregates never change once filed, so found ones are cached for good
        (least recently used first out), in their own cache: never in the repository's,
        where one entry per booking would evict the service days."""
        with self._cache_lock:
            cached = self._directory.get(aggregate_id)
            if cached is not None:
                self._directory.move_to_end(aggregate_id)
        if cached is None:
            cached = self._replay(aggregate_id)
            if cached is None:
                return None
            with self._cache_lock:
                self._directory[aggregate_id] = cached
                while len(self._directory) > self._directory_size:
                    self._directory.popitem(last=False)
        return cached if isinstance(cached, kind) else None

    def floor_view(self, layout: FloorLayout) -> FloorView:
        """The layout's view, built once per layout version."""
        with self._cache_lock:
            view = self._floor_views.get(layout.restaurant_id)
        if view is None or view.version != layout.version:
            view = layout.view()
            with self._cache_lock:
                self._floor_views[layout.restaurant_id] = view
        return view

    def _cache_saved(self, saved: Sequence[Aggregate]) -> None:
        """The saved days and layouts are the stored state now: cached as they are, the next
        command's fast-forward has nothing of its own to decode again (a newer one another
        thread cached is only set back, and fast-forwarded again)."""
        cache = self._app.repository.cache
        if cache is None:
            return
        for aggregate in saved:
            if isinstance(aggregate, ServiceDay | FloorLayout):
                cache.put(aggregate.id, aggregate)

    def last_save(self) -> SaveMark | None:
        """The last save of the command this thread runs (None: it saved nothing)."""
        mark: SaveMark | None = getattr(self._marks, "last", None)
        return mark

    def _save(self, work: UnitOfWork) -> None:
        pending = work.pending()
        if pending:
            recordings = self._app.save(*pending)
            self._cache_saved(pending)
            projected = self._saved(recordings)
            self._marks.last = SaveMark(
                tuple((r.notification.id, r.notification.topic) for r in recordings), projected
            )

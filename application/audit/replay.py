"""One pass over the event log: the chained digest, the history invariants and the scratch
read models, fed from the same pages of notifications.

Pages come from the recorder's bulk ``select_notifications`` (every topic: the chain covers
every event), the next page fetched in a background thread while this one is processed.
Each notification is decoded once (every one: an event that no longer decodes is reported),
by the read side's fast decoder (:mod:`seatledger.projections.decoding`: the mapper's results),
and the decoded event is shared by the projections and the invariants. The projections
write into the scratch database with their own ``apply``: the rows are built by exactly the
code that builds the live rows.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper, Notification

from seatledger.application.audit.digest import LogChain
from seatledger.application.audit.invariants import CHECKED_TOPICS, HistoryChecker
from seatledger.application.read_models import PROJECTIONS
from seatledger.domain.aggregate import DomainEvent
from seatledger.projections.db import ReadModelDB, SQLiteReadModels
from seatledger.projections.migrations import migrate
from seatledger.projections.projection import Projected, Projection
from seatledger.projections.source import EventSource

#: ``progress(position reached, last position to read)``, after every page.
Progress = Callable[[int, int], None]

DEFAULT_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Until:
    """Where a replay ends: after a log position, or before the first event stored with a
    timestamp after an instant (the log is a prefix either way). None: the whole log."""

    position: int | None = None
    instant: datetime | None = None


def scratch_read_models() -> ReadModelDB:
    """A private in-memory SQLite database with the read-model tables (never the live ones)."""
    db = SQLiteReadModels(":memory:")
    migrate(db)
    return db


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cycle collector off for the replay, as it was before afterwards. A replay
    keeps every aggregate of the log alive and allocates a dozen objects per event, so the
    collector's full passes, which scan everything alive, come ever more often over an ever
    larger heap: measured, they were half of a 50,000-event audit's CPU time. Nothing of the
    replay needs them (its objects are freed by reference counting; cycles, if any, are
    collected once the collector is back)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class Replay:
    recorder: ApplicationRecorder
    mapper: Mapper[UUID]
    scratch: ReadModelDB
    projections: Sequence[Projection] = PROJECTIONS
    checker: HistoryChecker | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    progress: Progress | None = None
    chain: LogChain = field(default_factory=LogChain)
    #: Every notification up to here has been replayed.
    covered: int = 0
    undecodable: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be positive")
        self.source = EventSource(self.recorder, self.mapper)

    def run(
        self,
        until: Until | None = None,
        stops: Mapping[int, Callable[[], None]] | None = None,
        *,
        end: int | None = None,
    ) -> None:
        """Replay up to ``until`` (or ``end``, default the log's last position now); each
        callback in ``stops`` runs once everything up to its position is replayed (and not
        at all if the replay ends before it)."""
        with cyclic_gc_paused():
            self._run(until or Until(), stops, end)

    def _run(
        self, until: Until, stops: Mapping[int, Callable[[], None]] | None, end: int | None
    ) -> None:
        last = self.source.max_id() if end is None else end
        if until.position is not None:
            last = min(last, until.position)
        pending = sorted((stops or {}).items())
        projected = frozenset(t for p in self.projections for t in p.topics)
        stopped = False
        for page in self._pages(last):
            batch: list[Projected] = []
            for notification in page:
                while pending and pending[0][0] < notification.id:
                    self._flush(batch)
                    pending.pop(0)[1]()
                event = self._decode(notification)
                if (
                    until.instant is not None
                    and event is not None
                    and event.timestamp > until.instant
                ):
                    stopped = True
                    break
                self.chain.add(notification)
                self.covered = notification.id
                if event is None:
                    continue
                if self.checker is not None and notification.topic in CHECKED_TOPICS:
                    self.checker.check(notification.id, event)
                if notification.topic in projected:
                    try:
                        day = self.source.day_of(event)
                    except LookupError as exc:
                        self.undecodable.append((notification.id, str(exc)))
                        continue
                    batch.append(Projected(notification.id, event, day))
            self._flush(batch)
            if stopped:
                break
            if self.progress is not None:
                self.progress(self.covered, last)
        if not stopped:
            self.covered = last
        for position, callback in pending:
            if position <= self.covered:
                callback()

    def _decode(self, notification: Notification) -> DomainEvent | None:
        try:  # the decoder itself: each event is read once here, nothing to remember
            return self.source.decoder.decode(notification)
        except Exception as exc:  # an edited event may not even decode: report, go on
            self.undecodable.append((notification.id, f"{type(exc).__name__}: {exc}"))
            return None

    def _flush(self, batch: list[Projected]) -> None:
        if not batch:
            return
        with self.scratch.transaction() as tx:
            for projection in self.projections:
                topics = frozenset(projection.topics)
                mine = [item for item in batch if item.event.TOPIC in topics]
                if mine:
                    projection.apply(tx, mine)
        batch.clear()

    def _pages(self, last: int) -> Iterator[Sequence[Notification]]:
        """Pages up to ``last``, the next one read while the caller works on this one."""

        def read(after: int) -> Sequence[Notification]:
            return self.recorder.select_notifications(
                start=after, limit=self.page_size, stop=last, inclusive_of_start=False
            )

        if last <= self.covered:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seatledger-audit") as pool:
            upcoming = pool.submit(read, self.covered)
            while True:
                page = upcoming.result()
                if not page:
                    return
                if page[-1].id < last and len(page) == self.page_size:
                    upcoming = pool.submit(read, page[-1].id)
                    yield page
                    continue
                yield page
                return

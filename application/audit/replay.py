"""One pass over the event log: the chained digest, the history invariants and the scratch
read models, fed from the same pages of notifications.

Pages come from the recorder's bulk ``select_notifications`` query (every topic: the chain
covers every event; on PostgreSQL with tuple rows, :func:`page_reader`), the next page
fetched in a background thread while this one is processed.
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

from eventsourcing.persistence import (
    ApplicationRecorder,
    InterfaceError,
    Mapper,
    Notification,
    OperationalError,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composable, Identifier

from seatledger.application.audit.digest import (
    POSTGRES_EVENT_DIGEST,
    DigestedNotification,
    LogChain,
)
from seatledger.application.audit.invariants import CHECKED_TOPICS, HistoryChecker
from seatledger.application.audit.report import Violation
from seatledger.application.read_models import PROJECTIONS
from seatledger.domain.aggregate import DomainEvent
from seatledger.projections.db import ReadModelDB, SQLiteReadModels
from seatledger.projections.migrations import migrate
from seatledger.projections.projection import Projected, Projection
from seatledger.projections.source import EventSource

#: ``progress(position reached, last position to read)``, after every page.
Progress = Callable[[int, int], None]

DEFAULT_PAGE_SIZE = 1000
#: Projected events written to the scratch read models in one transaction (and before every
#: comparison stop): one SQLite transaction per page cost more than its rows.
FLUSH_EVENTS = 10_000


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
class Findings:
    """What a replay found, however it ran: the log's chain, the last position replayed,
    the events it could not read, the invariants' first violations and how many there were,
    and how many events the invariants checked."""

    chain: LogChain
    covered: int
    undecodable: list[tuple[int, str]]
    first: list[Violation]
    count: int
    events_checked: int


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
        checked = CHECKED_TOPICS if self.checker is not None else frozenset()
        check = self.checker.check if self.checker is not None else None
        # bound once: the loop below runs once per event of the log
        decode, add, day_of = self.source.decoder.decode, self.chain.add, self.source.day_of
        undecodable, instant = self.undecodable, until.instant
        stopped = False
        batch: list[Projected] = []  # written to the scratch models every FLUSH_EVENTS
        for page in self._pages(last):
            for notification in page:
                position = notification.id
                while pending and pending[0][0] < position:
                    self._flush(batch)
                    pending.pop(0)[1]()
                try:  # the decoder itself: each event is read once here, nothing to remember
                    event: DomainEvent | None = decode(notification)
                except Exception as exc:  # an edited event may not even decode: report, go on
                    undecodable.append((position, f"{type(exc).__name__}: {exc}"))
                    event = None
                if instant is not None and event is not None and event.timestamp > instant:
                    stopped = True
                    break
                add(notification)
                self.covered = position
                if event is None:
                    continue
                topic = notification.topic
                if check is not None and topic in checked:
                    check(position, event)
                if topic in projected:
                    try:
                        day = day_of(event)
                    except LookupError as exc:
                        undecodable.append((position, str(exc)))
                        continue
                    batch.append(Projected(position, event, day))
            if stopped:
                break
            if len(batch) >= FLUSH_EVENTS:
                self._flush(batch)
            if self.progress is not None:
                self.progress(self.covered, last)
        self._flush(batch)
        if not stopped:
            self.covered = last
        for position, callback in pending:
            if position <= self.covered:
                callback()

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
        read = page_reader(self.recorder, self.page_size, last)
        return prefetched_pages(read, self.covered, last, self.page_size)


def prefetched_pages(
    read: Callable[[int], Sequence[Notification]], after: int, last: int, page_size: int
) -> Iterator[Sequence[Notification]]:
    """The pages ``read(after)`` gives up to ``last``, each next page read in a background
    thread while the caller works on the one it has."""
    if last <= after:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seatledger-audit") as pool:
        upcoming = pool.submit(read, after)
        while True:
            page = upcoming.result()
            if not page:
                return
            if page[-1].id < last and len(page) == page_size:
                upcoming = pool.submit(read, page[-1].id)
                yield page
                continue
            yield page
            return


def page_reader(
    recorder: ApplicationRecorder, page_size: int, last: int
) -> Callable[[int], Sequence[Notification]]:
    """``read(after)``: the page of notifications after a position, up to ``last``.

    On PostgreSQL the page is the recorder's own ``select_notifications`` query, but with
    tuple rows (the recorder asks for a dict per row) in binary format, made into the same
    ``Notification`` objects: the rows, order and values are the recorder's (tested).
    Elsewhere, the recorder's."""
    if isinstance(recorder, PostgresApplicationRecorder):
        return postgres_page_reader(recorder, page_size, last)

    def fallback(after: int) -> Sequence[Notification]:
        return recorder.select_notifications(
            start=after, limit=page_size, stop=last, inclusive_of_start=False
        )

    return fallback


def postgres_page_reader(
    recorder: PostgresApplicationRecorder,
    page_size: int,
    last: int,
    where: tuple[Composable, tuple[object, ...]] | None = None,
) -> Callable[[int], Sequence[Notification]]:
    """:func:`page_reader` on PostgreSQL; ``where``: a further condition on the rows (SQL
    and its parameters), e.g. one shard of the aggregates (:mod:`.parallel`)."""
    condition, extra = where if where is not None else (SQL("TRUE"), ())
    digested = recorder.datastore.originator_id_type == "uuid"
    statement = SQL(
        "SELECT originator_id, originator_version, topic, state, notification_id{}"
        " FROM {}.{} WHERE notification_id>%s AND notification_id <= %s AND ({})"
        " ORDER BY notification_id LIMIT %s"
    ).format(
        SQL(", " + POSTGRES_EVENT_DIGEST if digested else ""),
        Identifier(recorder.datastore.schema),
        Identifier(recorder.events_table_name),
        condition,
    )
    # Notification's fields in order: originator_id, originator_version, topic, state, id
    # (the columns above), and, with uuid ids, the event's digest
    row_type = DigestedNotification if digested else Notification
    datastore = recorder.datastore

    def select(after: int) -> Sequence[Notification]:
        with (
            datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as curs,
        ):
            # binary results: the same values (uuid, int, str, bytes), but PostgreSQL need not
            # spell each state out in hex, nor psycopg read the hex back (measured: a fifth of
            # the read's CPU on both sides)
            curs.execute(statement, (after, last, *extra, page_size), prepare=True)
            return [row_type(*row) for row in curs.fetchall()]

    # retried as the recorder retries its own select (the decorator is untyped)
    retried: Callable[[int], Sequence[Notification]] = retry(
        (InterfaceError, OperationalError), max_attempts=10, wait=0.2
    )(select)
    return retried

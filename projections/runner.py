"""Running projections: pages of notifications, one transaction per page, exactly once.

A page is (1) read and decoded from the event store after the tracking position, outside any
read-model transaction, then written in one read-model transaction that (2) takes the
projection's advisory lock (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already admits one
writer), (3) moves the position from the one the page was read after to the page's last id
with a compare-and-set (which is the check that nobody moved it: if it did, the transaction
ends with nothing written and the page is read again) and (4) writes the rows. A crash
anywhere rolls the transaction back; a second runner either waits for the lock or finds the
position moved and reads again; a re-delivered notification is at or below the position and
is skipped. Where the page is read after: the position this runner last wrote (checked as
above, and by a read when the page comes out empty), else the position read.

Why the event store is read first: on SQLite the events and the read models share one file,
and its write lock is the read-model transaction's. A runner that read events while holding it
waited for the library's connection pool, whose writers wait for that very lock: the
in-process catch-up and the commands took the two locks in opposite orders. Now a runner holds
nothing of the event store while it writes.

A page that fails is applied again one event per transaction, so the position stops exactly
before the event that cannot be applied (:mod:`seatledger.projections.failures`).
:meth:`PageRunner.supervised_catch_up` is what the long-running loops call
(:mod:`seatledger.projections.loops`): after a failure the runner rests for a back-off, during
which it is skipped, so the failure is logged and recorded once per back-off, never in a
tight loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg
from eventsourcing.persistence import Notification

from seatledger.projections.db import PostgresReadModels, ReadModelDB, Tx
from seatledger.projections.failures import (
    EventNotAppliedError,
    ProjectionFailure,
    clear_failure,
    reason,
    record_failure,
)
from seatledger.projections.projection import Projected, Projection
from seatledger.projections.source import EventSource


class Reporter(Protocol):
    """Where the read side reports what it does: anything with ``emit`` (the application's
    ``seatledger.application.telemetry.Telemetry`` is one). A protocol, so the read side does
    not import the application."""

    def emit(
        self, name: str, *, level: int = logging.INFO, message: str | None = None, **fields: Any
    ) -> None: ...


class TrackingConflictError(RuntimeError):
    """Another runner moved the tracking position during this page: the page rolls back."""


#: The longest pause, in seconds, of a long-running loop between two attempts that failed.
BACKOFF_CAP = 10.0


def failure_backoff(failures: int) -> float:
    """Seconds to wait after the n-th failure in a row of a long-running loop: 0.4 s,
    doubling, at most :data:`BACKOFF_CAP` (a broken database is not hammered, a blip costs
    little, and a server that is back is found within seconds)."""
    return min(BACKOFF_CAP, 0.2 * 2.0 ** min(failures, 8))


def lock_key(projection_name: str, schema: str = "") -> int:
    """A stable signed 64-bit advisory-lock key per projection and schema (advisory locks
    are database-wide: stores in other schemas of the same database must not contend)."""
    scope = f"{schema}." if schema else ""
    digest = hashlib.sha256(f"seatledger.projection.{scope}{projection_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PageRunner:
    """Catches one projection up with the event log, a page per transaction."""

    def __init__(
        self,
        db: ReadModelDB,
        projection: Projection,
        source: EventSource,
        telemetry: Reporter,
        *,
        page_size: int = 500,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be positive")
        self.db = db
        self.projection = projection
        self.source = source
        self.telemetry = telemetry
        self.page_size = page_size
        self.lock_key = lock_key(
            projection.name, db.schema if isinstance(db, PostgresReadModels) else ""
        )
        #: failures in a row (this process), and when the next attempt is due
        self._failures = 0
        self._retry_at = 0.0
        #: the clock of the back-off (a test may hand it a manual one)
        self.monotonic: Callable[[], float] = time.monotonic
        #: where the last page moved the position, and where the next page of a catch-up
        #: that read a full page starts (None: read the position)
        self._advanced_to: int | None = None
        self._continue_after: int | None = None
        #: the last position this runner wrote (a guess for the catch-up after a save)
        self._written: int | None = None

    @property
    def name(self) -> str:
        return self.projection.name

    def position(self) -> int:
        """The tracking position as committed. PostgreSQL: one statement outside a
        transaction, one round trip instead of three (``BEGIN``, the read, ``COMMIT``): the
        read-your-writes wait polls it."""
        db = self.db
        if isinstance(db, PostgresReadModels):
            with db.pool.connection() as conn:
                conn.autocommit = True
                try:
                    row = conn.execute(
                        "SELECT notification_id FROM seatledger_tracking WHERE projection = %s",
                        (self.name,),
                    ).fetchone()
                finally:
                    with contextlib.suppress(psycopg.Error):  # a broken one is discarded
                        conn.autocommit = False
            return int(row[0]) if row else 0
        with db.read() as tx:
            return self._position(tx)

    def _position(self, tx: Tx) -> int:
        rows = tx.execute(
            "SELECT notification_id FROM seatledger_tracking WHERE projection = :name",
            {"name": self.name},
        )
        return int(rows[0][0]) if rows else 0

    def _try_lock(self, tx: Tx) -> bool:
        """The projection's advisory lock (PostgreSQL), and in the same round trip the page's
        commit made asynchronous (``synchronous_commit`` off, this transaction only): the
        commit does not wait for its WAL flush. Safe for a read model: rows and position are
        one transaction, so a crash of the server loses both of its last pages together (well
        under a second's worth) and they are applied again from the log; and a later
        synchronous commit (the relay's outcome of a message) flushes the WAL before it, so
        nothing durable refers to a lost page. Readers see a page once it commits, as before."""
        if tx.dialect != "postgres":
            return True
        (row,) = tx.execute(
            "SELECT pg_try_advisory_xact_lock(:key), set_config('synchronous_commit', 'off', true)",
            {"key": self.lock_key},
        )
        return bool(row[0])

    #: How often a page is read again when another runner moved the position meanwhile.
    MOVED_RETRIES = 3

    def process_page(self, upto: int | None = None) -> int:
        """Process the next page; returns how many notifications it applied (0: none, or
        another runner holds the projection right now). A page that fails is applied one
        event at a time: :class:`EventNotAppliedError` names the event the projection stopped at.

        ``upto``: a save's last notification id (the catch-up right after it). The page is
        taken from what the source remembers when that covers every id up to it
        (:meth:`EventSource.known_page`), else read from the log; it ends at ``upto``."""
        for attempt in range(self.MOVED_RETRIES):
            # where to read after: where a full page of this catch-up left the position, or
            # at the first attempt the position this runner wrote last (both a round trip
            # less); the page's transaction checks it (another runner may have moved it: the
            # next attempt reads it), and an empty page is checked here; else read it
            position = self._continue_after
            self._continue_after = None
            guessed = position is None and attempt == 0 and self._written is not None
            if guessed:
                position = self._written
            if position is None:
                position = self.position()
            page: Sequence[Notification] | None = None
            if upto is not None:
                page = self.source.known_page(
                    position, self.page_size, self.projection.topics, upto
                )
            if page is None:
                page = self.source.page(position, self.page_size, self.projection.topics)
            if guessed and not self._fresh(position, page):
                actual = self.position()
                if actual != position:
                    self._continue_after = actual  # moved by someone else: read from there
                    continue
            self._advanced_to = None
            applied = self._apply(position, page)
            if applied is not None:
                if applied >= self.page_size and len(page) >= self.page_size:
                    self._continue_after = self._advanced_to
                return applied
        return 0

    def _fresh(self, position: int, page: Sequence[Notification]) -> bool:
        topics = self.projection.topics
        return any(n.id > position and n.topic in topics for n in page)

    def apply_notifications(self, notifications: Sequence[Notification]) -> int:
        """Apply given notifications (e.g. re-delivered ones); those at or below the
        tracking position are skipped, so re-delivery changes nothing."""
        for _ in range(self.MOVED_RETRIES):
            applied = self._apply(self.position(), notifications)
            if applied is not None:
                return applied
        return 0

    def _apply(self, position: int, notifications: Sequence[Notification]) -> int | None:
        topics = set(self.projection.topics)  # a handed page may hold other topics
        fresh = [n for n in notifications if n.id > position and n.topic in topics]
        try:
            return self._write(position, self._decode(fresh))
        except Exception as exc:
            if len(fresh) == 1:
                raise self._not_applied(position, fresh[0], exc) from exc
        return self._one_at_a_time(position, fresh)

    def _one_at_a_time(self, position: int, notifications: Sequence[Notification]) -> int:
        """The page failed: apply its events one per transaction, so the position stops
        right before the one that cannot be applied (raised as :class:`EventNotAppliedError`).
        If each goes through alone, the page's failure was passing."""
        applied = 0
        for notification in notifications:
            try:
                done = self._write(position, self._decode([notification]))
            except Exception as exc:
                raise self._not_applied(position, notification, exc) from exc
            if not done:  # another runner has the projection now
                break
            position, applied = notification.id, applied + 1
        return applied

    def _not_applied(
        self, position: int, notification: Notification, cause: Exception
    ) -> EventNotAppliedError:
        return EventNotAppliedError(self.name, position, notification.id, notification.topic, cause)

    def _decode(self, notifications: Sequence[Notification]) -> list[Projected]:
        """The notifications decoded, each with its day (which may read the event store:
        never inside a read-model transaction)."""
        batch = []
        for notification in notifications:
            event = self.source.decode(notification)
            batch.append(Projected(notification.id, event, self.source.day_of(event)))
        return batch

    def _write(self, position: int, batch: Sequence[Projected]) -> int | None:
        """Write a page read after ``position``: the number applied, 0 if another runner
        holds the projection, None if the position moved meanwhile (read again)."""
        if not batch:
            return 0
        with self.db.transaction() as tx:
            if not self._try_lock(tx):
                return 0
            # the position first: moved with a compare-and-set, which is also the check
            # that it is still the one the page was read after (one statement, not two);
            # the rows follow in the same transaction, so both commit or neither
            if not self._advance(tx, position, batch[-1].notification_id):
                return None  # the transaction ends with nothing written: read again
            self.projection.apply(tx, batch)
        self._advanced_to = self._written = batch[-1].notification_id
        return len(batch)

    def _advance(self, tx: Tx, expected: int, new_position: int) -> bool:
        """Move the position from ``expected`` to ``new_position``; False if it is not at
        ``expected`` (another runner moved it)."""
        params = {
            "name": self.name,
            "position": new_position,
            "expected": expected,
            "now": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if expected == 0:
            # first page: a concurrent first page inserted the row already
            inserted = tx.execute(
                "INSERT INTO seatledger_tracking (projection, notification_id, updated_at)"
                " VALUES (:name, :position, :now)"
                " ON CONFLICT (projection) DO NOTHING RETURNING projection",
                params,
            )
            return bool(inserted)
        moved = tx.execute(
            "UPDATE seatledger_tracking SET notification_id = :position, updated_at = :now"
            " WHERE projection = :name AND notification_id = :expected RETURNING projection",
            params,
        )
        return bool(moved)

    def catch_up(self, *, stop: threading.Event | None = None, max_pages: int | None = None) -> int:
        """Process pages until nothing is left (or stopped); returns notifications applied."""
        self.new_round()
        total = pages = 0
        while stop is None or not stop.is_set():
            if max_pages is not None and pages >= max_pages:
                break
            applied = self.step()
            if applied == 0:
                break
            total += applied
            pages += 1
            if applied < self.page_size:
                break  # a short page: the log had nothing more when it was read
        return total

    def new_round(self) -> None:
        """A catch-up starts: its first page starts after the position this runner last
        wrote, or reads it (pages after a full page of the same catch-up start where that
        page left it)."""
        self._continue_after = None

    def step(self, upto: int | None = None) -> int:
        """One page, reported (``projection.page``); returns how many it applied. Fewer than
        a page: the log had nothing more when it was read (or another runner has it), or
        nothing more up to ``upto`` (see :meth:`process_page`)."""
        started = time.perf_counter()
        applied = self.process_page(upto)
        if applied:
            self.telemetry.emit(
                "projection.page",
                level=logging.DEBUG,
                projection=self.name,
                notifications=applied,
                seconds=round(time.perf_counter() - started, 4),
            )
        return applied

    def rebuild(self) -> int:
        """Delete the rows, the position and a recorded failure, then replay the whole log.
        Refused while another runner holds the projection (stop the workers first)."""
        with self.db.transaction() as tx:
            if not self._try_lock(tx):
                raise TrackingConflictError(f"{self.name}: another runner is active")
            self.projection.reset(tx)
            self.new_round()
            self._written = None
            tx.execute(
                "DELETE FROM seatledger_tracking WHERE projection = :name", {"name": self.name}
            )
        clear_failure(self.db, self.name)
        return self.catch_up()

    def lag(self) -> int:
        """Notifications of the topics this projection handles stored after its position
        (a caught-up projection shows 0, whatever else the log holds)."""
        return self.source.count_after(self.position(), self.projection.topics)

    # --- failures and back-off (the long-running loops) ---

    def due(self) -> bool:
        """False while resting after a failure."""
        return self.monotonic() >= self._retry_at

    def retry_in(self) -> float:
        return max(0.0, self._retry_at - self.monotonic())

    def supervised_catch_up(self, stop: threading.Event | None = None) -> bool:
        """Catch up unless resting after a failure; a failure is logged and recorded once,
        then rests for a back-off. True if the projection is caught up."""
        (caught_up,) = supervised_catch_up([self], stop)
        return caught_up

    def failed(self, exc: Exception) -> None:
        """Log (and, for an event that cannot be applied, record) one failure; rest."""
        self._failures += 1
        pause = failure_backoff(self._failures)
        self._retry_at = self.monotonic() + pause
        where: dict[str, Any] = {}
        if isinstance(exc, EventNotAppliedError):
            where = {
                "position": exc.position,
                "notification_id": exc.notification_id,
                "topic": exc.topic,
            }
            try:
                record_failure(self.db, ProjectionFailure.of(exc, self._failures))
            except Exception as unrecorded:  # the read models are failing too: the log says it
                where["unrecorded"] = reason(unrecorded)
        self.telemetry.emit(
            "projection.failed",
            level=logging.ERROR,
            projection=self.name,
            error=reason(exc.cause if isinstance(exc, EventNotAppliedError) else exc),
            failures=self._failures,
            retry_in_seconds=pause,
            **where,
        )

    def settled(self) -> None:
        """Caught up: a failure in a row before this one is over."""
        if self._failures:
            self._recovered()

    def _recovered(self) -> None:
        self.telemetry.emit(
            "projection.recovered", projection=self.name, after_failures=self._failures
        )
        self._failures, self._retry_at = 0, 0.0
        # status ignores a failure the position has passed: if this delete fails, no harm
        with contextlib.suppress(Exception):
            clear_failure(self.db, self.name)


def supervised_catch_up(
    runners: Sequence[PageRunner], stop: threading.Event | None = None, *, upto: int | None = None
) -> list[bool]:
    """Catch several projections up *in turns*, a page each, each under its own supervision
    (:meth:`PageRunner.supervised_catch_up`: one resting after a failure is skipped, one that
    fails is logged, recorded and rests; the others go on). Per runner: True if caught up.

    Why in turns: projections over one :class:`EventSource` read mostly the same events (the
    members and the outbox both read every change event), and the source remembers its last
    decoded events, so side by side each event is decoded once, not once per projection. A
    runner leaves the round after a short page (the log had nothing more) or when stopped.
    ``upto``: the catch-up right after a save, up to its last notification id (see
    :meth:`PageRunner.process_page`)."""
    caught_up = [False] * len(runners)
    active = [index for index, runner in enumerate(runners) if runner.due()]
    for index in active:
        runners[index].new_round()
    while active:
        still: list[int] = []
        for index in active:
            runner = runners[index]
            if stop is not None and stop.is_set():
                applied = 0
            else:
                try:
                    applied = runner.step(upto)
                except Exception as exc:
                    runner.failed(exc)
                    continue
            if applied >= runner.page_size:  # a full page: more may follow
                still.append(index)
                continue
            runner.settled()
            caught_up[index] = True
        active = still
    return caught_up


def catch_up_together(runners: Sequence[PageRunner], *, stop: threading.Event | None = None) -> int:
    """:meth:`PageRunner.catch_up` of several projections in turns, a page each (see
    :func:`supervised_catch_up` for why); a failure is raised, as ``catch_up`` raises it.
    Returns the notifications applied."""
    total = 0
    active = list(runners)
    for runner in active:
        runner.new_round()
    while active and (stop is None or not stop.is_set()):
        still = []
        for runner in active:
            applied = runner.step()
            total += applied
            if applied >= runner.page_size:  # a full page: more may follow
                still.append(runner)
        active = still
    return total

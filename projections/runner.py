"""Running projections: pages of notifications, one transaction per page, exactly once.

A page is (1) read and decoded from the event store after the tracking position, outside any
read-model transaction, then written in one read-model transaction that (2) takes the
projection's advisory lock (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already admits one
writer), (3) checks the tracking position is still the one the page was read after, (4) writes
the rows and (5) moves the position to the page's last id with a compare-and-set. A crash
anywhere rolls the transaction back; a second runner either waits for the lock or finds the
position moved and reads again; a re-delivered notification is at or below the position and
is skipped.

Why the event store is read first: on SQLite the events and the read models share one file,
and its write lock is the read-model transaction's. A runner that read events while holding it
waited for the library's connection pool, whose writers wait for that very lock: the
in-process catch-up and the commands took the two locks in opposite orders. Now a runner holds
nothing of the event store while it writes.

Wake-ups: PostgreSQL ``LISTEN`` on the event table's channel (the library ``NOTIFY``s on
every insert) with a polling safety net and reconnects; SQLite and memory poll. In-process
mode runs a background thread and also catches up synchronously after each command.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg
from eventsourcing.persistence import Notification

from seatledger.projections.db import PostgresReadModels, ReadModelDB, Tx
from seatledger.projections.projection import Projected, Projection
from seatledger.projections.source import EventSource

#: ``lag()`` counts a projection's pending notifications this many at a time, up to the limit.
LAG_PAGE = 5_000
LAG_COUNT_LIMIT = 1_000_000


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

    @property
    def name(self) -> str:
        return self.projection.name

    def position(self) -> int:
        with self.db.read() as tx:
            return self._position(tx)

    def _position(self, tx: Tx) -> int:
        rows = tx.execute(
            "SELECT notification_id FROM seatledger_tracking WHERE projection = :name",
            {"name": self.name},
        )
        return int(rows[0][0]) if rows else 0

    def _try_lock(self, tx: Tx) -> bool:
        if tx.dialect != "postgres":
            return True
        (row,) = tx.execute("SELECT pg_try_advisory_xact_lock(:key)", {"key": self.lock_key})
        return bool(row[0])

    #: How often a page is read again when another runner moved the position meanwhile.
    MOVED_RETRIES = 3

    def process_page(self) -> int:
        """Process the next page; returns how many notifications it applied (0: none, or
        another runner holds the projection right now)."""
        for _ in range(self.MOVED_RETRIES):
            position = self.position()
            notifications = self.source.page(position, self.page_size, self.projection.topics)
            applied = self._write(position, self._decode(position, notifications))
            if applied is not None:
                return applied
        return 0

    def apply_notifications(self, notifications: Sequence[Notification]) -> int:
        """Apply given notifications (e.g. re-delivered ones); those at or below the
        tracking position are skipped, so re-delivery changes nothing."""
        for _ in range(self.MOVED_RETRIES):
            position = self.position()
            applied = self._write(position, self._decode(position, notifications))
            if applied is not None:
                return applied
        return 0

    def _decode(self, position: int, notifications: Sequence[Notification]) -> list[Projected]:
        """The notifications after ``position`` that this projection handles, decoded, each
        with its day (which may read the event store: never inside a read-model transaction).
        Other topics (directories, the command ledger) are passed over."""
        topics = set(self.projection.topics)
        batch = []
        for notification in notifications:
            if notification.id > position and notification.topic in topics:
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
            if self._position(tx) != position:
                return None
            self.projection.apply(tx, batch)
            self._advance(tx, position, batch[-1].notification_id)
        return len(batch)

    def _advance(self, tx: Tx, expected: int, new_position: int) -> None:
        params = {
            "name": self.name,
            "position": new_position,
            "expected": expected,
            "now": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if expected == 0:
            # first page: a concurrent first page violates the primary key and rolls back
            tx.execute(
                "INSERT INTO seatledger_tracking (projection, notification_id, updated_at)"
                " VALUES (:name, :position, :now)",
                params,
            )
            return
        moved = tx.execute(
            "UPDATE seatledger_tracking SET notification_id = :position, updated_at = :now"
            " WHERE projection = :name AND notification_id = :expected RETURNING projection",
            params,
        )
        if not moved:
            raise TrackingConflictError(f"{self.name}: tracking moved past {expected}")

    def catch_up(self, *, stop: threading.Event | None = None, max_pages: int | None = None) -> int:
        """Process pages until nothing is left (or stopped); returns notifications applied."""
        total = pages = 0
        while stop is None or not stop.is_set():
            if max_pages is not None and pages >= max_pages:
                break
            started = time.perf_counter()
            applied = self.process_page()
            if applied == 0:
                break
            total += applied
            pages += 1
            self.telemetry.emit(
                "projection.page",
                level=logging.DEBUG,
                projection=self.name,
                notifications=applied,
                seconds=round(time.perf_counter() - started, 4),
            )
            if applied < self.page_size:
                break  # a short page: the log had nothing more when it was read
        return total

    def rebuild(self) -> int:
        """Delete the rows and the position, then replay the whole log. Refused while
        another runner holds the projection (stop the workers first)."""
        with self.db.transaction() as tx:
            if not self._try_lock(tx):
                raise TrackingConflictError(f"{self.name}: another runner is active")
            self.projection.reset(tx)
            tx.execute(
                "DELETE FROM seatledger_tracking WHERE projection = :name", {"name": self.name}
            )
        return self.catch_up()

    def lag(self) -> int:
        """Notifications this projection handles that are stored after its position (other
        topics never move it, so a caught-up runner shows 0). Counted in pages, up to
        ``LAG_COUNT_LIMIT``: a larger lag reads as that limit."""
        position, counted = self.position(), 0
        while counted < LAG_COUNT_LIMIT:
            page = self.source.page(position, LAG_PAGE, self.projection.topics)
            counted += len(page)
            if len(page) < LAG_PAGE:
                break
            position = page[-1].id
        return min(counted, LAG_COUNT_LIMIT)


# --- wake-ups -------------------------------------------------------------------------------


class Wakeups(Protocol):
    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Return when new events may exist, after ``timeout`` at the latest."""


class PollingWakeups:
    """SQLite and memory: no notifications, poll."""

    def wait(self, timeout: float, stop: threading.Event) -> None:
        stop.wait(timeout)


class ListenWakeups:
    """PostgreSQL ``LISTEN`` on the event table's channel, reconnecting when the connection
    is lost (killed backend, network); the timeout doubles as the polling safety net."""

    #: How often a wait checks whether the worker is stopping.
    STOP_CHECK = 0.5

    def __init__(self, conninfo: str, channel: str, telemetry: Reporter) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self.telemetry = telemetry
        self.conn: psycopg.Connection[Any] | None = None
        self._failures = 0

    @property
    def backend_pid(self) -> int | None:
        return self.conn.info.backend_pid if self.conn is not None else None

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.conninfo, autocommit=True)
        conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(self.channel)))
        if self._failures:
            self.telemetry.emit(
                "projection.listen_restored",
                level=logging.WARNING,
                channel=self.channel,
                after_failures=self._failures,
            )
        self._failures = 0
        return conn

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Right after (re)connecting, return at once: an event committed between the
        caller's last catch-up and the ``LISTEN`` sent its ``NOTIFY`` to nobody, so the caller
        must catch up once more. While waiting, check ``stop`` every ``STOP_CHECK`` seconds
        (a stopping worker must not sleep out a long poll interval)."""
        try:
            if self.conn is None or self.conn.closed:
                self.conn = self._connect()
                return
            deadline = time.monotonic() + timeout
            while not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                for _ in self.conn.notifies(timeout=min(remaining, self.STOP_CHECK), stop_after=1):
                    return
        except psycopg.Error as exc:
            self._failures += 1
            self.telemetry.emit(
                "projection.listen_lost",
                level=logging.WARNING,
                channel=self.channel,
                error=str(exc),
                failures=self._failures,
            )
            self.close()
            stop.wait(min(5.0, 0.1 * 2 ** min(self._failures, 6)))

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


def serve(
    runners: Sequence[PageRunner],
    *,
    stop: threading.Event,
    wakeups: Wakeups,
    telemetry: Reporter,
    poll_interval: float = 1.0,
    on_idle: Callable[[], None] | None = None,
) -> None:
    """The worker loop: catch every projection up, then wait for a wake-up; a failing page
    is logged and retried after a back-off (it never skips events)."""
    failures = 0
    while not stop.is_set():
        try:
            for runner in runners:
                runner.catch_up(stop=stop)
            failures = 0
        except Exception as exc:
            failures += 1
            telemetry.emit(
                "projection.failed",
                level=logging.ERROR,
                error=f"{type(exc).__name__}: {exc}",
                failures=failures,
            )
            stop.wait(failure_backoff(failures))
            continue
        if on_idle is not None:
            on_idle()
        wakeups.wait(poll_interval, stop)


class BackgroundProjections:
    """In-process mode: a daemon thread keeps the projections current, and
    :meth:`catch_up` lets a command bring them up to date right after it saved."""

    def __init__(
        self,
        runners: Sequence[PageRunner],
        telemetry: Reporter,
        *,
        poll_interval: float = 0.5,
    ) -> None:
        self.runners = list(runners)
        self.telemetry = telemetry
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._busy = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="seatledger-projections", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def nudge(self) -> None:
        self._wake.set()

    def catch_up(self, topics: Collection[str] | None = None, timeout: float = 0.25) -> bool:
        """Catch up now in the caller's thread (only the projections that care about
        ``topics``, when given); False if the projections were busy for longer than
        ``timeout`` or failed (the caller then reads what is visible)."""
        runners = [
            runner
            for runner in self.runners
            if topics is None or not set(runner.projection.topics).isdisjoint(topics)
        ]
        if not runners:
            return True
        if not self._busy.acquire(timeout=timeout):
            self.nudge()
            return False
        try:
            for runner in runners:
                runner.catch_up()
            return True
        except Exception as exc:
            self.telemetry.emit(
                "projection.failed", level=logging.ERROR, error=f"{type(exc).__name__}: {exc}"
            )
            self.nudge()
            return False
        finally:
            self._busy.release()

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            with self._busy:
                try:
                    for runner in self.runners:
                        runner.catch_up(stop=self._stop)
                    failures = 0
                except Exception as exc:
                    failures += 1
                    self.telemetry.emit(
                        "projection.failed",
                        level=logging.ERROR,
                        error=f"{type(exc).__name__}: {exc}",
                        failures=failures,
                    )
            if failures:
                self._stop.wait(failure_backoff(failures))

"""The long-running loops over the page runners: the worker's (:func:`serve`) and the
in-process background thread (:class:`BackgroundProjections`), and how they wake up.

Wake-ups: PostgreSQL ``LISTEN`` on the event table's channel (the library ``NOTIFY``s on
every insert) with a polling safety net and reconnects; SQLite and memory poll. In-process
mode runs a background thread and also catches up synchronously after each command.

Both loops go through :meth:`PageRunner.supervised_catch_up
<seatledger.projections.runner.PageRunner.supervised_catch_up>`: a projection that fails rests
for a back-off (logged once), and the others carry on meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

import psycopg

from seatledger.projections.runner import PageRunner, Reporter, supervised_catch_up


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
    on_failure: Callable[[], None] | None = None,
) -> None:
    """The worker loop: catch every projection up, then wait for a wake-up. A failing
    projection is logged and rests for a back-off (it never skips an event); the wait ends
    by then at the latest. ``on_idle``: everything caught up; ``on_failure``: a round in
    which some projection failed or rests."""
    while not stop.is_set():
        caught_up = supervised_catch_up(runners, stop)
        if stop.is_set():
            break
        if all(caught_up):
            if on_idle is not None:
                on_idle()
            wait = poll_interval
        else:
            if on_failure is not None:
                on_failure()
            wait = min([poll_interval, *(r.retry_in() for r in runners if not r.due())])
        wakeups.wait(wait, stop)


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

    def catch_up(
        self,
        topics: Collection[str] | None = None,
        timeout: float = 0.25,
        *,
        upto: int | None = None,
    ) -> bool:
        """Catch up now in the caller's thread (only the projections that care about
        ``topics``, when given; up to the notification id ``upto``, when given: a save's
        last, whose events the source remembers); False if the projections were busy for longer than
        ``timeout``, or one failed or rests after a failure (the caller then reads what is
        visible; a resting projection is left to the background thread, not retried by
        every command)."""
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
            caught_up = all(supervised_catch_up(runners, upto=upto))
        finally:
            self._busy.release()
        if not caught_up:
            self.nudge()
        return caught_up

    def _loop(self) -> None:
        while not self._stop.is_set():
            resting = [r.retry_in() for r in self.runners if not r.due()]
            self._wake.wait(min([self.poll_interval, *resting]))
            self._wake.clear()
            if self._stop.is_set():
                break
            with self._busy:
                supervised_catch_up(self.runners, self._stop)

"""PostgreSQL connection pools that fail fast while the server is away and recover as soon as
it is back: the event store's pool and the read models' pool are both a :class:`StorePool`.

What psycopg_pool and the library do on their own, and what this changes:

* a client that gets no connection within the pool's timeout (the connect timeout) sees
  ``PoolTimeout``, which the library wraps as ``OperationalError`` and retries ten times
  (``@retry`` in ``eventsourcing.postgres``, 0.2 s apart): a command took ten connect timeouts
  to fail. Here it is :class:`StoreUnreachableError`, which the library does not retry;
* a connection the server dropped stays in the pool until a statement fails on it. Here a
  connection whose socket has something to read while idle (the server's goodbye, or EOF) is
  pinged, and dropped if the ping fails, before anyone gets it;
* after failed attempts to connect the pool waits 1, 2, 4 ... s (up to five minutes) before
  the next; a server back after a minute's outage waited half a minute for the pool's next
  try. Here the pause is at most :attr:`StorePool.RECONNECT_DELAY_CAP`.
"""

from __future__ import annotations

import select
import time
from typing import Any, TypeVar

import psycopg
from eventsourcing.persistence import PersistenceError
from eventsourcing.postgres import ConnectionPool
from psycopg_pool import PoolTimeout
from psycopg_pool.pool import AddConnection, MaintenanceTask

CT = TypeVar("CT", bound=psycopg.Connection[Any])


class StoreUnreachableError(PersistenceError):
    """No connection within the connect timeout: the server is down or unreachable, or
    every connection of the pool stayed busy that long. Not retried by the library."""


def is_stale(conn: psycopg.Connection[Any]) -> bool:
    """True if an idle connection is known or found to be dead. An idle connection has
    nothing to read; if it has, the server said goodbye (or sent a notice): ping it."""
    if conn.closed or conn.broken:
        return True
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    if not readable:
        return False
    try:
        ConnectionPool.check_connection(conn)
    except psycopg.Error:
        return True
    return False


class StorePool(ConnectionPool[CT]):
    """A psycopg pool (the library's subclass, for its password callback) that fails fast,
    drops dead connections before handing them out, and retries connecting often."""

    #: The longest pause, in seconds, between two attempts to open a connection.
    RECONNECT_DELAY_CAP = 0.5

    #: Clients that waited the whole timeout and got no connection (a health figure).
    timeouts = 0

    def getconn(self, timeout: float | None = None) -> CT:
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            try:
                conn = super().getconn(max(0.0, deadline - time.monotonic()))
            except PoolTimeout as exc:
                self.timeouts += 1
                raise StoreUnreachableError(
                    f"no connection from pool {self.name!r} within {wait:g} s: the server is "
                    "unreachable, or every connection stayed busy"
                ) from exc
            if not is_stale(conn):
                return conn
            conn.close()
            self.putconn(conn)  # a closed connection is discarded, and replaced

    def open_and_wait(self) -> None:
        """Open the pool and wait (the pool's timeout at most) for its first connections.
        A client that finds none ready makes the pool grow by one, which then stays until it
        idles out: opening ready keeps an idle process at its minimum."""
        self.open()
        try:
            self.wait(self.timeout)
        except PoolTimeout as exc:  # the pool closed itself
            self.timeouts += 1
            raise StoreUnreachableError(
                f"pool {self.name!r} could not connect within {self.timeout:g} s"
            ) from exc

    def schedule_task(self, task: MaintenanceTask, delay: float) -> None:
        if isinstance(task, AddConnection):
            delay = min(delay, self.RECONNECT_DELAY_CAP)
        super().schedule_task(task, delay)

"""The embedded store (SQLite) under concurrency: one writer at a time, and patient waits.

SQLite admits one writer per file. Commands decide on the state they loaded and save with an
optimistic version check, so several writers that wait for the file's lock in turn mostly find
their state stale and decide again; SQLite's busy handler sleeps up to 100 ms between tries, so
across processes some lose every race and run out of retries. :class:`WriterGate` lets one
command at a time (threads of a process, and processes of a file) load, decide and save: it
waits in the kernel's queue (``flock``), and nothing it waits for ever waits for it.

:class:`SQLiteStoreFactory` is the library's SQLite factory with its connection pool waiting as
long as SQLite waits for its lock (the library's five seconds turned a busy minute into
``STORAGE_UNAVAILABLE``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType
from typing import ClassVar

from eventsourcing.sqlite import SQLiteFactory
from eventsourcing.utils import Environment, EnvType

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the gate serialises this process only
    fcntl = None  # type: ignore[assignment]

#: What SQLite and the library's pool wait for a lock or a connection, in seconds.
SQLITE_LOCK_TIMEOUT = 30


def gate_path(database: Path) -> Path:
    """The gate's lock file, beside the database as SQLite's own ``-wal`` and ``-shm``."""
    return database.with_name(database.name + "-lock")


class WriterGate:
    """Held around each command's unit of work (load, decide, save) on one SQLite file.

    One gate per file per process (:meth:`for_database`), shared by every service on that
    file: re-entrant within a thread, so a service that writes through another service on
    the same file from inside its own command waits for nobody. The lock file is opened once
    and kept open while any service uses the gate (closing a descriptor drops its ``flock``).
    """

    _gates: ClassVar[dict[Path, WriterGate]] = {}
    _registry: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        self._users = 0
        self._fd: int | None = None

    @classmethod
    def for_database(cls, database: Path) -> WriterGate:
        """The process's gate of ``database`` (call :meth:`close` once done with it)."""
        path = gate_path(database.expanduser().resolve())
        with cls._registry:
            gate = cls._gates.get(path)
            if gate is None:
                gate = cls._gates[path] = WriterGate(path)
            gate._users += 1
            return gate

    def __enter__(self) -> WriterGate:
        self._lock.acquire()
        try:
            if self._depth == 0 and fcntl is not None:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._lock.release()
            raise
        self._depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None and fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def close(self) -> None:
        """One user fewer; the last one closes the lock file."""
        with self._registry:
            self._users -= 1
            if self._users > 0:
                return
            self._gates.pop(self.path, None)
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class SQLiteStoreFactory(SQLiteFactory):
    """The library's SQLite factory; its pool waits for a connection as long as SQLite
    waits for the file's lock."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        self.datastore.pool.pool_timeout = float(SQLITE_LOCK_TIMEOUT)

"""The read-model database: one small interface over SQLite and PostgreSQL.

SQL is written once with ``:name`` parameters; the PostgreSQL side rewrites them to psycopg's
``%(name)s``. Instants are bound as canonical UTC strings and read back as the same strings,
so rows compare equal across both databases.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from seatledger.projections.pool import StorePool

Dialect = Literal["sqlite", "postgres"]
Params = Mapping[str, Any]
Row = tuple[Any, ...]

_PLAIN = frozenset({str, int, float, bool, bytes})
#: PostgreSQL types psycopg reads as ``date`` or ``datetime``: the values :func:`normalise`
#: changes (their text is what rows compare by).
_TEMPORAL = frozenset(
    psycopg.postgres.types[name].oid for name in ("date", "timestamp", "timestamptz")
)
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def normalise(value: Any) -> Any:
    """Database values as the canonical Python values rows are compared by."""
    if value is None or type(value) in _PLAIN:  # most values: returned as they are, first
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return value


class Tx(ABC):
    """One open transaction (or read) on the read-model database."""

    dialect: Dialect

    @abstractmethod
    def execute(self, statement: str, params: Params | None = None) -> list[Row]:
        """Run one statement; rows (normalised) if it returns any."""

    @abstractmethod
    def executemany(self, statement: str, rows: Sequence[Params]) -> None:
        """Run one statement for many parameter sets."""

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert plain rows (values in ``columns`` order) into ``table``; names are trusted
        constants. One ``INSERT`` per row here; PostgreSQL uses ``COPY`` (same rows, same
        constraint errors, several times faster for a page of rows)."""
        if rows:
            statement = (
                f"INSERT INTO {table} ({', '.join(columns)})"
                f" VALUES ({', '.join(':' + column for column in columns)})"
            )
            self.executemany(statement, [dict(zip(columns, row, strict=True)) for row in rows])

    def delete_keys(
        self, table: str, columns: Sequence[str], keys: Sequence[Sequence[str]]
    ) -> None:
        """Delete the rows whose text ``columns`` equal one of ``keys``; names are trusted
        constants. One ``DELETE`` per key here; PostgreSQL sends one statement for all."""
        if keys:
            statement = f"DELETE FROM {table} WHERE " + " AND ".join(
                f"{column} = :{column}" for column in columns
            )
            self.executemany(statement, [dict(zip(columns, key, strict=True)) for key in keys])


class ReadModelDB(ABC):
    dialect: Dialect

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction: committed on success, rolled back on any exception."""

    @abstractmethod
    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A read-only snapshot."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> ReadModelDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- SQLite ---------------------------------------------------------------------------------


class _SQLiteTx(Tx):
    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, statement: str, params: Params | None = None) -> list[Row]:
        cursor = self.conn.execute(statement, dict(params or {}))
        # without detect_types SQLite returns only plain values: nothing to normalise
        rows: list[Row] = cursor.fetchall()
        return rows

    def executemany(self, statement: str, rows: Sequence[Params]) -> None:
        if rows:
            self.conn.executemany(statement, [dict(r) for r in rows])

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if rows:  # positional: the rows as they are, no mapping per row
            self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)})"
                f" VALUES ({', '.join('?' for _ in columns)})",
                rows,
            )

    def delete_keys(
        self, table: str, columns: Sequence[str], keys: Sequence[Sequence[str]]
    ) -> None:
        if keys:
            condition = " AND ".join(f"{column} = ?" for column in columns)
            self.conn.executemany(f"DELETE FROM {table} WHERE {condition}", keys)


class SQLiteReadModels(ReadModelDB):
    """Read models in an SQLite file (beside the events) or in memory.

    File databases get one connection per thread (WAL lets readers run beside the writer);
    an in-memory database has a single connection shared under a lock.
    """

    dialect: Dialect = "sqlite"

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = str(path)
        self.timeout = timeout
        self.memory = self.path == ":memory:"
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.RLock()
        self._shared: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        if not self.memory:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._all.append(conn)
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self.memory:
            with self._lock:
                if self._shared is None:
                    self._shared = self._connect()
                yield self._shared
            return
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        yield conn

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTx(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                yield _SQLiteTx(conn)
            finally:
                conn.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
            self._shared = None
        self._local = threading.local()


# --- PostgreSQL -----------------------------------------------------------------------------


def to_psycopg(statement: str) -> str:
    return _NAMED.sub(r"%(\1)s", statement.replace("%", "%%"))


class _PostgresTx(Tx):
    dialect: Dialect = "postgres"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, statement: str, params: Params | None = None) -> list[Row]:
        with self.conn.cursor() as cursor:
            cursor.execute(to_psycopg(statement), dict(params or {}))
            if cursor.description is None:
                return []
            rows: list[Row] = cursor.fetchall()
            if all(column.type_code not in _TEMPORAL for column in cursor.description):
                return rows  # every other type comes back plain: nothing to normalise
            return [tuple(normalise(v) for v in row) for row in rows]

    def executemany(self, statement: str, rows: Sequence[Params]) -> None:
        if rows:
            with self.conn.cursor() as cursor:
                cursor.executemany(to_psycopg(statement), [dict(r) for r in rows])

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if not rows:
            return
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        )
        with self.conn.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def delete_keys(
        self, table: str, columns: Sequence[str], keys: Sequence[Sequence[str]]
    ) -> None:
        if not keys:
            return
        statement = sql.SQL("DELETE FROM {} WHERE ({}) IN (SELECT * FROM unnest({}))").format(
            sql.Identifier(table),
            sql.SQL(", ").join(sql.Identifier(c) for c in columns),
            sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in columns),
        )
        with self.conn.cursor() as cursor:
            cursor.execute(statement, [list(values) for values in zip(*keys, strict=True)])


class PostgresReadModels(ReadModelDB):
    """Read models in the event store's PostgreSQL schema, through a psycopg pool."""

    dialect: Dialect = "postgres"

    def __init__(
        self,
        conninfo: str,
        schema: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 5.0,
    ) -> None:
        self.conninfo = conninfo
        self.schema = schema
        #: fails fast, drops dead connections, reconnects often (see the pool's module)
        self.pool: StorePool[psycopg.Connection[Any]] = StorePool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            # after the conninfo's own options (a URL's ``options=-c ...``), not instead of them
            kwargs={"options": _with_search_path(conninfo, schema)},
            open=True,
            timeout=timeout,
            name=f"seatledger-read-models-{schema}",
        )
        # ready before first use: a first client that finds no connection makes the pool
        # open one more, and it would stay open, beyond the budget, until it idles out
        self.pool.open_and_wait()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self.pool.connection() as conn, conn.transaction():
            yield _PostgresTx(conn)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self.pool.connection() as conn, conn.transaction():
            yield _PostgresTx(conn)

    def close(self) -> None:
        self.pool.close()


def _with_search_path(conninfo: str, schema: str) -> str:
    options = psycopg.conninfo.conninfo_to_dict(conninfo).get("options")
    return f"{options} -c search_path={schema}" if options else f"-c search_path={schema}"

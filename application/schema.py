"""Schema management: what ``seatledger migrate`` creates, and what a process may assume.

The store's schema is three things: the PostgreSQL schema (or the SQLite file's folder), the
``eventsourcing`` library's event table, and the read models' versioned migrations. The library
would create its table on every construction (``CREATE TABLE IF NOT EXISTS``, ``CREATE OR
REPLACE FUNCTION``), and concurrent constructions race ("tuple concurrently updated"), so the
settings turn that off (``CREATE_TABLE=n``) and this module does it instead:

* :meth:`StoreSchema.inspect` reads what exists and writes nothing (``migrate --status``,
  ``status``, a start with ``MIGRATE_ON_START=false``);
* :meth:`StoreSchema.migrating` and :meth:`Migrator.apply` create what is missing under one
  advisory lock per schema: concurrent migrators wait, then find the work done.

A process starting with ``MIGRATE_ON_START=true`` runs the same locked migration, but only when
the read-only look finds something missing: a migrated store starts without DDL or locks.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory, Recorder
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresRecorder,
)
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteRecorder
from eventsourcing.utils import Environment
from psycopg import sql

from seatledger.application.errors import InfrastructureCode, InfrastructureError
from seatledger.application.read_models import open_read_models
from seatledger.application.settings import Settings
from seatledger.projections.db import ReadModelDB
from seatledger.projections.migrations import LATEST, LEDGER_TABLE, MIGRATIONS, Migration, migrate

#: The event store's name: the library names its tables and its environment prefix after it.
EVENT_STORE_NAME = "SeatLedger"
#: The library's event table and row type, per database (``<name>_events`` on PostgreSQL).
POSTGRES_EVENTS_TABLE = f"{EVENT_STORE_NAME.lower()}_events"
POSTGRES_EVENT_TYPE = "stored_event_uuid"
SQLITE_EVENTS_TABLE = "stored_events"
#: The library's snapshot table (seatledger.application.snapshots), beside the events table.
POSTGRES_SNAPSHOTS_TABLE = f"{EVENT_STORE_NAME.lower()}_snapshots"
SQLITE_SNAPSHOTS_TABLE = "stored_snapshots"

HINT = (
    "run `seatledger migrate` with the same settings (or start this process with "
    "SEATLEDGER_MIGRATE_ON_START=true)"
)


def migrator_lock_key(schema: str) -> int:
    """The migrators' advisory-lock key for one schema (advisory locks are database-wide:
    migrators of other schemas must not wait for each other)."""
    digest = hashlib.sha256(f"seatledger.migrate.{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class SchemaState:
    """What exists of the store's schema (read without writing anything)."""

    #: The SQLite file, or the PostgreSQL schema.
    store: bool
    event_store: bool
    #: Read-model migrations recorded in the ledger.
    applied: tuple[int, ...] = ()

    @property
    def pending(self) -> list[Migration]:
        return [m for m in MIGRATIONS if m.version not in self.applied]

    @property
    def ready(self) -> bool:
        return self.store and self.event_store and not self.pending

    def missing(self) -> list[str]:
        """What ``seatledger migrate`` would create, in words."""
        if not self.store:
            return ["the store itself (the SQLite file or the PostgreSQL schema)"]
        missing = [] if self.event_store else ["the event table"]
        if self.pending:
            versions = ", ".join(str(m.version) for m in self.pending)
            missing.append(f"read-model migrations {versions}")
        return missing


@dataclass
class MigrationReport:
    """What one migration created (empty when the store was up to date)."""

    created_store: bool = False
    created_event_store: bool = False
    applied: list[Migration] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.created_store or self.created_event_store or bool(self.applied)


class StoreSchema:
    """The schema of the store these settings name."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # --- reading (never writes) ---

    def inspect(self) -> SchemaState:
        if self.settings.persistence == "postgres":
            with closing(self._connect()) as conn:
                return self._inspect_postgres(conn)
        if self.settings.persistence == "sqlite":
            return self._inspect_sqlite()
        return SchemaState(store=True, event_store=True, applied=())

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.settings.postgres_conninfo(), autocommit=True)

    def _inspect_postgres(self, conn: psycopg.Connection[Any]) -> SchemaState:
        schema = self.settings.postgres_schema
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %(schema)s::text),"
            " to_regclass(format('%%I.%%I', %(schema)s::text, %(events)s::text)) IS NOT NULL"
            " AND to_regtype(format('%%I.%%I', %(schema)s::text, %(type)s::text)) IS NOT NULL"
            " AND to_regclass(format('%%I.%%I', %(schema)s::text, %(snapshots)s::text))"
            " IS NOT NULL,"
            " to_regclass(format('%%I.%%I', %(schema)s::text, %(ledger)s::text)) IS NOT NULL",
            {
                "schema": schema,
                "events": POSTGRES_EVENTS_TABLE,
                "type": POSTGRES_EVENT_TYPE,
                "snapshots": POSTGRES_SNAPSHOTS_TABLE,
                "ledger": LEDGER_TABLE,
            },
        ).fetchone()
        assert row is not None
        store, event_store, ledger = (bool(value) for value in row)
        applied: tuple[int, ...] = ()
        if ledger:
            rows = conn.execute(
                sql.SQL("SELECT version FROM {}.{} ORDER BY version").format(
                    sql.Identifier(schema), sql.Identifier(LEDGER_TABLE)
                )
            ).fetchall()
            applied = tuple(int(version) for (version,) in rows)
        return SchemaState(store, event_store, applied)

    def _inspect_sqlite(self) -> SchemaState:
        path = self.settings.sqlite_path.expanduser()
        if not path.is_file():
            return SchemaState(store=False, event_store=False)
        with closing(sqlite3.connect(path)) as conn:
            tables = {
                name
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            applied: tuple[int, ...] = ()
            if LEDGER_TABLE in tables:
                rows = conn.execute(f"SELECT version FROM {LEDGER_TABLE} ORDER BY version")
                applied = tuple(int(version) for (version,) in rows)
        event_store = {SQLITE_EVENTS_TABLE, SQLITE_SNAPSHOTS_TABLE} <= tables
        return SchemaState(True, event_store, applied)

    def require_ready(self) -> SchemaState:
        """The state, if the store is ready to use; else the typed error naming the fix."""
        state = self.inspect()
        if not state.ready:
            raise not_migrated(self.settings, state)
        return state

    # --- migrating ---

    @contextmanager
    def migrating(self) -> Iterator[Migrator]:
        """Hold the migrators' lock (PostgreSQL: a session advisory lock per schema) while the
        caller opens the store and calls :meth:`Migrator.apply`. SQLite: the file's folder is
        created first (the library opens the file, which must have somewhere to be)."""
        if self.settings.persistence == "postgres":
            with closing(self._connect()) as conn:
                conn.execute(
                    "SELECT pg_advisory_lock(%s)",
                    (migrator_lock_key(self.settings.postgres_schema),),
                )
                yield Migrator(self, conn)  # closing the session releases the lock
            return
        if self.settings.persistence == "sqlite":
            self.settings.sqlite_path.expanduser().resolve().parent.mkdir(
                parents=True, exist_ok=True
            )
        yield Migrator(self, None)


class Migrator:
    """Creates what is missing, once, under the lock :meth:`StoreSchema.migrating` holds."""

    def __init__(self, schema: StoreSchema, conn: psycopg.Connection[Any] | None) -> None:
        self.schema = schema
        self.conn = conn

    def apply(self, recorder: Recorder, read_models: ReadModelDB) -> MigrationReport:
        """Create the schema, the event table and the read models where missing. Looks again
        under the lock: another migrator may have done it all while this one waited."""
        report = MigrationReport()
        if self.conn is not None:
            state = self.schema._inspect_postgres(self.conn)
            if not state.store:
                self.conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                        sql.Identifier(self.schema.settings.postgres_schema)
                    )
                )
                report.created_store = True
        else:
            state = self.schema.inspect()
            report.created_store = not state.store and self.schema.settings.persistence == "sqlite"
        if not state.event_store and isinstance(recorder, PostgresRecorder | SQLiteRecorder):
            recorder.create_table()
            snapshot_recorder(recorder).create_table()
            report.created_event_store = True
        elif isinstance(recorder, PostgresApplicationRecorder):
            # the type appeared after this recorder was built: let it learn the type now
            recorder.datastore.register_type_adapters()
        report.applied = migrate(read_models)
        return report


def snapshot_recorder(
    recorder: PostgresRecorder | SQLiteRecorder,
) -> PostgresAggregateRecorder | SQLiteAggregateRecorder:
    """The recorder of the snapshot table beside ``recorder``'s events table, as the
    library's factory names it (``aggregate_recorder(purpose="snapshots")``)."""
    if isinstance(recorder, PostgresRecorder):
        return PostgresAggregateRecorder(
            recorder.datastore, events_table_name=POSTGRES_SNAPSHOTS_TABLE
        )
    return SQLiteAggregateRecorder(recorder.datastore, events_table_name=SQLITE_SNAPSHOTS_TABLE)


def not_migrated(settings: Settings, state: SchemaState) -> InfrastructureError:
    """A store that is missing tables: a typed error that names ``seatledger migrate``."""
    store = settings.describe_store()
    missing = state.missing()
    return InfrastructureError(
        InfrastructureCode.STORAGE_UNAVAILABLE,
        f"the store ({store}) is not migrated (missing: {'; '.join(missing)}): "
        "run `seatledger migrate`",
        details={
            "operation": "open",
            "reason": "not_migrated",
            "persistence": settings.persistence,
            "store": store,
            "missing": missing,
            "latest_version": LATEST,
        },
        hint=HINT,
    )


def event_store_factory(settings: Settings) -> InfrastructureFactory[Any]:
    """The library's factory for these settings, as the service builds it (no DDL)."""
    return InfrastructureFactory.construct(
        Environment(EVENT_STORE_NAME, settings.eventsourcing_env())
    )


def migrate_store(settings: Settings) -> MigrationReport:
    """``seatledger migrate``: create whatever is missing, serialised with every other
    migrator; on an up-to-date store this writes nothing."""
    schema = StoreSchema(settings)
    with schema.migrating() as migrator:
        factory = event_store_factory(settings)
        try:
            recorder: ApplicationRecorder = factory.application_recorder()
            with open_read_models(settings) as read_models:
                return migrator.apply(recorder, read_models)
        finally:
            factory.close()


def prepare_store(settings: Settings) -> None:
    """At the start of a process that opens the store without a service (the relay): the
    same locked migration as a service's start with ``MIGRATE_ON_START``, or the check."""
    state = StoreSchema(settings).inspect()
    if state.ready:
        return
    if not settings.migrate_on_start:
        raise not_migrated(settings, state)
    migrate_store(settings)

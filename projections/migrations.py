"""Versioned migrations of the read-model tables (``seatledger migrate``).

Each migration is applied once, in its own transaction, and recorded in
``seatledger_schema_migrations``. On PostgreSQL an advisory lock serialises concurrent
migrators. Never edit a released migration: add the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from seatledger.projections.db import ReadModelDB, Tx

#: Advisory-lock key of the migrator (any constant distinct from the projection keys).
MIGRATION_LOCK = 7_301_001
#: The ledger of applied migrations.
LEDGER_TABLE = "seatledger_schema_migrations"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


_MEMBERS_COLUMNS = """
    restaurant_id TEXT NOT NULL,
    booking_id TEXT NOT NULL,
    table_id TEXT NOT NULL,
    assignment_id TEXT NOT NULL,
    service_date {date} NOT NULL,
    start_at {instant} NOT NULL,
    end_at {instant} NOT NULL,
    merge_group_id TEXT,
    idempotency_key TEXT,
    source TEXT NOT NULL,
    notification_id BIGINT NOT NULL,
    PRIMARY KEY (restaurant_id, booking_id, table_id)
"""

_OUTBOX_COLUMNS = """
    message_id TEXT PRIMARY KEY,
    notification_id BIGINT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    restaurant_id TEXT NOT NULL,
    booking_id TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    occurred_at {instant} NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'done', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at {instant},
    locked_until {instant},
    last_error TEXT,
    published_at {instant},
    UNIQUE (notification_id, seq)
"""


def _tables(date_type: str, instant_type: str) -> tuple[str, ...]:
    fmt = {"date": date_type, "instant": instant_type}
    return (
        f"""CREATE TABLE seatledger_tracking (
            projection TEXT PRIMARY KEY,
            notification_id BIGINT NOT NULL,
            updated_at {instant_type} NOT NULL
        )""",
        f"CREATE TABLE seatledger_members ({_MEMBERS_COLUMNS.format(**fmt)})",
        # the bounded availability scan: rows of one table that end after the window starts
        "CREATE INDEX seatledger_members_table_end "
        "ON seatledger_members (restaurant_id, table_id, end_at)",
        f"CREATE TABLE seatledger_outbox ({_OUTBOX_COLUMNS.format(**fmt)})",
        "CREATE INDEX seatledger_outbox_due ON seatledger_outbox (status, next_attempt_at)",
        "CREATE INDEX seatledger_outbox_booking ON seatledger_outbox (restaurant_id, booking_id)",
    )


_AVAILABILITY_FUNCTION = """
CREATE OR REPLACE FUNCTION seatledger_table_available(
    p_restaurant_id TEXT, p_table_id TEXT, p_start TIMESTAMPTZ, p_end TIMESTAMPTZ,
    p_exclude_booking_id TEXT
) RETURNS BOOLEAN
LANGUAGE sql STABLE
AS $$
    SELECT NOT EXISTS (
        SELECT 1 FROM seatledger_members m
        WHERE m.restaurant_id = p_restaurant_id
          AND m.table_id = p_table_id
          AND m.end_at > p_start
          AND tstzrange(m.start_at, m.end_at, '[)') && tstzrange(p_start, p_end, '[)')
          AND m.booking_id IS DISTINCT FROM p_exclude_booking_id
    )
$$
"""

#: One definition of "busy" for every caller of the database: the bookings blocking the table,
#: and availability as "none blocks" (the function path names its blockers, like the others).
_BLOCKERS_FUNCTION = """
CREATE OR REPLACE FUNCTION seatledger_table_blockers(
    p_restaurant_id TEXT, p_table_id TEXT, p_start TIMESTAMPTZ, p_end TIMESTAMPTZ,
    p_exclude_booking_id TEXT
) RETURNS SETOF TEXT
LANGUAGE sql STABLE
AS $$
    SELECT DISTINCT m.booking_id FROM seatledger_members m
    WHERE m.restaurant_id = p_restaurant_id
      AND m.table_id = p_table_id
      AND m.end_at > p_start
      AND tstzrange(m.start_at, m.end_at, '[)') && tstzrange(p_start, p_end, '[)')
      AND m.booking_id IS DISTINCT FROM p_exclude_booking_id
    ORDER BY m.booking_id
$$
"""

_AVAILABLE_VIA_BLOCKERS = """
CREATE OR REPLACE FUNCTION seatledger_table_available(
    p_restaurant_id TEXT, p_table_id TEXT, p_start TIMESTAMPTZ, p_end TIMESTAMPTZ,
    p_exclude_booking_id TEXT
) RETURNS BOOLEAN
LANGUAGE sql STABLE
AS $$
    SELECT NOT EXISTS (
        SELECT 1 FROM seatledger_table_blockers(
            p_restaurant_id, p_table_id, p_start, p_end, p_exclude_booking_id)
    )
$$
"""

#: Migration 4's outbox: every column so far, the trace context and the publisher, and the
#: ``discarded`` status (SQLite cannot alter a CHECK constraint: the table is rebuilt).
_OUTBOX_V4_COLUMNS = """
    message_id TEXT PRIMARY KEY,
    notification_id BIGINT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    restaurant_id TEXT NOT NULL,
    booking_id TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'done', 'dead', 'discarded')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    locked_until TEXT,
    last_error TEXT,
    published_at TEXT,
    lease_token TEXT,
    traceparent TEXT,
    published_via TEXT,
    UNIQUE (notification_id, seq)
"""
_OUTBOX_V3_NAMES = (
    "message_id, notification_id, seq, type, restaurant_id, booking_id, dedupe_key,"
    " occurred_at, payload, status, attempts, next_attempt_at, locked_until, last_error,"
    " published_at, lease_token"
)
#: Per booking, in log order: the relay's claim asks for a booking's earlier messages.
_OUTBOX_BOOKING_INDEX = (
    "CREATE INDEX seatledger_outbox_booking"
    " ON seatledger_outbox (restaurant_id, booking_id, notification_id, seq)"
)

_PROJECTION_FAILURES = """CREATE TABLE seatledger_projection_failures (
    projection TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    notification_id BIGINT NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    failures INTEGER NOT NULL,
    first_failed_at TEXT NOT NULL,
    last_failed_at TEXT NOT NULL
)"""

#: Migration 7: availability that stays flat in history. One GiST index answers "rows of this
#: restaurant's table whose window overlaps W" directly: equality on the two text columns
#: (``btree_gist``'s operator classes) and ``&&`` on the window, so a look-up touches only the
#: overlapping rows whatever the plan's parameter values. The old btree on ``end_at`` let a
#: generic plan (a SQL function's body, a prepared statement after five runs) walk every later
#: row of the table; the range-only GiST index could not use the equalities. Both go. The
#: extension goes into ``public`` (it is per database): installed in a store's own schema, a
#: ``DROP SCHEMA ... CASCADE`` of that store would take every other store's index with it.
#: ``IF NOT EXISTS``: an operator may build the index beforehand with ``CONCURRENTLY``.
_MEMBERS_OVERLAP_INDEX = (
    "CREATE INDEX IF NOT EXISTS seatledger_members_overlap ON seatledger_members"
    " USING gist (restaurant_id, table_id, tstzrange(start_at, end_at, '[)'))"
)
#: The blockers by overlap alone (the same half-open overlap as before: ``&&`` of ``[)``
#: ranges is ``start < W.end AND end > W.start``); a set-returning SQL function the planner
#: inlines when it is called in ``FROM``, so every caller's plan is the index's.
_BLOCKERS_BY_OVERLAP = """
CREATE OR REPLACE FUNCTION seatledger_table_blockers(
    p_restaurant_id TEXT, p_table_id TEXT, p_start TIMESTAMPTZ, p_end TIMESTAMPTZ,
    p_exclude_booking_id TEXT
) RETURNS SETOF TEXT
LANGUAGE sql STABLE
AS $$
    SELECT DISTINCT m.booking_id FROM seatledger_members m
    WHERE m.restaurant_id = p_restaurant_id
      AND m.table_id = p_table_id
      AND tstzrange(m.start_at, m.end_at, '[)') && tstzrange(p_start, p_end, '[)')
      AND m.booking_id IS DISTINCT FROM p_exclude_booking_id
    ORDER BY m.booking_id
$$
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "members, outbox and tracking",
        sqlite=_tables("TEXT", "TEXT"),
        postgres=(
            *_tables("DATE", "TIMESTAMPTZ"),
            "CREATE INDEX seatledger_members_window ON seatledger_members "
            "USING gist (tstzrange(start_at, end_at, '[)'))",
        ),
    ),
    Migration(
        2,
        "availability function (PostgreSQL)",
        sqlite=(),
        postgres=(_AVAILABILITY_FUNCTION,),
    ),
    Migration(
        3,
        "outbox lease token (a relay records an outcome only under its own lease)",
        sqlite=("ALTER TABLE seatledger_outbox ADD COLUMN lease_token TEXT",),
        postgres=("ALTER TABLE seatledger_outbox ADD COLUMN lease_token TEXT",),
    ),
    Migration(
        4,
        "availability names its blockers (PostgreSQL seatledger_table_blockers)",
        sqlite=(),
        postgres=(_BLOCKERS_FUNCTION, _AVAILABLE_VIA_BLOCKERS),
    ),
    Migration(
        5,
        "outbox trace context, publisher, 'discarded' dead letters, per-booking order index",
        sqlite=(
            f"CREATE TABLE seatledger_outbox_v4 ({_OUTBOX_V4_COLUMNS})",
            f"INSERT INTO seatledger_outbox_v4 ({_OUTBOX_V3_NAMES})"
            f" SELECT {_OUTBOX_V3_NAMES} FROM seatledger_outbox",
            "DROP TABLE seatledger_outbox",
            "ALTER TABLE seatledger_outbox_v4 RENAME TO seatledger_outbox",
            "CREATE INDEX seatledger_outbox_due ON seatledger_outbox (status, next_attempt_at)",
            _OUTBOX_BOOKING_INDEX,
        ),
        postgres=(
            "ALTER TABLE seatledger_outbox ADD COLUMN traceparent TEXT,"
            " ADD COLUMN published_via TEXT,"
            " DROP CONSTRAINT seatledger_outbox_status_check,"
            " ADD CONSTRAINT seatledger_outbox_status_check"
            " CHECK (status IN ('pending', 'processing', 'done', 'dead', 'discarded'))",
            "DROP INDEX seatledger_outbox_booking",
            _OUTBOX_BOOKING_INDEX,
        ),
    ),
    Migration(
        6,
        "projection failures (the event a projection stopped before, for status)",
        sqlite=(_PROJECTION_FAILURES,),
        postgres=(_PROJECTION_FAILURES,),
    ),
    Migration(
        7,
        "availability by overlap: one GiST index on (restaurant, table, window), btree_gist",
        # SQLite has no range types; its scan reads (restaurant, table, end_at) as before
        sqlite=(),
        postgres=(
            "CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public",
            _MEMBERS_OVERLAP_INDEX,
            "DROP INDEX IF EXISTS seatledger_members_table_end",
            "DROP INDEX IF EXISTS seatledger_members_window",
            _BLOCKERS_BY_OVERLAP,
        ),
    ),
)

LATEST = MIGRATIONS[-1].version


def _ensure_ledger(tx: Tx) -> None:
    """Create the ledger under the migrator's lock (concurrent migrators would race)."""
    if tx.dialect == "postgres":
        tx.execute("SELECT pg_advisory_xact_lock(:key)", {"key": MIGRATION_LOCK})
    tx.execute(
        "CREATE TABLE IF NOT EXISTS seatledger_schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )


def _ledger_exists(tx: Tx) -> bool:
    if tx.dialect == "postgres":
        ((found,),) = tx.execute("SELECT to_regclass(:name) IS NOT NULL", {"name": LEDGER_TABLE})
        return bool(found)
    rows = tx.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name", {"name": LEDGER_TABLE}
    )
    return bool(rows)


def applied_versions(db: ReadModelDB) -> list[int]:
    """The versions recorded in the ledger; reads only (no ledger yet: none)."""
    with db.read() as tx:
        if not _ledger_exists(tx):
            return []
        return [
            row[0]
            for row in tx.execute(
                "SELECT version FROM seatledger_schema_migrations ORDER BY version"
            )
        ]


def pending(db: ReadModelDB) -> list[Migration]:
    done = set(applied_versions(db))
    return [m for m in MIGRATIONS if m.version not in done]


def migrate(db: ReadModelDB) -> list[Migration]:
    """Apply every pending migration; returns the ones applied by this call."""
    applied: list[Migration] = []
    for migration in MIGRATIONS:
        with db.transaction() as tx:
            _ensure_ledger(tx)
            done = tx.execute(
                "SELECT 1 FROM seatledger_schema_migrations WHERE version = :version",
                {"version": migration.version},
            )
            if done:
                continue
            for statement in getattr(migration, db.dialect):
                tx.execute(statement)
            tx.execute(
                "INSERT INTO seatledger_schema_migrations (version, name, applied_at) "
                "VALUES (:version, :name, :applied_at)",
                {
                    "version": migration.version,
                    "name": migration.name,
                    "applied_at": datetime.now(UTC).isoformat(),
                },
            )
            applied.append(migration)
    return applied

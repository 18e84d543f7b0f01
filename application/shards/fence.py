"""The fence: what makes switching a restaurant's shard safe, in each shard's own database.

Every routed call holds a *shared* advisory lock of its restaurant on the shard it believes
is the restaurant's while it runs, and reads the restaurant's fence row once it holds the lock
(two statements pipelined in one round trip, and one to unlock). A move marks the source
``moving``, then takes the lock *exclusively*: it waits for the calls in flight, and every
later command sees ``moving`` (RESTAURANT_MOVING) until the switch is done and the source says
``moved``, which sends the caller to the map again. So no command can land on the old copy
once the last events have been copied, whatever its cached map says.

Also here, per shard: ``seatledger_shard_incoming`` and a trigger on the outbox that parks a
restaurant's messages while it moves in (``next_attempt_at`` far ahead): the copied events
recreate messages the source may already have delivered; the move gives each its delivery
state from the source before the relay may see it (docs/operations.md, *Moving*). The trigger
reads the incoming row ``FOR SHARE``: a message inserted while the move's last step deletes
that row and releases the parked messages is either parked before the release (the delete
waits for its transaction, and the release then sees it) or not parked at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from seatledger.application.settings import Settings

FENCES = "seatledger_shard_fences"
INCOMING = "seatledger_shard_incoming"
PARKED_UNTIL = "9999-12-31T00:00:00Z"
PARKED = "parked: the restaurant is moving in"
FenceState = Literal["open", "moving", "moved"]
_DDL_LOCK = 0x5EA7_FE5C


def fence_key(restaurant_id: str) -> int:
    """The restaurant's advisory-lock key (a collision only makes two restaurants wait)."""
    digest = hashlib.sha256(b"seatledger-shard-fence/" + restaurant_id.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def ensure_shard_tables(settings: Settings) -> None:
    """The fence and incoming tables and the outbox's parking trigger (idempotent; the
    outbox must exist: the shard's service has migrated its store first)."""
    schema = sql.Identifier(settings.postgres_schema)
    fences = sql.Identifier(settings.postgres_schema, FENCES)
    incoming = sql.Identifier(settings.postgres_schema, INCOMING)
    park = sql.Identifier(settings.postgres_schema, "seatledger_shard_park")
    outbox = sql.Identifier(settings.postgres_schema, "seatledger_outbox")
    statements = [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (restaurant_id TEXT PRIMARY KEY,"
            " state TEXT NOT NULL CHECK (state IN ('moving', 'moved')),"
            " target TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        ).format(fences),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (restaurant_id TEXT PRIMARY KEY,"
            " source TEXT NOT NULL, started_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        ).format(incoming),
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {park}() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN PERFORM 1 FROM {incoming} WHERE restaurant_id = NEW.restaurant_id"
            " FOR SHARE; IF FOUND THEN"
            " NEW.next_attempt_at := {until}; NEW.last_error := {parked}; END IF;"
            " RETURN NEW; END $$"
        ).format(
            park=park,
            incoming=incoming,
            until=sql.Literal(PARKED_UNTIL),
            parked=sql.Literal(PARKED),
        ),
        sql.SQL(
            "CREATE OR REPLACE TRIGGER seatledger_shard_park BEFORE INSERT ON {outbox}"
            " FOR EACH ROW EXECUTE FUNCTION {park}()"
        ).format(outbox=outbox, park=park),
    ]
    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        for statement in statements:
            conn.execute(statement)


class Fence:
    """One shard's fences, with a pool of connections for the routed calls: as large as the
    event store's (a routed command holds one of each at once)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.table = sql.Identifier(settings.postgres_schema, FENCES)
        self.pool: ConnectionPool[psycopg.Connection[tuple[object, ...]]] = ConnectionPool(
            settings.postgres_conninfo(),
            min_size=1,
            max_size=settings.postgres_pool_size + settings.postgres_max_overflow,
            kwargs={"autocommit": True},
            timeout=settings.postgres_connect_timeout,
            open=True,
        )
        self._read = sql.SQL("SELECT state FROM {} WHERE restaurant_id = %s").format(self.table)

    @contextmanager
    def held(self, restaurant_id: str) -> Iterator[FenceState]:
        """The restaurant's fence state, its shared lock held until the block ends."""
        key = fence_key(restaurant_id)
        with self.pool.connection() as conn:
            # two statements, one round trip: the fence is read with a snapshot taken after
            # the lock is granted (one statement would read it as of before a wait for the
            # lock, and miss a switch that happened during the wait)
            with conn.pipeline():
                conn.execute("SELECT pg_advisory_lock_shared(%s)", (key,))
                cursor = conn.execute(self._read, (restaurant_id,))
            row = cursor.fetchone()
            try:
                state = row[0] if row is not None else "open"
                yield state  # type: ignore[misc]
            finally:
                try:
                    conn.execute("SELECT pg_advisory_unlock_shared(%s)", (key,))
                except psycopg.Error:
                    conn.close()  # the server releases a closed session's locks

    def state(self, restaurant_id: str) -> FenceState:
        with self.pool.connection() as conn:
            row = conn.execute(
                sql.SQL("SELECT state FROM {} WHERE restaurant_id = %s").format(self.table),
                (restaurant_id,),
            ).fetchone()
        return "open" if row is None else row[0]  # type: ignore[return-value]

    def close(self) -> None:
        self.pool.close()

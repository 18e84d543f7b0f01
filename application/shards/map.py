"""The shard map: which shard each restaurant lives on, versioned and stored.

The map is a table in the control shard's database (``seatledger_shard_map``): every change
is a new row with the next version and the whole map (assignments, default rule, the shards
the hash is taken over), so the history of placements is kept and a reader needs one row.
Version 1 is seeded from the settings (``SEATLEDGER_SHARD_MAP``, ``SEATLEDGER_SHARD_DEFAULT``);
later versions come from moves. Readers cache the map and re-read its version every
``shard_map_refresh_seconds`` (and at once when a fence says a restaurant has moved).

The hash rule is taken over the shards listed when the map was seeded, kept in the map:
adding a shard to the settings never re-homes a restaurant (only a move does).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from seatledger.application.settings import Settings
from seatledger.application.shards.config import control_shard, shard_settings

TABLE = "seatledger_shard_map"
#: Serialises the map's DDL and its seeding across processes (pg_advisory_xact_lock key).
_LOCK_KEY = 0x5EA7_5A4D


@dataclass(frozen=True)
class ShardMap:
    """One version of the map."""

    version: int
    hash_shards: tuple[str, ...]
    default: str = "hash"
    assignments: Mapping[str, str] = field(default_factory=dict)

    def shard_for(self, restaurant_id: str) -> str:
        """The shard of ``restaurant_id``: its explicit entry, else the default rule."""
        explicit = self.assignments.get(restaurant_id)
        if explicit is not None:
            return explicit
        if self.default != "hash":
            return self.default
        digest = hashlib.sha256(restaurant_id.encode()).digest()
        return self.hash_shards[int.from_bytes(digest[:8], "big") % len(self.hash_shards)]

    def with_assignment(self, restaurant_id: str, shard: str) -> ShardMap:
        return ShardMap(
            self.version + 1,
            self.hash_shards,
            self.default,
            {**self.assignments, restaurant_id: shard},
        )

    def shards_named(self) -> set[str]:
        named = {*self.hash_shards, *self.assignments.values()}
        return named | ({self.default} if self.default != "hash" else set())


def seed_map(settings: Settings) -> ShardMap:
    """Version 1 from the settings."""
    return ShardMap(
        1, tuple(sorted(settings.shards)), settings.shard_default, dict(settings.shard_map)
    )


class MapStore:
    """The stored map, in the control shard's schema."""

    def __init__(self, settings: Settings) -> None:
        control = shard_settings(settings, control_shard(settings))
        self.conninfo = control.postgres_conninfo()
        self.table = sql.Identifier(control.postgres_schema, TABLE)
        self.schema = control.postgres_schema
        self.settings = settings

    def ensure(self) -> ShardMap:
        """Create the table and seed version 1 if it has none; the latest map."""
        with psycopg.connect(self.conninfo, autocommit=True) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (version INTEGER PRIMARY KEY,"
                    " hash_shards TEXT NOT NULL, default_rule TEXT NOT NULL,"
                    " assignments TEXT NOT NULL, reason TEXT NOT NULL,"
                    " created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                ).format(self.table)
            )
            latest = self._latest(conn)
            if latest is None:
                latest = seed_map(self.settings)
                self._insert(conn, latest, "seeded from the settings")
        return latest

    def latest(self) -> ShardMap:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            found = self._latest(conn)
        return found if found is not None else self.ensure()

    def version(self) -> int:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            row = conn.execute(sql.SQL("SELECT max(version) FROM {}").format(self.table)).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def history(self) -> list[tuple[int, str, str]]:
        """(version, reason, created_at) of every version."""
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            rows = conn.execute(
                sql.SQL("SELECT version, reason, created_at FROM {} ORDER BY version").format(
                    self.table
                )
            ).fetchall()
        return [(int(v), str(r), c.isoformat()) for v, r, c in rows]

    def publish(self, new: ShardMap, reason: str) -> ShardMap:
        """Store ``new`` as the next version; it must follow the latest (else a concurrent
        change won, and the primary key refuses this one)."""
        with psycopg.connect(self.conninfo, autocommit=True) as conn, conn.transaction():
            self._insert(conn, new, reason)
        return new

    def _latest(self, conn: psycopg.Connection[tuple[object, ...]]) -> ShardMap | None:
        row = conn.execute(
            sql.SQL(
                "SELECT version, hash_shards, default_rule, assignments FROM {}"
                " ORDER BY version DESC LIMIT 1"
            ).format(self.table)
        ).fetchone()
        if row is None:
            return None
        version, hash_shards, default, assignments = row
        return ShardMap(
            int(str(version)),
            tuple(json.loads(str(hash_shards))),
            str(default),
            dict(json.loads(str(assignments))),
        )

    def _insert(
        self, conn: psycopg.Connection[tuple[object, ...]], new: ShardMap, reason: str
    ) -> None:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (version, hash_shards, default_rule, assignments, reason)"
                " VALUES (%s, %s, %s, %s, %s)"
            ).format(self.table),
            (
                new.version,
                json.dumps(list(new.hash_shards)),
                new.default,
                json.dumps(dict(sorted(new.assignments.items()))),
                reason,
            ),
        )


class CachedMap:
    """The map as a process sees it: cached, its version re-read now and then."""

    def __init__(self, store: MapStore, refresh_seconds: float) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._map = store.ensure()
        self._checked = time.monotonic()

    def current(self) -> ShardMap:
        if time.monotonic() - self._checked >= self.refresh_seconds:
            with self._lock:
                if time.monotonic() - self._checked >= self.refresh_seconds:
                    if self.store.version() != self._map.version:
                        self._map = self.store.latest()
                    self._checked = time.monotonic()
        return self._map

    def refresh(self) -> ShardMap:
        with self._lock:
            self._map = self.store.latest()
            self._checked = time.monotonic()
            return self._map

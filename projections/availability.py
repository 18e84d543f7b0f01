"""Is table T free for window W (excluding booking B)?

Primary path (PostgreSQL): the ``seatledger_table_blockers`` SQL function over the members
table (``seatledger_table_available`` is "none blocks", for other database clients), called
in ``FROM`` so it is inlined and planned on the GiST overlap index of migration 7, the same
plan whatever the window (flat in the restaurant's history, generic plans included).
Fallback for a *schema miss* (the function or table is missing): the legacy scan, which
reads only the rows of T that overlap W (``start_at < W.end and end_at > W.start``, indexed).
If the members table itself is missing, the answer comes from the event store. Any other
database error becomes ``TABLE_AVAILABILITY_QUERY_FAILED``. The choice is made per call: a
miss never switches a process to the fallback for good (the source system's defect).
Availability considers assignments only; live holds are the quote's question. Every path
names the bookings that block the table, sorted.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

import psycopg

from seatledger.domain.errors import ErrorCode, ReadModelError
from seatledger.domain.values import Window, utc_instant
from seatledger.projections.db import ReadModelDB, Tx
from seatledger.projections.runner import Reporter

SCHEMA_MISS_SQLSTATES = frozenset({"42883", "42P01"})  # undefined function, undefined table
POSTGREST_SCHEMA_CODES = frozenset({"PGRST202", "PGRST205"})

Path = Literal["function", "scan", "event_store"]

#: The tenancy look-up of a table's other owners: how many it names, and its time limit.
OWNERS_SHOWN = 5
OWNERS_TIMEOUT_MS = 200

#: The function path's statement. In FROM, not the select list: there the SQL function is
#: inlined, so the plan is this statement's own, and custom and generic plans alike (psycopg
#: prepares a statement after five runs) use the overlap index of migration 7.
BLOCKERS_QUERY = (
    "SELECT blocker FROM seatledger_table_blockers(:restaurant_id, :table_id,"
    " CAST(:start_at AS TIMESTAMPTZ), CAST(:end_at AS TIMESTAMPTZ),"
    " CAST(:exclude AS TEXT)) AS blocker"
)

#: Answers from the event store: (restaurant, table, window, excluded booking) -> blocking ids
EventStoreAnswer = Callable[[str, str, Window, str | None], list[str]]


def _chain(error: object) -> Iterator[object]:
    seen: set[int] = set()
    current: object | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, BaseException):
            current = current.__cause__ or current.__context__
        else:
            current = None


def is_schema_cache_miss_error(error: object) -> bool:
    """True if ``error`` (an exception, or a PostgREST-style error mapping) means a database
    object is missing rather than that the server failed: PostgreSQL 42883/42P01, PostgREST
    PGRST202/PGRST205, SQLite "no such table/function", or text mentioning "schema cache" or
    "does not exist" together with "function" or "relation". Follows exception chains."""
    for item in _chain(error):
        if isinstance(item, Mapping):
            code = str(item.get("code", ""))
            text = " ".join(str(item.get(k, "")) for k in ("message", "details", "hint"))
        else:
            code = str(
                getattr(item, "sqlstate", None)
                or getattr(getattr(item, "diag", None), "sqlstate", None)
                or getattr(item, "code", None)
                or ""
            )
            text = str(item)
        if code in SCHEMA_MISS_SQLSTATES or code in POSTGREST_SCHEMA_CODES:
            return True
        lowered = text.lower()
        if "schema cache" in lowered:
            return True
        if "does not exist" in lowered and ("function" in lowered or "relation" in lowered):
            return True
        if "no such table" in lowered or "no such function" in lowered:
            return True
    return False


@dataclass(frozen=True)
class Availability:
    available: bool
    #: which path answered: function (primary), scan (legacy fallback) or event_store
    path: Path
    blocking_booking_ids: list[str] = field(default_factory=list)


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None) or getattr(getattr(exc, "diag", None), "sqlstate", None)


class AvailabilityQueries:
    def __init__(
        self,
        db: ReadModelDB,
        telemetry: Reporter,
        event_store_answer: EventStoreAnswer,
        *,
        statement_timeout_ms: int = 2000,
    ) -> None:
        self.db = db
        self.telemetry = telemetry
        self.event_store_answer = event_store_answer
        self.statement_timeout_ms = statement_timeout_ms

    def check(
        self,
        restaurant_id: str,
        table_id: str,
        window: Window,
        exclude_booking_id: str | None = None,
    ) -> Availability:
        params = {
            "restaurant_id": restaurant_id,
            "table_id": table_id,
            "start_at": utc_instant(window.start),
            "end_at": utc_instant(window.end),
            "exclude": exclude_booking_id,
        }
        if window.is_empty:
            return Availability(True, "function" if self.db.dialect == "postgres" else "scan")
        if self.db.dialect == "postgres":
            try:
                return self._guarded(lambda tx: self._function(tx, params), "function")
            except (psycopg.Error, sqlite3.Error) as exc:
                if not is_schema_cache_miss_error(exc):
                    raise self._failed(exc, "function", params) from exc
                self._fallback("function", exc, params)
        try:
            return self._guarded(lambda tx: self._scan(tx, params), "scan")
        except (psycopg.Error, sqlite3.Error) as exc:
            if not is_schema_cache_miss_error(exc):
                raise self._failed(exc, "scan", params) from exc
            self._fallback("scan", exc, params)
        blocking = self.event_store_answer(restaurant_id, table_id, window, exclude_booking_id)
        return Availability(not blocking, "event_store", sorted(blocking))

    def table_owners(self, table_id: str, except_restaurant_id: str) -> list[str]:
        """Other restaurants whose member rows name ``table_id`` (for the tenancy log of a
        probe for a table the caller does not have). Best effort and bounded: at most
        ``OWNERS_SHOWN`` ids, a short statement timeout on PostgreSQL, and ``[]`` whenever
        the read model cannot say (the caller's answer is TABLE_NOT_FOUND either way)."""
        try:
            with self.db.read() as tx:
                if tx.dialect == "postgres":
                    tx.execute(
                        "SELECT set_config('statement_timeout', :ms, true)",
                        {"ms": str(min(self.statement_timeout_ms, OWNERS_TIMEOUT_MS))},
                    )
                rows = tx.execute(
                    "SELECT DISTINCT restaurant_id FROM seatledger_members"
                    " WHERE table_id = :table_id AND restaurant_id <> :restaurant_id"
                    f" ORDER BY restaurant_id LIMIT {OWNERS_SHOWN}",
                    {"table_id": table_id, "restaurant_id": except_restaurant_id},
                )
        except (psycopg.Error, sqlite3.Error):
            return []
        return [str(row[0]) for row in rows]

    def _guarded(self, query: Callable[[Tx], Availability], path: Path) -> Availability:
        with self.db.read() as tx:
            if tx.dialect == "postgres":
                tx.execute(
                    "SELECT set_config('statement_timeout', :ms, true)",
                    {"ms": str(self.statement_timeout_ms)},
                )
            return query(tx)

    @staticmethod
    def _function(tx: Tx, params: Mapping[str, object]) -> Availability:
        rows = tx.execute(BLOCKERS_QUERY, params)
        blocking = sorted(str(row[0]) for row in rows)
        return Availability(not blocking, "function", blocking)

    @staticmethod
    def _scan(tx: Tx, params: Mapping[str, object]) -> Availability:
        distinct = "IS DISTINCT FROM" if tx.dialect == "postgres" else "IS NOT"
        rows = tx.execute(
            "SELECT DISTINCT booking_id FROM seatledger_members"
            " WHERE restaurant_id = :restaurant_id AND table_id = :table_id"
            " AND end_at > :start_at AND start_at < :end_at"
            f" AND booking_id {distinct} :exclude ORDER BY booking_id",
            params,
        )
        blocking = [str(row[0]) for row in rows]
        return Availability(not blocking, "scan", blocking)

    def _fallback(self, path: Path, exc: BaseException, params: Mapping[str, object]) -> None:
        self.telemetry.emit(
            "availability.fallback",
            level=logging.WARNING,
            failed_path=path,
            sqlstate=_sqlstate(exc),
            error=str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            restaurant_id=params["restaurant_id"],
            table_id=params["table_id"],
        )

    def _failed(
        self, exc: BaseException, path: Path, params: Mapping[str, object]
    ) -> ReadModelError:
        self.telemetry.emit(
            "availability.failed",
            level=logging.ERROR,
            path=path,
            sqlstate=_sqlstate(exc),
            error=str(exc),
            restaurant_id=params["restaurant_id"],
            table_id=params["table_id"],
        )
        return ReadModelError(
            ErrorCode.TABLE_AVAILABILITY_QUERY_FAILED,
            f"availability query failed ({path}): {type(exc).__name__}",
            details={
                "path": path,
                "sqlstate": _sqlstate(exc),
                "error": str(exc).strip(),
                "restaurant_id": params["restaurant_id"],
                "table_id": params["table_id"],
            },
        )

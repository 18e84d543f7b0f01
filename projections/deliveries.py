"""The outbox's delivery rows: what the relay reads and writes, and the dead-letter operations.

The projection (:mod:`seatledger.projections.outbox`) writes each message once, ``pending``;
from then on the delivery columns (status, attempts, next attempt, lease, last error, when and
through which publisher it was published) belong to the relay and to the operator:

* a claim marks due messages ``processing`` under a lease token of its own, in log order, and
  keeps each booking's messages in order: a message is not claimed while an earlier message
  of its booking waits for a retry or is held by a live lease (see :func:`claim_due`);
* an outcome is recorded only while the claim's lease holds (:data:`_UNDER_LEASE`);
* dead letters are listed, shown, re-driven to ``pending`` or ``discarded`` by the operator
  (``seatledger outbox``).

Statuses: ``pending`` → ``processing`` → ``done``, or back to ``pending`` (retry), or
``dead`` (``max_attempts`` failures); ``dead`` → ``pending`` (re-drive) or ``discarded``.
A ``dead`` or ``discarded`` message no longer holds back later messages of its booking.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from seatledger.domain.values import utc_instant
from seatledger.projections.db import ReadModelDB, Tx

TABLE = "seatledger_outbox"

Status = Literal["pending", "processing", "done", "dead", "discarded"]
STATUSES: tuple[Status, ...] = ("pending", "processing", "done", "dead", "discarded")


@dataclass(frozen=True)
class Delivery:
    """A message as the publisher receives it."""

    message_id: str
    notification_id: int
    type: str
    restaurant_id: str
    booking_id: str
    dedupe_key: str
    occurred_at: str
    payload: dict[str, Any]
    attempt: int
    #: The claim this delivery was made under; its outcome is recorded only while it holds.
    lease_token: str
    #: The W3C traceparent of the command that caused the message (None: not traced).
    traceparent: str | None = None


_DELIVERY_COLUMNS = (
    "message_id, notification_id, type, restaurant_id, booking_id, dedupe_key, occurred_at,"
    " payload, attempts, traceparent"
)

#: An earlier message of the same booking (``e``) than the candidate (``o``).
_EARLIER = (
    f"SELECT 1 FROM {TABLE} e"
    " WHERE e.restaurant_id = o.restaurant_id AND e.booking_id = o.booking_id"
    "   AND (e.notification_id < o.notification_id"
    "        OR (e.notification_id = o.notification_id AND e.seq < o.seq))"
)


def claim_due(
    db: ReadModelDB, *, now: datetime, lease_until: datetime, lease_token: str, limit: int
) -> list[Delivery]:
    """Mark up to ``limit`` due messages (``pending`` and due, or ``processing`` with an
    expired lease) ``processing`` under ``lease_token`` until ``lease_until``, in log order.

    Per booking order: a message is skipped while an earlier message of its booking is
    waiting for its retry or held under a live lease; earlier messages that are due are
    claimed in the same batch (the relay sends a booking's messages one after the other).
    On PostgreSQL rows another relay holds are skipped (``FOR UPDATE SKIP LOCKED``), and a
    claimed message whose earlier message another relay is claiming at the same moment is
    handed back before the claim commits (:func:`_release_overtaking`)."""
    skip_locked = "FOR UPDATE SKIP LOCKED" if db.dialect == "postgres" else ""
    with db.transaction() as tx:
        rows = tx.execute(
            f"UPDATE {TABLE} SET status = 'processing', locked_until = :lease,"
            " lease_token = :lease_token"
            " WHERE message_id IN ("
            f"  SELECT o.message_id FROM {TABLE} o"
            "  WHERE ((o.status = 'pending'"
            "          AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= :now))"
            "      OR (o.status = 'processing' AND o.locked_until < :now))"
            f"    AND NOT EXISTS ({_EARLIER}"
            "      AND ((e.status = 'pending' AND e.next_attempt_at > :now)"
            "           OR (e.status = 'processing' AND e.locked_until >= :now)))"
            f"  ORDER BY o.notification_id, o.seq LIMIT :limit {skip_locked})"
            f" RETURNING {_DELIVERY_COLUMNS}",
            {
                "now": utc_instant(now),
                "lease": utc_instant(lease_until),
                "lease_token": lease_token,
                "limit": limit,
            },
        )
        released = _release_overtaking(tx, lease_token) if rows else set()
    deliveries = [
        Delivery(
            message_id=row[0],
            notification_id=int(row[1]),
            type=row[2],
            restaurant_id=row[3],
            booking_id=row[4],
            dedupe_key=row[5],
            occurred_at=row[6],
            payload=json.loads(row[7]),
            attempt=int(row[8]) + 1,
            lease_token=lease_token,
            traceparent=row[9],
        )
        for row in rows
        if row[0] not in released
    ]
    return sorted(deliveries, key=lambda d: d.notification_id)


def _release_overtaking(tx: Tx, lease_token: str) -> set[str]:
    """Hand back (as due ``pending``) the claimed messages that an earlier, unfinished message
    of their booking outside this claim would be overtaken by. Only a concurrent claim
    (another relay's uncommitted one, seen here as still ``pending``) leaves such a gap."""
    rows = tx.execute(
        f"UPDATE {TABLE} SET status = 'pending', locked_until = NULL, lease_token = NULL"
        " WHERE message_id IN ("
        f"  SELECT o.message_id FROM {TABLE} o WHERE o.lease_token = :lease_token"
        f"    AND EXISTS ({_EARLIER}"
        "      AND e.status IN ('pending', 'processing')"
        "      AND (e.lease_token IS NULL OR e.lease_token <> :lease_token)))"
        " RETURNING message_id",
        {"lease_token": lease_token},
    )
    return {str(row[0]) for row in rows}


#: A relay records an outcome only while its claim holds: the row is still in flight under
#: its lease token. Once the lease expired and another relay claimed the row, that relay owns
#: it; the late outcome changes nothing (the message was published twice: at least once).
_UNDER_LEASE = " AND status = 'processing' AND lease_token = :lease_token RETURNING message_id"


def mark_done(db: ReadModelDB, delivery: Delivery, *, now: datetime, via: str = "") -> bool:
    """Record one delivery; False if the lease was lost (nothing written)."""
    return delivery.message_id in mark_done_many(db, [delivery], now=now, via=via)


def mark_done_many(
    db: ReadModelDB, deliveries: Sequence[Delivery], *, now: datetime, via: str
) -> set[str]:
    """Record deliveries (``done``, published ``now`` through the publisher ``via``) in one
    transaction; returns the ids recorded (the others' leases were lost)."""
    recorded: set[str] = set()
    with db.transaction() as tx:
        for delivery in deliveries:
            rows = tx.execute(
                f"UPDATE {TABLE} SET status = 'done', attempts = :attempts,"
                " published_at = :now, published_via = :via, locked_until = NULL,"
                " lease_token = NULL, last_error = NULL"
                " WHERE message_id = :message_id" + _UNDER_LEASE,
                {
                    "attempts": delivery.attempt,
                    "now": utc_instant(now),
                    "via": via or None,
                    "message_id": delivery.message_id,
                    "lease_token": delivery.lease_token,
                },
            )
            recorded.update(str(row[0]) for row in rows)
    return recorded


def mark_failed(
    db: ReadModelDB, delivery: Delivery, *, retry_at: datetime | None, error: str
) -> bool:
    """Record a failed attempt: back to ``pending`` until ``retry_at``, or ``dead`` (None).
    False if the lease was lost (nothing written)."""
    with db.transaction() as tx:
        rows = tx.execute(
            f"UPDATE {TABLE} SET status = :status, attempts = :attempts,"
            " next_attempt_at = :next_attempt_at, locked_until = NULL, lease_token = NULL,"
            " last_error = :error WHERE message_id = :message_id" + _UNDER_LEASE,
            {
                "status": "dead" if retry_at is None else "pending",
                "attempts": delivery.attempt,
                "next_attempt_at": None if retry_at is None else utc_instant(retry_at),
                "error": error,
                "message_id": delivery.message_id,
                "lease_token": delivery.lease_token,
            },
        )
    return bool(rows)


def release(db: ReadModelDB, delivery: Delivery) -> bool:
    """Hand a claimed message back untried (``pending``, attempts and due time unchanged):
    an earlier message of its booking failed in the same batch, so sending it would
    overtake that one. False if the lease was lost."""
    with db.transaction() as tx:
        rows = tx.execute(
            f"UPDATE {TABLE} SET status = 'pending', locked_until = NULL, lease_token = NULL"
            " WHERE message_id = :message_id" + _UNDER_LEASE,
            {"message_id": delivery.message_id, "lease_token": delivery.lease_token},
        )
    return bool(rows)


def delivered_nowhere(db: ReadModelDB) -> int:
    """Messages marked ``done`` by a publisher that delivers nowhere (the logging one)."""
    with db.read() as tx:
        (row,) = tx.execute(
            f"SELECT COUNT(*) FROM {TABLE} WHERE status = 'done' AND published_via = 'log'"
        )
    return int(row[0])


# --- dead letters and inspection (``seatledger outbox``) -------------------------------------


@dataclass(frozen=True)
class OutboxEntry:
    """One outbox row, every column, for an operator."""

    message_id: str
    notification_id: int
    seq: int
    type: str
    restaurant_id: str
    booking_id: str
    dedupe_key: str
    occurred_at: str
    status: str
    attempts: int
    next_attempt_at: str | None
    locked_until: str | None
    last_error: str | None
    published_at: str | None
    published_via: str | None
    traceparent: str | None
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_ENTRY_COLUMNS = (
    "message_id, notification_id, seq, type, restaurant_id, booking_id, dedupe_key,"
    " occurred_at, status, attempts, next_attempt_at, locked_until, last_error, published_at,"
    " published_via, traceparent, payload"
)


@dataclass(frozen=True)
class Selection:
    """Which rows an operation applies to: every filter given must match."""

    statuses: tuple[str, ...] = ()
    type: str | None = None
    restaurant_id: str | None = None
    booking_id: str | None = None
    message_ids: tuple[str, ...] = ()

    def where(self) -> tuple[str, dict[str, Any]]:
        clauses: list[str] = []
        params: dict[str, Any] = {}
        for name, values in (("status", self.statuses), ("message_id", self.message_ids)):
            if values:
                names = [f"{name}_{i}" for i in range(len(values))]
                clauses.append(f"{name} IN ({', '.join(':' + n for n in names)})")
                params.update(zip(names, values, strict=True))
        for name in ("type", "restaurant_id", "booking_id"):
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{name} = :{name}")
                params[name] = value
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def list_entries(db: ReadModelDB, selection: Selection, *, limit: int = 50) -> list[OutboxEntry]:
    """The selected rows in log order, at most ``limit``."""
    where, params = selection.where()
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM {TABLE}{where}"
            " ORDER BY notification_id, seq LIMIT :limit",
            {**params, "limit": limit},
        )
    return [_entry(row) for row in rows]


def get_entry(db: ReadModelDB, message_id: str) -> OutboxEntry | None:
    found = list_entries(db, Selection(message_ids=(message_id,)), limit=1)
    return found[0] if found else None


def _entry(row: Sequence[Any]) -> OutboxEntry:
    return OutboxEntry(
        message_id=row[0],
        notification_id=int(row[1]),
        seq=int(row[2]),
        type=row[3],
        restaurant_id=row[4],
        booking_id=row[5],
        dedupe_key=row[6],
        occurred_at=row[7],
        status=row[8],
        attempts=int(row[9]),
        next_attempt_at=row[10],
        locked_until=row[11],
        last_error=row[12],
        published_at=row[13],
        published_via=row[14],
        traceparent=row[15],
        payload=json.loads(row[16]),
    )


def redrive(db: ReadModelDB, selection: Selection) -> list[str]:
    """Dead letters back to ``pending``, due now, with their attempts reset (the last error
    stays until the next outcome). Only ``dead`` rows of the selection change; returns
    their ids."""
    return _from_dead(
        db,
        selection,
        "status = 'pending', attempts = 0, next_attempt_at = NULL, locked_until = NULL,"
        " lease_token = NULL",
    )


def redrive_logged(db: ReadModelDB, selection: Selection) -> list[str]:
    """Messages the logging publisher marked ``done`` (delivered nowhere) back to
    ``pending``, to be sent by a real publisher; returns their ids."""
    where, params = Selection(
        statuses=("done",),
        type=selection.type,
        restaurant_id=selection.restaurant_id,
        booking_id=selection.booking_id,
        message_ids=selection.message_ids,
    ).where()
    with db.transaction() as tx:
        rows = tx.execute(
            f"UPDATE {TABLE} SET status = 'pending', attempts = 0, next_attempt_at = NULL,"
            f" published_at = NULL, published_via = NULL{where} AND published_via = 'log'"
            " RETURNING message_id",
            params,
        )
    return sorted(str(row[0]) for row in rows)


def discard(db: ReadModelDB, selection: Selection) -> list[str]:
    """Dead letters given up for good: ``discarded`` (kept for the record, never sent).
    Only ``dead`` rows of the selection change; returns their ids."""
    return _from_dead(db, selection, "status = 'discarded'")


def _from_dead(db: ReadModelDB, selection: Selection, assignments: str) -> list[str]:
    where, params = Selection(
        statuses=("dead",),
        type=selection.type,
        restaurant_id=selection.restaurant_id,
        booking_id=selection.booking_id,
        message_ids=selection.message_ids,
    ).where()
    with db.transaction() as tx:
        rows = tx.execute(f"UPDATE {TABLE} SET {assignments}{where} RETURNING message_id", params)
    return sorted(str(row[0]) for row in rows)

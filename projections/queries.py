"""Reads of the read models (the application's only way into them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from projections.db import ReadModelDB

MEMBER_COLUMNS = (
    "restaurant_id, booking_id, table_id, assignment_id, service_date, start_at, end_at,"
    " merge_group_id, idempotency_key, source, notification_id"
)
#: The outbox columns the projection owns (delivery state belongs to the relay).
OUTBOX_COLUMNS = (
    "message_id, notification_id, seq, type, restaurant_id, booking_id, dedupe_key,"
    " occurred_at, payload"
)


@dataclass(frozen=True)
class MemberRecord:
    restaurant_id: str
    booking_id: str
    table_id: str
    assignment_id: str
    service_date: str
    start_at: str
    end_at: str
    merge_group_id: str | None
    idempotency_key: str | None
    source: str
    notification_id: int


def booking_members(db: ReadModelDB, restaurant_id: str, booking_id: str) -> list[MemberRecord]:
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {MEMBER_COLUMNS} FROM seatledger_members"
            " WHERE restaurant_id = :restaurant_id AND booking_id = :booking_id"
            " ORDER BY table_id",
            {"restaurant_id": restaurant_id, "booking_id": booking_id},
        )
    return [MemberRecord(*row) for row in rows]


def all_members(db: ReadModelDB) -> list[tuple[Any, ...]]:
    """Every member row in a stable order (for audits and rebuild comparisons)."""
    with db.read() as tx:
        return tx.execute(
            f"SELECT {MEMBER_COLUMNS} FROM seatledger_members"
            " ORDER BY restaurant_id, booking_id, table_id"
        )


def all_outbox(db: ReadModelDB) -> list[tuple[Any, ...]]:
    """Every outbox row's projection-owned columns, in notification order."""
    with db.read() as tx:
        return tx.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM seatledger_outbox ORDER BY notification_id, seq"
        )


def outbox_counts(db: ReadModelDB) -> dict[str, dict[str, int]]:
    """type -> status -> count."""
    with db.read() as tx:
        rows = tx.execute(
            "SELECT type, status, COUNT(*) FROM seatledger_outbox GROUP BY type, status"
        )
    counts: dict[str, dict[str, int]] = {}
    for message_type, status, count in rows:
        counts.setdefault(str(message_type), {})[str(status)] = int(count)
    return counts

"""Reads of the read models (the application's only way into them)."""

from __future__ import annotations

from typing import Any

from seatledger.projections.db import ReadModelDB
from seatledger.projections.messages import MEMBER_COLUMNS, OUTBOX_COLUMNS, MemberRow

_MEMBERS = ", ".join(MEMBER_COLUMNS)
_OUTBOX = ", ".join(OUTBOX_COLUMNS)


def booking_members(db: ReadModelDB, restaurant_id: str, booking_id: str) -> list[MemberRow]:
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_MEMBERS} FROM seatledger_members"
            " WHERE restaurant_id = :restaurant_id AND booking_id = :booking_id"
            " ORDER BY table_id",
            {"restaurant_id": restaurant_id, "booking_id": booking_id},
        )
    return [MemberRow(*row) for row in rows]


def all_members(db: ReadModelDB) -> list[tuple[Any, ...]]:
    """Every member row in a stable order (for audits and rebuild comparisons)."""
    with db.read() as tx:
        return tx.execute(
            f"SELECT {_MEMBERS} FROM seatledger_members"
            " ORDER BY restaurant_id, booking_id, table_id"
        )


def all_outbox(db: ReadModelDB) -> list[tuple[Any, ...]]:
    """Every outbox row's projection-owned columns, in notification order."""
    with db.read() as tx:
        return tx.execute(f"SELECT {_OUTBOX} FROM seatledger_outbox ORDER BY notification_id, seq")


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

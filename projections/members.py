"""The members read model: one row per (booking, table) currently assigned.

Row type, the projector that turns change events into rows, and the queries over the rows.
The table itself is created by :mod:`seatledger.projections.migrations`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

from seatledger.domain.service_day import TableChange
from seatledger.projections.db import ReadModelDB, Row, Tx
from seatledger.projections.projection import (
    CHANGE_TOPICS,
    DayInfo,
    Projected,
    Projection,
    instant,
    table_change,
)

TABLE = "seatledger_members"


@dataclass(frozen=True)
class MemberRow:
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


#: The members table's columns: the fields of :class:`MemberRow`, in order.
MEMBER_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(MemberRow))
_SELECT = ", ".join(MEMBER_COLUMNS)
_member_values = attrgetter(*MEMBER_COLUMNS)


def member_rows(change: TableChange, day: DayInfo, notification_id: int) -> list[MemberRow]:
    if not change.members:  # a release or cancel: the booking has no rows
        return []
    # what every member of the change shares, formatted once rather than once per table
    restaurant_id, booking_id = day.restaurant_id, change.booking_id
    service_date = day.service_date.isoformat()
    start_at, end_at = instant(change.window.start), instant(change.window.end)
    merge_group_id, idempotency_key = change.merge_group_id, change.idempotency_key
    source = change.source
    return [
        MemberRow(
            restaurant_id=restaurant_id,
            booking_id=booking_id,
            table_id=member.table_id,
            assignment_id=member.assignment_id,
            service_date=service_date,
            start_at=start_at,
            end_at=end_at,
            merge_group_id=merge_group_id,
            idempotency_key=idempotency_key,
            source=source,
            notification_id=notification_id,
        )
        for member in change.members
    ]


def member_values(change: TableChange, day: DayInfo, notification_id: int) -> list[Row]:
    """The booking's rows after ``change`` as stored, in :data:`MEMBER_COLUMNS` order (they
    replace all of its earlier rows)."""
    return [_member_values(row) for row in member_rows(change, day, notification_id)]


class MembersProjection(Projection):
    """Every change event carries the booking's whole resulting table set, so within a page
    only the last change of each booking matters: its rows replace the booking's rows."""

    name = "members"
    topics = CHANGE_TOPICS

    def apply(self, tx: Tx, batch: Sequence[Projected]) -> None:
        latest: dict[tuple[str, str], tuple[TableChange, Projected]] = {}
        for item in batch:
            change = table_change(item.event)
            if change is not None:
                latest[(item.day.restaurant_id, change.booking_id)] = (change, item)
        if not latest:
            return
        tx.delete_keys(TABLE, ("restaurant_id", "booking_id"), list(latest))
        rows = [
            row
            for change, item in latest.values()
            for row in member_values(change, item.day, item.notification_id)
        ]
        tx.insert_rows(TABLE, MEMBER_COLUMNS, rows)

    def reset(self, tx: Tx) -> None:
        tx.execute(f"DELETE FROM {TABLE}")


# --- queries --------------------------------------------------------------------------------


def booking_members(db: ReadModelDB, restaurant_id: str, booking_id: str) -> list[MemberRow]:
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_SELECT} FROM {TABLE}"
            " WHERE restaurant_id = :restaurant_id AND booking_id = :booking_id"
            " ORDER BY table_id",
            {"restaurant_id": restaurant_id, "booking_id": booking_id},
        )
    return [MemberRow(*row) for row in rows]


def all_members(db: ReadModelDB) -> list[tuple[Any, ...]]:
    """Every member row in a stable order (for audits and rebuild comparisons)."""
    with db.read() as tx:
        return tx.execute(
            f"SELECT {_SELECT} FROM {TABLE} ORDER BY restaurant_id, booking_id, table_id"
        )

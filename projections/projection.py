"""The two projections of the event log: assignment members and the outbox.

A projection turns a page of events into row writes inside the caller's transaction; the
runner (:mod:`seatledger.projections.runner`) owns the transaction and the tracking
position, so rows and position always commit together.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.service_day import (
    BookingClosed,
    HoldConfirmed,
    PolicyDriftDetected,
    TableChange,
    TablesAssigned,
    TablesUnassigned,
)
from seatledger.projections.db import Tx
from seatledger.projections.messages import (
    MEMBER_COLUMNS,
    OUTBOX_COLUMNS,
    DayInfo,
    member_rows,
    messages_for,
    table_change,
)

#: Topics of the events that change a booking's table set.
CHANGE_TOPICS: tuple[str, ...] = (
    TablesAssigned.TOPIC,
    HoldConfirmed.TOPIC,
    TablesUnassigned.TOPIC,
    BookingClosed.TOPIC,
)


@dataclass(frozen=True)
class Projected:
    """One notification, decoded, with the service day it belongs to."""

    notification_id: int
    event: DomainEvent
    day: DayInfo


class Projection(ABC):
    #: Name of the tracking row; also keys the advisory lock.
    name: str
    #: Only notifications of these topics are read (the rest cannot change this projection).
    topics: tuple[str, ...]

    @abstractmethod
    def apply(self, tx: Tx, batch: Sequence[Projected]) -> None:
        """Write the rows for a page of events (in notification order)."""

    @abstractmethod
    def reset(self, tx: Tx) -> None:
        """Delete every row (for a rebuild from the start of the log)."""


_member_values = attrgetter(*MEMBER_COLUMNS)


class MembersProjection(Projection):
    """One row per (booking, table) currently assigned. Every change event carries the
    booking's whole resulting table set, so within a page only the last change of each
    booking matters: its rows replace the booking's rows."""

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
        tx.delete_keys("seatledger_members", ("restaurant_id", "booking_id"), list(latest))
        rows = [
            _member_values(row)
            for change, item in latest.values()
            for row in member_rows(change, item.day, item.notification_id)
        ]
        tx.insert_rows("seatledger_members", MEMBER_COLUMNS, rows)

    def reset(self, tx: Tx) -> None:
        tx.execute("DELETE FROM seatledger_members")


class OutboxProjection(Projection):
    """The ``capacity.*`` messages; delivery state starts as pending and belongs to the relay.
    A duplicate message id would violate the primary key and fail the page loudly."""

    name = "outbox"
    topics = (*CHANGE_TOPICS, PolicyDriftDetected.TOPIC)

    def apply(self, tx: Tx, batch: Sequence[Projected]) -> None:
        rows = [
            (
                message.message_id,
                message.notification_id,
                message.seq,
                message.type,
                message.restaurant_id,
                message.booking_id,
                message.dedupe_key,
                message.occurred_at,
                message.payload_json,
            )
            for item in batch
            for message in messages_for(item.event, item.notification_id, item.day)
        ]
        tx.insert_rows("seatledger_outbox", OUTBOX_COLUMNS, rows)

    def reset(self, tx: Tx) -> None:
        tx.execute("DELETE FROM seatledger_outbox")


PROJECTIONS: tuple[Projection, ...] = (MembersProjection(), OutboxProjection())

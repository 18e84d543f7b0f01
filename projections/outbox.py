"""The outbox read model: what the event log tells other systems.

Row type, the projector that turns events into ``capacity.*`` messages, and the queries over
the rows; the delivery columns' reads and writes are :mod:`seatledger.projections.deliveries`
(the relay's and the operator's). The outbox is a projection, so the same log always yields
the same messages: ids are derived from (aggregate id, event position, message type),
instants use the one canonical UTC format, and payloads are canonical JSON. One event is one
command, so "one sync per table-set change" holds by construction; idempotent replays and
rejections write no event, hence no message. A message's trace context is the one its event
stored (so a rebuild yields it again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal
from uuid import UUID

from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.service_day import HoldConfirmed, PolicyDriftDetected, TableChange
from seatledger.domain.values import canonical_json, derive_id_text, utc_instant
from seatledger.projections.db import ReadModelDB, Row, Tx
from seatledger.projections.projection import (
    CHANGE_TOPICS,
    DayInfo,
    Projected,
    Projection,
    instant,
    table_change,
)

TABLE = "seatledger_outbox"

MessageType = Literal[
    "capacity.assignment.sync", "capacity.hold.confirmed", "capacity.policy.drift"
]
SYNC: MessageType = "capacity.assignment.sync"
HOLD_CONFIRMED: MessageType = "capacity.hold.confirmed"
POLICY_DRIFT: MessageType = "capacity.policy.drift"


@dataclass(frozen=True)
class OutboxMessage:
    message_id: str
    notification_id: int
    seq: int
    type: MessageType
    restaurant_id: str
    booking_id: str
    dedupe_key: str
    occurred_at: str
    payload: dict[str, Any]
    #: The W3C traceparent of the traced command whose event this message comes from, as
    #: the event stored it (None: not traced); sent to consumers, never part of the payload.
    traceparent: str | None = None

    @property
    def payload_json(self) -> str:
        return canonical_json(self.payload)

    def values(self) -> tuple[Any, ...]:
        """The row as stored, in :data:`OUTBOX_COLUMNS` order (spelled out: a rebuild makes
        one per message, and a lookup per column was a third of the cost; a test holds the
        order to the fields')."""
        return (
            self.message_id,
            self.notification_id,
            self.seq,
            self.type,
            self.restaurant_id,
            self.booking_id,
            self.dedupe_key,
            self.occurred_at,
            canonical_json(self.payload),
            self.traceparent,
        )


#: The outbox columns the projection writes: the fields of :class:`OutboxMessage`, in order
#: (the payload as canonical JSON). The delivery columns belong to the relay.
OUTBOX_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(OutboxMessage))


def message_id(originator_id: UUID, originator_version: int, message_type: str) -> str:
    return derive_id_text("message", str(originator_id), str(originator_version), message_type)


def sync_dedupe_key(change: TableChange) -> str:
    """``<bookingId>:<startAt>:<endAt>:<sorted table ids joined by ','>`` (docs/domain.md §10)."""
    return _dedupe_key(change, sorted(change.tables))


def _dedupe_key(change: TableChange, table_ids: list[str]) -> str:
    return ":".join(
        (
            change.booking_id,
            instant(change.window.start),
            instant(change.window.end),
            ",".join(table_ids),
        )
    )


def messages_for(event: DomainEvent, notification_id: int, day: DayInfo) -> list[OutboxMessage]:
    """The outbox messages one stored event produces, in a stable order."""
    # each event has its own timestamp: formatted directly, it would only crowd the cache
    occurred_at = utc_instant(event.timestamp)
    out: list[tuple[MessageType, str, str, dict[str, Any]]] = []

    change = table_change(event)
    if change is not None:
        table_ids = sorted(change.tables)
        dedupe = _dedupe_key(change, table_ids)
        out.append(
            (
                SYNC,
                change.booking_id,
                dedupe,
                {
                    "bookingId": change.booking_id,
                    "restaurantId": day.restaurant_id,
                    "serviceDate": day.service_date.isoformat(),
                    "tableIds": table_ids,
                    "assignments": [
                        {"tableId": m.table_id, "assignmentId": m.assignment_id}
                        for m in change.members
                    ],
                    "startAt": instant(change.window.start),
                    "endAt": instant(change.window.end),
                    "mergeGroupId": change.merge_group_id,
                    "idempotencyKey": change.idempotency_key,
                    "holdId": change.hold_id,
                    "actorId": event.actor_id,
                    "commandId": event.command_id,
                    "source": change.source,
                    "status": change.status,
                    "dedupeKey": dedupe,
                    "occurredAt": occurred_at,
                },
            )
        )

    if isinstance(event, HoldConfirmed):
        out.append(
            (
                HOLD_CONFIRMED,
                event.change.booking_id,
                event.hold_id,
                {
                    "holdId": event.hold_id,
                    "bookingId": event.change.booking_id,
                    "restaurantId": day.restaurant_id,
                    "zoneId": event.zone_id,
                    "tableIds": sorted(event.hold_tables),
                    "startAt": instant(event.change.window.start),
                    "endAt": instant(event.change.window.end),
                    "expiresAt": utc_instant(event.expires_at),
                    "actorId": event.actor_id,
                    "occurredAt": occurred_at,
                },
            )
        )
        if event.recovered_drift is not None:
            recovery = event.recovered_drift
            out.append(
                (
                    POLICY_DRIFT,
                    event.change.booking_id,
                    f"{event.change.booking_id}:{event.command_id}:recovered",
                    {
                        "bookingId": event.change.booking_id,
                        "restaurantId": day.restaurant_id,
                        "holdId": event.hold_id,
                        "staleHoldId": recovery.stale_hold_id,
                        "attempt": recovery.attempt,
                        "recovered": True,
                        "kind": recovery.kind,
                        "details": {},
                        "occurredAt": occurred_at,
                    },
                )
            )

    if isinstance(event, PolicyDriftDetected) and event.first_in_run:
        out.append(
            (
                POLICY_DRIFT,
                event.booking_id,
                f"{event.booking_id}:{event.command_id}:detected",
                {
                    "bookingId": event.booking_id,
                    "restaurantId": day.restaurant_id,
                    "holdId": event.hold_id,
                    "attempt": event.attempt,
                    "recovered": False,
                    "kind": event.kind,
                    "details": event.details,
                    "automated": event.automated,
                    "occurredAt": occurred_at,
                },
            )
        )

    originator_id, originator_version = str(event.originator_id), str(event.originator_version)
    return [
        OutboxMessage(
            message_id=derive_id_text("message", originator_id, originator_version, message_type),
            notification_id=notification_id,
            seq=seq,
            type=message_type,
            restaurant_id=day.restaurant_id,
            booking_id=booking_id,
            dedupe_key=dedupe_key,
            occurred_at=occurred_at,
            payload=payload,
            traceparent=event.traceparent,
        )
        for seq, (message_type, booking_id, dedupe_key, payload) in enumerate(out)
    ]


def message_values(event: DomainEvent, notification_id: int, day: DayInfo) -> list[Row]:
    """The rows of the messages one stored event produces, as stored (:data:`OUTBOX_COLUMNS`
    order)."""
    return [message.values() for message in messages_for(event, notification_id, day)]


class OutboxProjection(Projection):
    """The ``capacity.*`` messages; delivery state starts as pending and belongs to the relay.
    A duplicate message id would violate the primary key and fail the page loudly."""

    name = "outbox"
    topics = (*CHANGE_TOPICS, PolicyDriftDetected.TOPIC)

    def apply(self, tx: Tx, batch: Sequence[Projected]) -> None:
        rows = [
            row
            for item in batch
            for row in message_values(item.event, item.notification_id, item.day)
        ]
        tx.insert_rows(TABLE, OUTBOX_COLUMNS, rows)

    def reset(self, tx: Tx) -> None:
        tx.execute(f"DELETE FROM {TABLE}")


# --- queries --------------------------------------------------------------------------------

_SELECT = ", ".join(OUTBOX_COLUMNS)


def all_outbox(db: ReadModelDB) -> list[tuple[Any, ...]]:
    """Every outbox row's projection-owned columns, in notification order."""
    with db.read() as tx:
        return tx.execute(f"SELECT {_SELECT} FROM {TABLE} ORDER BY notification_id, seq")


def outbox_counts(db: ReadModelDB) -> dict[str, dict[str, int]]:
    """type -> status -> count."""
    with db.read() as tx:
        rows = tx.execute(f"SELECT type, status, COUNT(*) FROM {TABLE} GROUP BY type, status")
    counts: dict[str, dict[str, int]] = {}
    for message_type, status, count in rows:
        counts.setdefault(str(message_type), {})[str(status)] = int(count)
    return counts


# --- rebuilds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxSwap:
    inserted: int
    updated: int
    deleted: int
    kept: int


def replace_messages(tx: Tx, rebuilt: Sequence[Sequence[Any]]) -> OutboxSwap:
    """Make the outbox hold exactly the ``rebuilt`` messages (rows in :data:`OUTBOX_COLUMNS`
    order) without sending anything again: a message whose id exists keeps its delivery
    state (status, attempts, lease, published_at...), its projected columns updated if they
    differ; only a new id is inserted, as pending; a message history no longer produces is
    deleted. Message ids derive from the events, so "exists" is exact."""
    live = {str(row[0]): tuple(row) for row in tx.execute(f"SELECT {_SELECT} FROM {TABLE}")}
    wanted = {str(row[0]): tuple(row) for row in rebuilt}
    gone = [(message_id,) for message_id in live if message_id not in wanted]
    new = [row for message_id, row in wanted.items() if message_id not in live]
    changed = [
        row for message_id, row in wanted.items() if message_id in live and live[message_id] != row
    ]
    tx.delete_keys(TABLE, ("message_id",), gone)
    if changed:
        assignments = ", ".join(f"{c} = :{c}" for c in OUTBOX_COLUMNS if c != "message_id")
        tx.executemany(
            f"UPDATE {TABLE} SET {assignments} WHERE message_id = :message_id",
            [dict(zip(OUTBOX_COLUMNS, row, strict=True)) for row in changed],
        )
    tx.insert_rows(TABLE, OUTBOX_COLUMNS, new)
    return OutboxSwap(
        inserted=len(new), updated=len(changed), deleted=len(gone), kept=len(wanted) - len(new)
    )

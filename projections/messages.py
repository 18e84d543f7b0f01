"""What the event log tells other systems: a pure function from events to outbox messages.

The outbox is a projection, so the same log always yields the same messages: ids are derived
from (aggregate id, event position, message type), instants use the one canonical UTC format,
and payloads are canonical JSON. One event is one command, so "one sync per table-set change"
holds by construction; idempotent replays and rejections write no event, hence no message.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import Any, Literal
from uuid import UUID

from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.service_day import (
    BookingClosed,
    ChangeEvent,
    HoldConfirmed,
    PolicyDriftDetected,
    TableChange,
)
from seatledger.domain.values import canonical_json, derive_id, utc_instant

MessageType = Literal[
    "capacity.assignment.sync", "capacity.hold.confirmed", "capacity.policy.drift"
]
SYNC: MessageType = "capacity.assignment.sync"
HOLD_CONFIRMED: MessageType = "capacity.hold.confirmed"
POLICY_DRIFT: MessageType = "capacity.policy.drift"


@dataclass(frozen=True)
class DayInfo:
    """Which restaurant and service date a service-day aggregate belongs to."""

    restaurant_id: str
    service_date: date


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

    @property
    def payload_json(self) -> str:
        return canonical_json(self.payload)


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
#: The outbox columns the projection writes (delivery state belongs to the relay).
OUTBOX_COLUMNS: tuple[str, ...] = (
    "message_id",
    "notification_id",
    "seq",
    "type",
    "restaurant_id",
    "booking_id",
    "dedupe_key",
    "occurred_at",
    "payload",
)


def message_id(originator_id: UUID, originator_version: int, message_type: str) -> str:
    return str(derive_id("message", str(originator_id), str(originator_version), message_type))


def sync_dedupe_key(change: TableChange) -> str:
    """``<bookingId>:<startAt>:<endAt>:<sorted table ids joined by ','>`` (domain.md 10)."""
    return ":".join(
        (
            change.booking_id,
            utc_instant(change.window.start),
            utc_instant(change.window.end),
            ",".join(sorted(change.tables)),
        )
    )


def table_change(event: DomainEvent) -> TableChange | None:
    """The table-set change an event records, if any."""
    if isinstance(event, ChangeEvent):
        return event.change
    if isinstance(event, BookingClosed):
        return event.change
    return None


def member_rows(change: TableChange, day: DayInfo, notification_id: int) -> list[MemberRow]:
    return [
        MemberRow(
            restaurant_id=day.restaurant_id,
            booking_id=change.booking_id,
            table_id=member.table_id,
            assignment_id=member.assignment_id,
            service_date=day.service_date.isoformat(),
            start_at=utc_instant(change.window.start),
            end_at=utc_instant(change.window.end),
            merge_group_id=change.merge_group_id,
            idempotency_key=change.idempotency_key,
            source=change.source,
            notification_id=notification_id,
        )
        for member in change.members
    ]


def messages_for(event: DomainEvent, notification_id: int, day: DayInfo) -> list[OutboxMessage]:
    """The outbox messages one stored event produces, in a stable order."""
    occurred_at = utc_instant(event.timestamp)
    out: list[tuple[MessageType, str, str, dict[str, Any]]] = []

    change = table_change(event)
    if change is not None:
        dedupe = sync_dedupe_key(change)
        out.append(
            (
                SYNC,
                change.booking_id,
                dedupe,
                {
                    "bookingId": change.booking_id,
                    "restaurantId": day.restaurant_id,
                    "serviceDate": day.service_date.isoformat(),
                    "tableIds": sorted(change.tables),
                    "assignments": [
                        {"tableId": m.table_id, "assignmentId": m.assignment_id}
                        for m in change.members
                    ],
                    "startAt": utc_instant(change.window.start),
                    "endAt": utc_instant(change.window.end),
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
                    "startAt": utc_instant(event.change.window.start),
                    "endAt": utc_instant(event.change.window.end),
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

    return [
        OutboxMessage(
            message_id=message_id(event.originator_id, event.originator_version, message_type),
            notification_id=notification_id,
            seq=seq,
            type=message_type,
            restaurant_id=day.restaurant_id,
            booking_id=booking_id,
            dedupe_key=dedupe_key,
            occurred_at=occurred_at,
            payload=payload,
        )
        for seq, (message_type, booking_id, dedupe_key, payload) in enumerate(out)
    ]

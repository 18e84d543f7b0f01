"""What every publisher puts on the wire: one JSON envelope per message, and the headers.

The body is the same for every broker, so a consumer's parser does not depend on the
transport: canonical JSON (sorted keys, no spaces) of the message's identity, type, place in
the log and payload. Headers repeat what a consumer needs before parsing: the message id
(dedupe), the type (routing) and the W3C ``traceparent`` of the command that caused it, when
that command was traced (see docs/operations.md, *Telemetry*).
"""

from __future__ import annotations

from typing import Any

from seatledger.domain.values import canonical_json
from seatledger.projections.deliveries import Delivery

MESSAGE_ID_HEADER = "Seatledger-Message-Id"
TYPE_HEADER = "Seatledger-Message-Type"
TRACEPARENT_HEADER = "traceparent"


def envelope(delivery: Delivery) -> dict[str, Any]:
    """The message as consumers receive it (every publisher sends this object)."""
    return {
        "messageId": delivery.message_id,
        "type": delivery.type,
        "restaurantId": delivery.restaurant_id,
        "bookingId": delivery.booking_id,
        "notificationId": delivery.notification_id,
        "dedupeKey": delivery.dedupe_key,
        "occurredAt": delivery.occurred_at,
        "payload": delivery.payload,
    }


def body(delivery: Delivery) -> bytes:
    """The envelope as canonical JSON bytes: equal messages give equal bytes (and
    signatures)."""
    return canonical_json(envelope(delivery)).encode()


def headers(delivery: Delivery) -> dict[str, str]:
    """The headers every publisher sets (a broker adds its own dedupe header)."""
    out = {MESSAGE_ID_HEADER: delivery.message_id, TYPE_HEADER: delivery.type}
    if delivery.traceparent:
        out[TRACEPARENT_HEADER] = delivery.traceparent
    return out

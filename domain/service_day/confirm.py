"""Confirm hold (docs/domain.md §6): the ten checks, in their stated order, in one place.

The application resolves what only the directory knows (where the hold is filed, the booking's
service day) and hands it over as plain data; :func:`confirm_hold` runs checks 1-10 in order,
and the first failure wins. A drift rejection (check 9) is an outcome, not an exception: it is
recorded on the day and returned as :class:`DriftRejected`, so the caller saves the record
before it raises the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from seatledger.domain.aggregate import Stamp
from seatledger.domain.directory import hold_restaurant_mismatch
from seatledger.domain.drift import detect_drift
from seatledger.domain.errors import ErrorCode, HoldError, NotFoundError
from seatledger.domain.layout import FloorView
from seatledger.domain.service_day.events import DriftRecovery
from seatledger.domain.service_day.state import DriftRejected, HoldState, Outcome
from seatledger.domain.values import utc_instant

if TYPE_CHECKING:
    from seatledger.domain.service_day.aggregate import ServiceDay


@dataclass(frozen=True)
class ConfirmRequest:
    """What the caller asks: confirm this hold for this booking of this restaurant."""

    restaurant_id: str
    booking_id: str
    hold_id: str
    idempotency_key: str | None = None


@dataclass(frozen=True)
class HoldFacts:
    """What the directory knows about the hold: the restaurant it is filed under (None: no
    hold with this id exists anywhere), and the hold itself when that restaurant is the
    caller's (another tenant's hold is never read)."""

    restaurant_id: str | None
    hold: HoldState | None


@dataclass(frozen=True)
class AutomationContext:
    """Where in an automated run (auto-assign) a confirm happens: recorded with a drift
    rejection (``attempt``, ``first_in_run``) and with a confirm that recovered from drift."""

    attempt: int
    first_drift_in_run: bool
    recovered_drift: DriftRecovery | None = None


def confirm_hold(
    day: ServiceDay | None,
    request: ConfirmRequest,
    found: HoldFacts,
    *,
    floor: FloorView,
    stamp: Stamp,
    automation: AutomationContext | None = None,
) -> Outcome | DriftRejected:
    """Checks 1-10 of docs/domain.md §6 on the booking's day (None: the booking is not
    registered in the caller's restaurant); the first failure wins."""
    booking_id = request.booking_id
    # 1. idempotent replay: the original result, even if the hold is gone
    if day is not None and booking_id in day.bookings:
        replay = day.replay_confirm(
            booking_id=booking_id,
            command_id=stamp.command_id,
            idempotency_key=request.idempotency_key,
            hold=found.hold,
            floor=floor,
        )
        if replay is not None:
            return replay
    # 2. the hold exists anywhere in the service (hold ids are global)
    if found.restaurant_id is None:
        raise NotFoundError(
            ErrorCode.HOLD_NOT_FOUND,
            f"hold {request.hold_id} not found",
            details={"hold_id": request.hold_id},
        )
    # 3. the booking exists in the caller's restaurant
    if day is None or booking_id not in day.bookings:
        raise NotFoundError(
            ErrorCode.BOOKING_NOT_FOUND,
            f"booking {booking_id} not found in restaurant {request.restaurant_id}",
            details={"restaurant_id": request.restaurant_id, "booking_id": booking_id},
        )
    # 4. the hold belongs to the booking's restaurant
    if found.restaurant_id != request.restaurant_id:
        raise hold_restaurant_mismatch(request.hold_id, request.restaurant_id)
    hold = found.hold
    assert hold is not None  # the directory files a hold only with its day
    # 5. the hold's snapshot metadata is complete
    missing = hold.missing_metadata()
    if missing:
        raise HoldError(
            ErrorCode.HOLD_METADATA_INCOMPLETE,
            f"hold {hold.hold_id} lacks snapshot metadata: {', '.join(missing)}",
            details={"hold_id": hold.hold_id, "missing": missing},
        )
    # 6. the hold is linked to this booking
    if hold.booking_id != booking_id:
        raise HoldError(
            ErrorCode.HOLD_BOOKING_MISMATCH,
            f"hold {hold.hold_id} was placed for another booking",
            details={"hold_id": hold.hold_id, "booking_id": booking_id},
        )
    # 7. the hold has tables
    if not hold.tables:
        raise HoldError(
            ErrorCode.HOLD_EMPTY,
            f"hold {hold.hold_id} has no tables",
            details={"hold_id": hold.hold_id},
        )
    # 8. the hold is not expired (nor consumed or released)
    check_hold_usable(hold, stamp.now)
    # 9. drift: the floor is as the hold's snapshot saw it
    assert hold.policy_version is not None and hold.adjacency is not None
    assert hold.table_facts is not None
    drift = detect_drift(
        hold_id=hold.hold_id,
        tables=hold.tables,
        policy_version=hold.policy_version,
        adjacency=hold.adjacency,
        table_facts=hold.table_facts,
        floor=floor,
    )
    if drift is not None:
        return day.reject_for_drift(
            booking_id=booking_id, hold=hold, drift=drift, stamp=stamp, automation=automation
        )
    # 10. the allocation checks, then the confirmation itself
    return day.assign_held_tables(
        booking_id=booking_id,
        hold=hold,
        idempotency_key=request.idempotency_key,
        floor=floor,
        stamp=stamp,
        recovered_drift=None if automation is None else automation.recovered_drift,
    )


def check_hold_usable(hold: HoldState, now: datetime) -> None:
    """A hold can be confirmed or extended only while live: not consumed, released or
    expired (expired means ``now >= expires_at``)."""
    if hold.status in ("consumed", "released"):
        raise HoldError(
            ErrorCode.HOLD_NOT_ACTIVE,
            f"hold {hold.hold_id} was already {hold.status}",
            details={"hold_id": hold.hold_id, "status": hold.status},
        )
    if hold.status == "expired" or now >= hold.expires_at:
        raise HoldError(
            ErrorCode.HOLD_EXPIRED,
            f"hold {hold.hold_id} expired at {utc_instant(hold.expires_at)}",
            details={
                "hold_id": hold.hold_id,
                "expires_at": utc_instant(hold.expires_at),
                "now": utc_instant(now),
            },
        )

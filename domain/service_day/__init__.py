"""The service-day aggregate: every booking, hold and table assignment of one restaurant on
one service date, so every invariant that spans bookings is checked in one place.

* :mod:`.state` — immutable values (bookings, holds, changes, idempotency records);
* :mod:`.events` — what happened (data), and how each event evolves the state;
* :mod:`.aggregate` — :class:`ServiceDay`, the commands that decide and emit events.
"""

from seatledger.domain.service_day.aggregate import (
    ServiceDay,
)
from seatledger.domain.service_day.events import (
    BookingClosed,
    BookingRegistered,
    ChangeEvent,
    DayEvent,
    DriftRecovery,
    HoldConfirmed,
    HoldExpired,
    HoldExtended,
    HoldPlaced,
    HoldReleased,
    PolicyDriftDetected,
    ServiceDayOpened,
    TablesAssigned,
    TablesUnassigned,
)
from seatledger.domain.service_day.state import (
    ActorRole,
    BookingState,
    BookingStatus,
    ChangeSource,
    ClosedStatus,
    HoldRules,
    HoldSource,
    HoldState,
    HoldStatus,
    IdempotencyRecord,
    Member,
    Outcome,
    Quote,
    ReleaseReason,
    TableChange,
    day_id,
    derive_hold_id,
    derive_idempotency_key,
)

__all__ = [
    "ActorRole",
    "BookingClosed",
    "BookingRegistered",
    "BookingState",
    "BookingStatus",
    "ChangeEvent",
    "ChangeSource",
    "ClosedStatus",
    "DayEvent",
    "DriftRecovery",
    "HoldConfirmed",
    "HoldExpired",
    "HoldExtended",
    "HoldPlaced",
    "HoldReleased",
    "HoldRules",
    "HoldSource",
    "HoldState",
    "HoldStatus",
    "IdempotencyRecord",
    "Member",
    "Outcome",
    "PolicyDriftDetected",
    "Quote",
    "ReleaseReason",
    "ServiceDay",
    "ServiceDayOpened",
    "TableChange",
    "TablesAssigned",
    "TablesUnassigned",
    "day_id",
    "derive_hold_id",
    "derive_idempotency_key",
]

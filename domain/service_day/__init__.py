"""The service-day aggregate: every booking, hold and table assignment of one restaurant on
one service date, so every invariant that spans bookings is checked in one place.

* :mod:`.state` — immutable values (bookings, holds, changes, idempotency records);
* :mod:`.events` — what happened (data), and how each event evolves the state;
* :mod:`.aggregate` — :class:`ServiceDay`, the commands that decide and emit events;
* :mod:`.confirm` — confirm hold: its ten checks in their order, in one function;
* :mod:`.runs` — the step command ids of an automated run, and what a finished run left.
"""

from seatledger.domain.service_day.aggregate import (
    ServiceDay,
)
from seatledger.domain.service_day.confirm import (
    AutomationContext,
    ConfirmRequest,
    HoldFacts,
    confirm_hold,
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
from seatledger.domain.service_day.runs import (
    MAX_ATTEMPTS,
    FinishedRun,
    RunHistory,
    RunSteps,
    run_history,
)
from seatledger.domain.service_day.state import (
    ActorRole,
    BookingState,
    BookingStatus,
    ChangeSource,
    ClosedStatus,
    DriftRejected,
    HoldRules,
    HoldSource,
    HoldState,
    HoldStatus,
    IdempotencyRecord,
    Outcome,
    Quote,
    ReleaseReason,
    SeatedTable,
    TableChange,
    day_id,
    derive_hold_id,
    derive_idempotency_key,
)

__all__ = [
    "MAX_ATTEMPTS",
    "ActorRole",
    "AutomationContext",
    "BookingClosed",
    "BookingRegistered",
    "BookingState",
    "BookingStatus",
    "ChangeEvent",
    "ChangeSource",
    "ClosedStatus",
    "ConfirmRequest",
    "DayEvent",
    "DriftRecovery",
    "DriftRejected",
    "FinishedRun",
    "HoldConfirmed",
    "HoldExpired",
    "HoldExtended",
    "HoldFacts",
    "HoldPlaced",
    "HoldReleased",
    "HoldRules",
    "HoldSource",
    "HoldState",
    "HoldStatus",
    "IdempotencyRecord",
    "Outcome",
    "PolicyDriftDetected",
    "Quote",
    "ReleaseReason",
    "RunHistory",
    "RunSteps",
    "SeatedTable",
    "ServiceDay",
    "ServiceDayOpened",
    "TableChange",
    "TablesAssigned",
    "TablesUnassigned",
    "confirm_hold",
    "day_id",
    "derive_hold_id",
    "derive_idempotency_key",
    "run_history",
]

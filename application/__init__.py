"""seatledger's public API: ``from seatledger.application import AssignmentService, ...``.

Everything an embedding application needs is re-exported here: the service, its settings
and clock, the commands, the results, the errors (with ``http_status(err)`` for a web layer)
and the layout values commands carry.
Names load on first use (PEP 562), so importing a submodule (the pytest plugin, say) does
not pull in the event store and its drivers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seatledger.application.lazy import lazy_exports

if TYPE_CHECKING:
    from seatledger.application.clock import Clock, ManualClock, SystemClock
    from seatledger.application.commands import (
        AssignTables,
        AutoAssign,
        CancelBooking,
        ChangePolicy,
        Command,
        CompleteBooking,
        ConfirmHold,
        CreateRestaurant,
        DefineTable,
        DefineZone,
        ExpireHolds,
        ExtendHold,
        LinkTables,
        MarkNoShow,
        PlaceHold,
        QuoteBooking,
        RegisterBooking,
        ReleaseHold,
        UnassignTables,
        UnlinkTables,
    )
    from seatledger.application.errors import InfrastructureCode, http_status
    from seatledger.application.results import (
        AssignmentResult,
        AutoAssignResult,
        BookingView,
        CandidateView,
        DayView,
        ExtendResult,
        HoldView,
        Member,
        QuoteResult,
        ReleaseResult,
        RestaurantView,
        SkippedCandidate,
    )
    from seatledger.application.service import AssignmentService
    from seatledger.application.settings import Settings
    from seatledger.application.telemetry import JsonFormatter, RecordingSink, Telemetry
    from seatledger.domain.errors import (
        ErrorCode,
        PolicyDriftError,
        SeatLedgerError,
    )
    from seatledger.domain.layout import Table, Zone
    from seatledger.domain.policy import FallbackService, Service, TurnBand, VenuePolicy
    from seatledger.domain.values import Window

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("Clock", "ManualClock", "SystemClock"), "seatledger.application.clock"),
    **dict.fromkeys(
        (
            "AssignTables",
            "AutoAssign",
            "CancelBooking",
            "ChangePolicy",
            "Command",
            "CompleteBooking",
            "ConfirmHold",
            "CreateRestaurant",
            "DefineTable",
            "DefineZone",
            "ExpireHolds",
            "ExtendHold",
            "LinkTables",
            "MarkNoShow",
            "PlaceHold",
            "QuoteBooking",
            "RegisterBooking",
            "ReleaseHold",
            "UnassignTables",
            "UnlinkTables",
        ),
        "seatledger.application.commands",
    ),
    **dict.fromkeys(
        (
            "AssignmentResult",
            "AutoAssignResult",
            "BookingView",
            "CandidateView",
            "DayView",
            "ExtendResult",
            "HoldView",
            "Member",
            "QuoteResult",
            "ReleaseResult",
            "RestaurantView",
            "SkippedCandidate",
        ),
        "seatledger.application.results",
    ),
    "AssignmentService": "seatledger.application.service",
    **dict.fromkeys(("InfrastructureCode", "http_status"), "seatledger.application.errors"),
    "Settings": "seatledger.application.settings",
    **dict.fromkeys(
        ("JsonFormatter", "RecordingSink", "Telemetry"), "seatledger.application.telemetry"
    ),
    **dict.fromkeys(
        ("ErrorCode", "PolicyDriftError", "SeatLedgerError"), "seatledger.domain.errors"
    ),
    **dict.fromkeys(("Table", "Zone"), "seatledger.domain.layout"),
    **dict.fromkeys(
        ("FallbackService", "Service", "TurnBand", "VenuePolicy"), "seatledger.domain.policy"
    ),
    "Window": "seatledger.domain.values",
}

__all__ = [
    "AssignTables",
    "AssignmentResult",
    "AssignmentService",
    "AutoAssign",
    "AutoAssignResult",
    "BookingView",
    "CancelBooking",
    "CandidateView",
    "ChangePolicy",
    "Clock",
    "Command",
    "CompleteBooking",
    "ConfirmHold",
    "CreateRestaurant",
    "DayView",
    "DefineTable",
    "DefineZone",
    "ErrorCode",
    "ExpireHolds",
    "ExtendHold",
    "ExtendResult",
    "FallbackService",
    "HoldView",
    "InfrastructureCode",
    "JsonFormatter",
    "LinkTables",
    "ManualClock",
    "MarkNoShow",
    "Member",
    "PlaceHold",
    "PolicyDriftError",
    "QuoteBooking",
    "QuoteResult",
    "RecordingSink",
    "RegisterBooking",
    "ReleaseHold",
    "ReleaseResult",
    "RestaurantView",
    "SeatLedgerError",
    "Service",
    "Settings",
    "SkippedCandidate",
    "SystemClock",
    "Table",
    "Telemetry",
    "TurnBand",
    "UnassignTables",
    "UnlinkTables",
    "VenuePolicy",
    "Window",
    "Zone",
    "http_status",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)

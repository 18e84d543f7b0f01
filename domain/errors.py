"""The one error hierarchy of seatledger.

Every failure a caller can see is a :class:`SeatLedgerError` with a stable ``code`` (the contract;
messages may be reworded), a human ``message``, machine-readable ``details`` and an actionable
``hint``. Families are subclasses so callers can ``except`` a whole group; the code table below
is the single source for meanings, default hints and the HTTP status a web layer should use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Literal


class ErrorCode(StrEnum):
    INVALID_INPUT = "INVALID_INPUT"
    # lookups
    RESTAURANT_NOT_FOUND = "RESTAURANT_NOT_FOUND"
    RESTAURANT_EXISTS = "RESTAURANT_EXISTS"
    BOOKING_NOT_FOUND = "BOOKING_NOT_FOUND"
    BOOKING_EXISTS = "BOOKING_EXISTS"
    HOLD_NOT_FOUND = "HOLD_NOT_FOUND"
    TABLE_NOT_FOUND = "TABLE_NOT_FOUND"
    ZONE_NOT_FOUND = "ZONE_NOT_FOUND"
    # windows
    SERVICE_OVERRUN = "SERVICE_OVERRUN"
    SERVICE_NOT_FOUND = "SERVICE_NOT_FOUND"
    # holds
    HOLD_CONFLICT = "HOLD_CONFLICT"
    HOLD_EXPIRED = "HOLD_EXPIRED"
    HOLD_NOT_ACTIVE = "HOLD_NOT_ACTIVE"
    HOLD_EMPTY = "HOLD_EMPTY"
    HOLD_METADATA_INCOMPLETE = "HOLD_METADATA_INCOMPLETE"
    HOLD_BOOKING_MISMATCH = "HOLD_BOOKING_MISMATCH"
    HOLD_RESTAURANT_MISMATCH = "HOLD_RESTAURANT_MISMATCH"
    HOLD_RATE_LIMITED = "HOLD_RATE_LIMITED"
    HOLD_FORBIDDEN = "HOLD_FORBIDDEN"
    # allocation
    TABLES_REQUIRED = "TABLES_REQUIRED"
    TABLE_INACTIVE = "TABLE_INACTIVE"
    ZONE_MISMATCH = "ZONE_MISMATCH"
    ZONE_LOCKED = "ZONE_LOCKED"
    TABLE_IMMUTABLE = "TABLE_IMMUTABLE"
    ADJACENCY_INVALID = "ADJACENCY_INVALID"
    CAPACITY_INSUFFICIENT = "CAPACITY_INSUFFICIENT"
    SLACK_BUDGET_EXCEEDED = "SLACK_BUDGET_EXCEEDED"
    ASSIGNMENT_CONFLICT = "ASSIGNMENT_CONFLICT"
    BOOKING_CLOSED = "BOOKING_CLOSED"
    # idempotency and concurrency
    IDEMPOTENCY_MISMATCH = "IDEMPOTENCY_MISMATCH"
    CONCURRENCY_CONFLICT = "CONCURRENCY_CONFLICT"
    # drift
    POLICY_DRIFT = "POLICY_DRIFT"
    POLICY_REQUOTE_FAILED = "POLICY_REQUOTE_FAILED"
    # read side and infrastructure
    TABLE_AVAILABILITY_QUERY_FAILED = "TABLE_AVAILABILITY_QUERY_FAILED"
    STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"


@dataclass(frozen=True)
class CodeSpec:
    """What a code means, what to do about it, and how a web layer should answer it."""

    meaning: str
    hint: str
    http_status: int


CODE_SPECS: Mapping[ErrorCode, CodeSpec] = {
    ErrorCode.INVALID_INPUT: CodeSpec(
        "The command is malformed: wrong types, naive datetimes, negative sizes, unknown fields.",
        "Fix the fields named in details.errors and send the command again.",
        422,
    ),
    ErrorCode.RESTAURANT_NOT_FOUND: CodeSpec(
        "No restaurant with this id exists.",
        "Create the restaurant first, or check the restaurant id.",
        404,
    ),
    ErrorCode.RESTAURANT_EXISTS: CodeSpec(
        "A restaurant with this id already exists.",
        "Use the layout commands to change an existing restaurant.",
        409,
    ),
    ErrorCode.BOOKING_NOT_FOUND: CodeSpec(
        "No booking with this id exists in the caller's restaurant.",
        "Register the booking first, or check the restaurant and booking ids.",
        404,
    ),
    ErrorCode.BOOKING_EXISTS: CodeSpec(
        "A different booking with this id is already registered in this restaurant.",
        "Use a new booking id; re-sending the identical registration is safe.",
        409,
    ),
    ErrorCode.HOLD_NOT_FOUND: CodeSpec(
        "No hold with this id exists anywhere in the service.",
        "Place a new hold; hold ids come from place_hold results.",
        404,
    ),
    ErrorCode.TABLE_NOT_FOUND: CodeSpec(
        "One or more table ids are unknown in this restaurant.",
        "Use table ids of the booking's restaurant (details.tables lists the unknown ones).",
        404,
    ),
    ErrorCode.ZONE_NOT_FOUND: CodeSpec(
        "The zone is unknown in this restaurant.",
        "Define the zone before placing tables in it.",
        404,
    ),
    ErrorCode.SERVICE_OVERRUN: CodeSpec(
        "The booking would end after its service closes and the service allows no overrun.",
        "Offer an earlier start time or a service that allows overrun.",
        422,
    ),
    ErrorCode.SERVICE_NOT_FOUND: CodeSpec(
        "The start time lies outside every service (strict mode) or the named service is unknown.",
        "Pick a time inside a service, name an existing service, or disable strict services.",
        422,
    ),
    ErrorCode.HOLD_CONFLICT: CodeSpec(
        "A live hold of another booking overlaps on these tables.",
        "Choose other tables or retry after the hold in details.holds expires.",
        409,
    ),
    ErrorCode.HOLD_EXPIRED: CodeSpec(
        "The hold has expired (now >= expires_at).",
        "Place a new hold and confirm it before it expires.",
        409,
    ),
    ErrorCode.HOLD_NOT_ACTIVE: CodeSpec(
        "The hold was already consumed or released.",
        "Place a new hold; a consumed hold's assignment is visible on the booking.",
        409,
    ),
    ErrorCode.HOLD_EMPTY: CodeSpec(
        "The hold has no tables.",
        "Place a new hold with at least one table.",
        422,
    ),
    ErrorCode.HOLD_METADATA_INCOMPLETE: CodeSpec(
        "The hold lacks snapshot metadata needed to check drift (details.missing).",
        "Release the hold and place a new one; it will carry a full snapshot.",
        409,
    ),
    ErrorCode.HOLD_BOOKING_MISMATCH: CodeSpec(
        "The hold belongs to a different booking.",
        "Confirm the hold with the booking it was placed for.",
        409,
    ),
    ErrorCode.HOLD_RESTAURANT_MISMATCH: CodeSpec(
        "The hold belongs to another restaurant than the booking.",
        "Use a hold placed in the booking's own restaurant.",
        403,
    ),
    ErrorCode.HOLD_RATE_LIMITED: CodeSpec(
        "This actor placed too many holds for this booking in the rate window.",
        "Wait until the window in details passes, or confirm an existing hold.",
        429,
    ),
    ErrorCode.HOLD_FORBIDDEN: CodeSpec(
        "Only the hold's creator or a manager may do this to the hold.",
        "Ask the hold's creator or a manager, or place your own hold.",
        403,
    ),
    ErrorCode.TABLES_REQUIRED: CodeSpec(
        "The command names no tables.",
        "Name at least one table.",
        422,
    ),
    ErrorCode.TABLE_INACTIVE: CodeSpec(
        "One or more tables are inactive.",
        "Choose active tables (details.tables lists the inactive ones).",
        409,
    ),
    ErrorCode.ZONE_MISMATCH: CodeSpec(
        "The selection spans more than one zone.",
        "Choose tables of a single zone.",
        422,
    ),
    ErrorCode.ZONE_LOCKED: CodeSpec(
        "The booking already has tables in another zone.",
        "Choose tables in the booking's zone, or move it with replace=True.",
        409,
    ),
    ErrorCode.TABLE_IMMUTABLE: CodeSpec(
        "A fixed (non-movable) table cannot be combined with others.",
        "Use the fixed table alone, or combine only movable tables.",
        422,
    ),
    ErrorCode.ADJACENCY_INVALID: CodeSpec(
        "The combination is not connected through adjacency edges.",
        "Choose tables that form one connected group, or relax adjacency if policy allows.",
        422,
    ),
    ErrorCode.CAPACITY_INSUFFICIENT: CodeSpec(
        "The tables seat fewer guests than the party size.",
        "Add tables or choose larger ones.",
        422,
    ),
    ErrorCode.SLACK_BUDGET_EXCEEDED: CodeSpec(
        "The tables waste more seats than the policy's slack budget allows.",
        "Choose smaller tables for this party.",
        422,
    ),
    ErrorCode.ASSIGNMENT_CONFLICT: CodeSpec(
        "Another booking holds one of these tables in an overlapping window.",
        "Choose other tables; details names the blocking booking, tables and window.",
        409,
    ),
    ErrorCode.BOOKING_CLOSED: CodeSpec(
        "The booking is cancelled, no-show or completed.",
        "Closed bookings cannot take tables; register a new booking.",
        409,
    ),
    ErrorCode.IDEMPOTENCY_MISMATCH: CodeSpec(
        "The idempotency key was already used for this booking with a different table set.",
        "Use a new idempotency key for a different request.",
        409,
    ),
    # 503, not 409: the command was never judged against the day (it lost every race for the
    # save), nothing was written, and re-sending it can succeed; generic HTTP clients retry a
    # 503 with Retry-After and treat a 409 as final.
    ErrorCode.CONCURRENCY_CONFLICT: CodeSpec(
        "Concurrent writers kept changing the same service day; retries were exhausted.",
        "Retry the command; nothing was written.",
        503,
    ),
    ErrorCode.POLICY_DRIFT: CodeSpec(
        "The layout or policy changed since the hold was placed (details.kind says what).",
        "Refresh the floor, re-validate the selection and place a new hold.",
        409,
    ),
    ErrorCode.POLICY_REQUOTE_FAILED: CodeSpec(
        "After drift, a new quote found no candidate (details.reason).",
        "Offer the guest another time or seat them by hand.",
        409,
    ),
    ErrorCode.TABLE_AVAILABILITY_QUERY_FAILED: CodeSpec(
        "The availability query failed for a reason other than a missing schema object.",
        "Retry; if it persists check the database (details.sqlstate).",
        503,
    ),
    ErrorCode.STORAGE_UNAVAILABLE: CodeSpec(
        "The event store could not be reached or failed.",
        "Retry later; the command may be re-sent safely with the same command id.",
        503,
    ),
    ErrorCode.INTERNAL_ERROR: CodeSpec(
        "An unexpected failure inside seatledger (a bug).",
        "Report it with the log line carrying this error; the command wrote nothing.",
        500,
    ),
}


class SeatLedgerError(Exception):
    """Base of every error seatledger raises through its API."""

    codes: ClassVar[frozenset[ErrorCode]] = frozenset()

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        hint: str | None = None,
    ) -> None:
        if self.codes and code not in self.codes:
            raise ValueError(f"{type(self).__name__} cannot carry code {code}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.hint = hint or CODE_SPECS[code].hint

    @property
    def http_status(self) -> int:
        return CODE_SPECS[self.code].http_status

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": str(self.code),
            "message": self.message,
            "details": self.details,
            "hint": self.hint,
        }

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!s}, message={self.message!r})"


class InvalidInputError(SeatLedgerError):
    codes = frozenset({ErrorCode.INVALID_INPUT})

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(ErrorCode.INVALID_INPUT, message, details=details)


class NotFoundError(SeatLedgerError):
    codes = frozenset(
        {
            ErrorCode.RESTAURANT_NOT_FOUND,
            ErrorCode.BOOKING_NOT_FOUND,
            ErrorCode.HOLD_NOT_FOUND,
            ErrorCode.TABLE_NOT_FOUND,
            ErrorCode.ZONE_NOT_FOUND,
        }
    )


class AlreadyExistsError(SeatLedgerError):
    codes = frozenset({ErrorCode.RESTAURANT_EXISTS, ErrorCode.BOOKING_EXISTS})


class WindowError(SeatLedgerError):
    codes = frozenset({ErrorCode.SERVICE_OVERRUN, ErrorCode.SERVICE_NOT_FOUND})


class HoldError(SeatLedgerError):
    codes = frozenset(
        {
            ErrorCode.HOLD_CONFLICT,
            ErrorCode.HOLD_EXPIRED,
            ErrorCode.HOLD_NOT_ACTIVE,
            ErrorCode.HOLD_EMPTY,
            ErrorCode.HOLD_METADATA_INCOMPLETE,
            ErrorCode.HOLD_BOOKING_MISMATCH,
            ErrorCode.HOLD_RESTAURANT_MISMATCH,
            ErrorCode.HOLD_RATE_LIMITED,
            ErrorCode.HOLD_FORBIDDEN,
        }
    )


class AllocationError(SeatLedgerError):
    codes = frozenset(
        {
            ErrorCode.TABLES_REQUIRED,
            ErrorCode.TABLE_INACTIVE,
            ErrorCode.ZONE_MISMATCH,
            ErrorCode.ZONE_LOCKED,
            ErrorCode.TABLE_IMMUTABLE,
            ErrorCode.ADJACENCY_INVALID,
            ErrorCode.CAPACITY_INSUFFICIENT,
            ErrorCode.SLACK_BUDGET_EXCEEDED,
            ErrorCode.ASSIGNMENT_CONFLICT,
            ErrorCode.BOOKING_CLOSED,
        }
    )


class IdempotencyMismatchError(SeatLedgerError):
    codes = frozenset({ErrorCode.IDEMPOTENCY_MISMATCH})

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(ErrorCode.IDEMPOTENCY_MISMATCH, message, details=details)


class ConcurrencyConflictError(SeatLedgerError):
    codes = frozenset({ErrorCode.CONCURRENCY_CONFLICT})

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(ErrorCode.CONCURRENCY_CONFLICT, message, details=details)


DriftKind = Literal["policy", "zone", "adjacency", "table"]
DRIFT_KINDS: tuple[DriftKind, ...] = ("policy", "zone", "adjacency", "table")


class PolicyDriftError(SeatLedgerError):
    """The hold's snapshot no longer matches the floor: a precondition of confirm failed.

    ``kind`` is the first of policy, zone, adjacency, table that changed; ``details`` lists
    every difference so an operator sees the whole picture.
    """

    codes = frozenset({ErrorCode.POLICY_DRIFT})

    def __init__(
        self, kind: DriftKind, message: str, *, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(ErrorCode.POLICY_DRIFT, message, details={"kind": kind, **(details or {})})
        self.kind: DriftKind = kind
        #: True once the rejection was recorded as an event that the caller must save.
        self.recorded = False


class PolicyRequoteFailedError(SeatLedgerError):
    codes = frozenset({ErrorCode.POLICY_REQUOTE_FAILED})

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(ErrorCode.POLICY_REQUOTE_FAILED, message, details=details)


class ReadModelError(SeatLedgerError):
    codes = frozenset({ErrorCode.TABLE_AVAILABILITY_QUERY_FAILED})


class InfrastructureError(SeatLedgerError):
    codes = frozenset({ErrorCode.STORAGE_UNAVAILABLE, ErrorCode.INTERNAL_ERROR})

"""The one error hierarchy of seatledger, and the codes of the domain.

Every failure a caller can see is a :class:`SeatLedgerError` with a stable ``code`` (the contract;
messages may be reworded), a human ``message``, machine-readable ``details`` and an actionable
``hint``. Families are subclasses so callers can ``except`` a whole group; the code table below
is the single source for the domain codes' meanings and default hints.

Codes the domain can never raise (storage failures, exhausted concurrency retries, bugs) and the
HTTP status of every code belong to the API boundary: :mod:`seatledger.application.errors`.
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
    # idempotency
    IDEMPOTENCY_MISMATCH = "IDEMPOTENCY_MISMATCH"
    COMMAND_ID_REUSED = "COMMAND_ID_REUSED"
    # drift
    POLICY_DRIFT = "POLICY_DRIFT"
    POLICY_REQUOTE_FAILED = "POLICY_REQUOTE_FAILED"
    # read side (raised by the projections, which cannot import the application)
    TABLE_AVAILABILITY_QUERY_FAILED = "TABLE_AVAILABILITY_QUERY_FAILED"


@dataclass(frozen=True)
class CodeSpec:
    """What a code means, and what to do about it."""

    meaning: str
    hint: str


CODE_SPECS: Mapping[ErrorCode, CodeSpec] = {
    ErrorCode.INVALID_INPUT: CodeSpec(
        "The command is malformed: wrong types, naive datetimes, negative sizes, unknown fields.",
        "Fix the fields named in details.errors and send the command again.",
    ),
    ErrorCode.RESTAURANT_NOT_FOUND: CodeSpec(
        "No restaurant with this id exists.",
        "Create the restaurant first, or check the restaurant id.",
    ),
    ErrorCode.RESTAURANT_EXISTS: CodeSpec(
        "A restaurant with this id already exists.",
        "Use the layout commands to change an existing restaurant.",
    ),
    ErrorCode.BOOKING_NOT_FOUND: CodeSpec(
        "No booking with this id exists in the caller's restaurant.",
        "Register the booking first, or check the restaurant and booking ids.",
    ),
    ErrorCode.BOOKING_EXISTS: CodeSpec(
        "A different booking with this id is already registered in this restaurant.",
        "Use a new booking id; re-sending the identical registration is safe.",
    ),
    ErrorCode.HOLD_NOT_FOUND: CodeSpec(
        "No hold with this id exists anywhere in the service.",
        "Place a new hold; hold ids come from place_hold results.",
    ),
    ErrorCode.TABLE_NOT_FOUND: CodeSpec(
        "One or more table ids are unknown in this restaurant.",
        "Use table ids of the booking's restaurant (details.tables lists the unknown ones).",
    ),
    ErrorCode.ZONE_NOT_FOUND: CodeSpec(
        "The zone is unknown in this restaurant.",
        "Define the zone before placing tables in it.",
    ),
    ErrorCode.SERVICE_OVERRUN: CodeSpec(
        "The booking would end after its service closes and the service allows no overrun.",
        "Offer an earlier start time or a service that allows overrun.",
    ),
    ErrorCode.SERVICE_NOT_FOUND: CodeSpec(
        "The start time lies outside every service (strict mode) or the named service is unknown.",
        "Pick a time inside a service, name an existing service, or disable strict services.",
    ),
    ErrorCode.HOLD_CONFLICT: CodeSpec(
        "A live hold of another booking overlaps on these tables.",
        "Choose other tables or retry after the hold in details.holds expires.",
    ),
    ErrorCode.HOLD_EXPIRED: CodeSpec(
        "The hold has expired (now >= expires_at).",
        "Place a new hold and confirm it before it expires.",
    ),
    ErrorCode.HOLD_NOT_ACTIVE: CodeSpec(
        "The hold was already consumed or released.",
        "Place a new hold; a consumed hold's assignment is visible on the booking.",
    ),
    ErrorCode.HOLD_EMPTY: CodeSpec(
        "The hold has no tables.",
        "Place a new hold with at least one table.",
    ),
    ErrorCode.HOLD_METADATA_INCOMPLETE: CodeSpec(
        "The hold lacks snapshot metadata needed to check drift (details.missing).",
        "Release the hold and place a new one; it will carry a full snapshot.",
    ),
    ErrorCode.HOLD_BOOKING_MISMATCH: CodeSpec(
        "The hold belongs to a different booking.",
        "Confirm the hold with the booking it was placed for.",
    ),
    ErrorCode.HOLD_RESTAURANT_MISMATCH: CodeSpec(
        "The hold belongs to another restaurant than the booking.",
        "Use a hold placed in the booking's own restaurant.",
    ),
    ErrorCode.HOLD_RATE_LIMITED: CodeSpec(
        "This actor placed too many holds for this booking in the rate window.",
        "Wait until the window in details passes, or confirm an existing hold.",
    ),
    ErrorCode.HOLD_FORBIDDEN: CodeSpec(
        "Only the hold's creator or a manager may do this to the hold.",
        "Ask the hold's creator or a manager, or place your own hold.",
    ),
    ErrorCode.TABLES_REQUIRED: CodeSpec(
        "The command names no tables.",
        "Name at least one table.",
    ),
    ErrorCode.TABLE_INACTIVE: CodeSpec(
        "One or more tables are inactive.",
        "Choose active tables (details.tables lists the inactive ones).",
    ),
    ErrorCode.ZONE_MISMATCH: CodeSpec(
        "The selection spans more than one zone.",
        "Choose tables of a single zone.",
    ),
    ErrorCode.ZONE_LOCKED: CodeSpec(
        "The booking already has tables in another zone.",
        "Choose tables in the booking's zone, or move it with replace=True.",
    ),
    ErrorCode.TABLE_IMMUTABLE: CodeSpec(
        "A fixed (non-movable) table cannot be combined with others.",
        "Use the fixed table alone, or combine only movable tables.",
    ),
    ErrorCode.ADJACENCY_INVALID: CodeSpec(
        "The combination is not connected through adjacency edges.",
        "Choose tables that form one connected group, or relax adjacency if policy allows.",
    ),
    ErrorCode.CAPACITY_INSUFFICIENT: CodeSpec(
        "The tables seat fewer guests than the party size.",
        "Add tables or choose larger ones.",
    ),
    ErrorCode.SLACK_BUDGET_EXCEEDED: CodeSpec(
        "The tables waste more seats than the policy's slack budget allows.",
        "Choose smaller tables for this party.",
    ),
    ErrorCode.ASSIGNMENT_CONFLICT: CodeSpec(
        "Another booking holds one of these tables in an overlapping window.",
        "Choose other tables; details names the blocking booking, tables and window.",
    ),
    ErrorCode.BOOKING_CLOSED: CodeSpec(
        "The booking is cancelled, no-show or completed.",
        "Closed bookings cannot take tables; register a new booking.",
    ),
    ErrorCode.IDEMPOTENCY_MISMATCH: CodeSpec(
        "The idempotency key was already used for this booking with a different table set.",
        "Use a new idempotency key for a different request.",
    ),
    ErrorCode.COMMAND_ID_REUSED: CodeSpec(
        "The command id was already used in this restaurant for another command "
        "(another type, booking or payload).",
        "Use a new command id for a new command; re-send a command only unchanged.",
    ),
    ErrorCode.POLICY_DRIFT: CodeSpec(
        "The layout or policy changed since the hold was placed (details.kind says what).",
        "Refresh the floor, re-validate the selection and place a new hold.",
    ),
    ErrorCode.POLICY_REQUOTE_FAILED: CodeSpec(
        "After drift, a new quote found no candidate (details.reason).",
        "Offer the guest another time or seat them by hand.",
    ),
    ErrorCode.TABLE_AVAILABILITY_QUERY_FAILED: CodeSpec(
        "The availability query failed for a reason other than a missing schema object.",
        "Retry; if it persists check the database (details.sqlstate).",
    ),
}


class SeatLedgerError(Exception):
    """Base of every error seatledger raises through its API."""

    #: The codes this family may carry (empty: any); a code names the family it belongs to.
    codes: ClassVar[frozenset[StrEnum]] = frozenset()

    def __init__(
        self,
        code: StrEnum,
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
        self.hint = hint or self.default_hint(code)

    @classmethod
    def default_hint(cls, code: StrEnum) -> str:
        """The hint of the code table; families with codes of their own table override it."""
        return CODE_SPECS[ErrorCode(code)].hint

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


class CommandIdReusedError(SeatLedgerError):
    codes = frozenset({ErrorCode.COMMAND_ID_REUSED})

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(ErrorCode.COMMAND_ID_REUSED, message, details=details)


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


class PolicyRequoteFailedError(SeatLedgerError):
    codes = frozenset({ErrorCode.POLICY_REQUOTE_FAILED})

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(ErrorCode.POLICY_REQUOTE_FAILED, message, details=details)


class ReadModelError(SeatLedgerError):
    codes = frozenset({ErrorCode.TABLE_AVAILABILITY_QUERY_FAILED})


#: Every family of domain codes (each code belongs to exactly one).
FAMILIES: tuple[type[SeatLedgerError], ...] = (
    InvalidInputError,
    NotFoundError,
    AlreadyExistsError,
    WindowError,
    HoldError,
    AllocationError,
    IdempotencyMismatchError,
    CommandIdReusedError,
    PolicyDriftError,
    PolicyRequoteFailedError,
    ReadModelError,
)


def restore_error(
    code: str, message: str, details: Mapping[str, Any], hint: str
) -> SeatLedgerError:
    """A recorded error as its family raised it (the command ledger replays rejections it
    recorded)."""
    error_code = ErrorCode(code)
    family = next(cls for cls in FAMILIES if error_code in cls.codes)
    error = family.__new__(family)
    SeatLedgerError.__init__(error, error_code, message, details=details, hint=hint)
    if isinstance(error, PolicyDriftError):
        error.kind = details["kind"]
    return error

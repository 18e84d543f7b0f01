"""Errors at the API boundary: the infrastructure codes, and the HTTP status of every code.

The domain's codes (:class:`~seatledger.domain.errors.ErrorCode`) name rules of the model. The
infrastructure codes name failures the domain can never raise; the application raises them:

* ``CONCURRENCY_CONFLICT`` — the unit of work ran out of retries against other writers
  (optimistic concurrency is a property of the store, not a rule of the model);
* ``STORAGE_UNAVAILABLE`` — the event store failed, or could not be opened;
* ``INTERNAL_ERROR`` — an unexpected exception (a bug), translated at the boundary;
* ``RESTAURANT_MOVING`` — the restaurant is being switched to another shard (a few seconds;
  :mod:`.shards`), nothing was written.

``TABLE_AVAILABILITY_QUERY_FAILED`` stays with the domain codes: the read side raises it, and
``projections/`` may not import the application.

Which HTTP status a web layer should answer with is not the model's business either:
:data:`HTTP_STATUS` maps every code to it, and :func:`http_status` reads it for an error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from enum import StrEnum

import psycopg
from eventsourcing.persistence import PersistenceError

from seatledger.domain.errors import CODE_SPECS, CodeSpec, ErrorCode, SeatLedgerError


class InfrastructureCode(StrEnum):
    CONCURRENCY_CONFLICT = "CONCURRENCY_CONFLICT"
    STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    RESTAURANT_MOVING = "RESTAURANT_MOVING"


INFRASTRUCTURE_SPECS: Mapping[InfrastructureCode, CodeSpec] = {
    InfrastructureCode.CONCURRENCY_CONFLICT: CodeSpec(
        "Concurrent writers kept changing the same service day; retries were exhausted.",
        "Retry the command; nothing was written.",
    ),
    InfrastructureCode.STORAGE_UNAVAILABLE: CodeSpec(
        "The event store could not be reached or failed.",
        "Retry later; the command may be re-sent safely with the same command id.",
    ),
    InfrastructureCode.INTERNAL_ERROR: CodeSpec(
        "An unexpected failure inside seatledger (a bug).",
        "Report it with the log line carrying this error; the command wrote nothing.",
    ),
    InfrastructureCode.RESTAURANT_MOVING: CodeSpec(
        "The restaurant is being switched to another shard; its commands wait for the switch.",
        "Retry in a few seconds with the same command id; nothing was written.",
    ),
}

#: Every code a caller can see: the domain's, then the infrastructure's.
ALL_CODES: tuple[ErrorCode | InfrastructureCode, ...] = (*ErrorCode, *InfrastructureCode)

#: What the storage drivers raise when the event store fails (translated to STORAGE_UNAVAILABLE).
STORAGE_ERRORS: tuple[type[Exception], ...] = (
    PersistenceError,
    psycopg.Error,
    sqlite3.Error,
    OSError,
)


class _BoundaryError(SeatLedgerError):
    """Base of the infrastructure families: their hints come from the table above."""

    @classmethod
    def default_hint(cls, code: StrEnum) -> str:
        return INFRASTRUCTURE_SPECS[InfrastructureCode(code)].hint


class ConcurrencyConflictError(_BoundaryError):
    codes = frozenset({InfrastructureCode.CONCURRENCY_CONFLICT})

    def __init__(self, message: str, *, details: Mapping[str, object] | None = None) -> None:
        super().__init__(InfrastructureCode.CONCURRENCY_CONFLICT, message, details=details)


class InfrastructureError(_BoundaryError):
    codes = frozenset({InfrastructureCode.STORAGE_UNAVAILABLE, InfrastructureCode.INTERNAL_ERROR})


class RestaurantMovingError(_BoundaryError):
    """Retryable: the restaurant's shard is being switched (only during the switch)."""

    codes = frozenset({InfrastructureCode.RESTAURANT_MOVING})

    def __init__(self, message: str, *, details: Mapping[str, object] | None = None) -> None:
        super().__init__(InfrastructureCode.RESTAURANT_MOVING, message, details=details)


def code_spec(code: str) -> CodeSpec:
    """The meaning and default hint of any code."""
    if code in InfrastructureCode.__members__:
        return INFRASTRUCTURE_SPECS[InfrastructureCode(code)]
    return CODE_SPECS[ErrorCode(code)]


#: The HTTP status a web layer should answer each code with. A change here is a breaking
#: change for callers that map errors to responses.
HTTP_STATUS: Mapping[str, int] = {
    ErrorCode.INVALID_INPUT: 422,
    ErrorCode.RESTAURANT_NOT_FOUND: 404,
    ErrorCode.RESTAURANT_EXISTS: 409,
    ErrorCode.BOOKING_NOT_FOUND: 404,
    ErrorCode.BOOKING_EXISTS: 409,
    ErrorCode.HOLD_NOT_FOUND: 404,
    ErrorCode.TABLE_NOT_FOUND: 404,
    ErrorCode.ZONE_NOT_FOUND: 404,
    ErrorCode.SERVICE_OVERRUN: 422,
    ErrorCode.SERVICE_NOT_FOUND: 422,
    ErrorCode.HOLD_CONFLICT: 409,
    ErrorCode.HOLD_EXPIRED: 409,
    ErrorCode.HOLD_NOT_ACTIVE: 409,
    ErrorCode.HOLD_EMPTY: 422,
    ErrorCode.HOLD_METADATA_INCOMPLETE: 409,
    ErrorCode.HOLD_BOOKING_MISMATCH: 409,
    ErrorCode.HOLD_RESTAURANT_MISMATCH: 403,
    ErrorCode.HOLD_RATE_LIMITED: 429,
    ErrorCode.HOLD_FORBIDDEN: 403,
    ErrorCode.TABLES_REQUIRED: 422,
    ErrorCode.TABLE_INACTIVE: 409,
    ErrorCode.ZONE_MISMATCH: 422,
    ErrorCode.ZONE_LOCKED: 409,
    ErrorCode.TABLE_IMMUTABLE: 422,
    ErrorCode.ADJACENCY_INVALID: 422,
    ErrorCode.CAPACITY_INSUFFICIENT: 422,
    ErrorCode.SLACK_BUDGET_EXCEEDED: 422,
    ErrorCode.ASSIGNMENT_CONFLICT: 409,
    ErrorCode.BOOKING_CLOSED: 409,
    ErrorCode.IDEMPOTENCY_MISMATCH: 409,
    ErrorCode.COMMAND_ID_REUSED: 409,
    ErrorCode.POLICY_DRIFT: 409,
    ErrorCode.POLICY_REQUOTE_FAILED: 409,
    ErrorCode.TABLE_AVAILABILITY_QUERY_FAILED: 503,
    # 503, not 409: the command lost every race for the save, nothing was written, and a
    # re-send can succeed; generic HTTP clients retry a 503 with Retry-After, not a 409
    InfrastructureCode.CONCURRENCY_CONFLICT: 503,
    InfrastructureCode.STORAGE_UNAVAILABLE: 503,
    InfrastructureCode.INTERNAL_ERROR: 500,
    # 503: a switch lasts seconds and a re-send with the same command id is safe
    InfrastructureCode.RESTAURANT_MOVING: 503,
}


def http_status(error: SeatLedgerError | str) -> int:
    """The HTTP status for an error (or a code): ``http_status(err)`` in a web layer."""
    code = error.code if isinstance(error, SeatLedgerError) else error
    return HTTP_STATUS[str(code)]

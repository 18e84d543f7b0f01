"""Errors as problem documents (RFC 9457, ``application/problem+json``).

Every failure the HTTP service answers is one problem document: ``type`` (a URI per code,
``/problems/<CODE>``, which the service itself serves as documentation), ``title`` (what the
code means), ``status``, ``detail`` (this occurrence) and the extension members ``code``,
``details`` and ``hint`` of :meth:`SeatLedgerError.to_dict`. A client switches on ``code``.

``Retry-After`` (seconds) is sent where re-sending the same command later can succeed: a rate
limit (429) until its window passes, and the 503s, ``CONCURRENCY_CONFLICT`` among them (the
service already re-ran the command on fresh state; nothing was written). Re-send with the same
command id (``Idempotency-Key``) and a retry can never apply a command twice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from seatledger.application.errors import (
    ALL_CODES,
    InfrastructureCode,
    InfrastructureError,
    code_spec,
    http_status,
)
from seatledger.domain.errors import ErrorCode, InvalidInputError, SeatLedgerError

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("seatledger.http")


@dataclass(frozen=True)
class Catalogued:
    """One entry of the problem catalogue: what a code means, what to do, and its status."""

    meaning: str
    hint: str
    http_status: int


class AccessCode(StrEnum):
    """Codes of the HTTP layer's own refusals (the service API never raises these)."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    TENANT_FORBIDDEN = "TENANT_FORBIDDEN"
    ROLE_FORBIDDEN = "ROLE_FORBIDDEN"


ACCESS_SPECS: Mapping[AccessCode, Catalogued] = {
    AccessCode.UNAUTHENTICATED: Catalogued(
        "The request carries no API key, or one the service does not know.",
        "Send 'Authorization: Bearer <key>' with a key listed in the service's keys file.",
        401,
    ),
    AccessCode.TENANT_FORBIDDEN: Catalogued(
        "The API key is not bound to this restaurant.",
        "Use a key issued for this restaurant; nothing was read or written.",
        403,
    ),
    AccessCode.ROLE_FORBIDDEN: Catalogued(
        "The API key's role may not run this operation.",
        "Use a key with one of the roles in details.allowed_roles; nothing was written.",
        403,
    ),
}

#: Seconds a client should wait before re-sending, per code (``HOLD_RATE_LIMITED`` waits
#: until the ``retry_at`` of its details instead).
RETRY_AFTER_SECONDS: Mapping[str, int] = {
    InfrastructureCode.CONCURRENCY_CONFLICT: 1,
    ErrorCode.TABLE_AVAILABILITY_QUERY_FAILED: 2,
    InfrastructureCode.STORAGE_UNAVAILABLE: 5,
    InfrastructureCode.RESTAURANT_MOVING: 2,
}


class Problem(BaseModel):
    """The body of every error response (``application/problem+json``)."""

    type: str = Field(description="'/problems/<code>' (GET it for the code's documentation)")
    title: str = Field(description="what the code means (the same for every occurrence)")
    status: int
    detail: str = Field(description="what happened this time")
    code: str = Field(description="the stable error code: switch on this")
    details: dict[str, Any] = Field(description="ids, tables, windows behind the error")
    hint: str = Field(description="what the caller can do about it")


class ProblemType(BaseModel):
    """The documentation of one problem type (served at its ``type`` URI)."""

    type: str
    code: str
    title: str
    status: int
    hint: str
    retryable: bool = Field(description="re-sending later (same command id) can succeed")


class AccessError(Exception):
    """A refusal of the HTTP layer: no or unknown credentials, another tenant, a role."""

    def __init__(
        self, code: AccessCode, message: str, *, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = dict(details or {})


def problem_type_uri(code: str) -> str:
    return f"/problems/{code}"


def catalogue() -> dict[str, Catalogued]:
    """Every code a problem document can carry, with its meaning, hint and status."""
    service_codes = {
        str(code): Catalogued(code_spec(code).meaning, code_spec(code).hint, http_status(code))
        for code in ALL_CODES
    }
    return {**service_codes, **{str(code): spec for code, spec in ACCESS_SPECS.items()}}


def problem_type(code: str) -> ProblemType | None:
    spec = catalogue().get(code)
    if spec is None:
        return None
    return ProblemType(
        type=problem_type_uri(code),
        code=code,
        title=spec.meaning,
        status=spec.http_status,
        hint=spec.hint,
        retryable=code in RETRY_AFTER_SECONDS or code == ErrorCode.HOLD_RATE_LIMITED,
    )


def problem_response(
    code: str,
    detail: str,
    *,
    details: Mapping[str, Any] | None = None,
    hint: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    spec = catalogue()[code]
    body = Problem(
        type=problem_type_uri(code),
        title=spec.meaning,
        status=spec.http_status,
        detail=detail,
        code=code,
        details=dict(details or {}),
        hint=hint or spec.hint,
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=spec.http_status,
        headers=dict(headers or {}),
        media_type=PROBLEM_MEDIA_TYPE,
    )


def retry_after(err: SeatLedgerError, now: datetime) -> int | None:
    """Whole seconds until a re-send can succeed, or None when waiting does not help."""
    if err.code == ErrorCode.HOLD_RATE_LIMITED:
        retry_at = err.details.get("retry_at")
        if isinstance(retry_at, str):
            try:
                wait = (datetime.fromisoformat(retry_at) - now).total_seconds()
            except ValueError:
                return 1
            return max(1, math.ceil(wait))
        return 1
    return RETRY_AFTER_SECONDS.get(err.code)


def error_response(err: SeatLedgerError, now: datetime) -> JSONResponse:
    wait = retry_after(err, now)
    return problem_response(
        str(err.code),
        err.message,
        details=err.details,
        hint=err.hint,
        headers={"Retry-After": str(wait)} if wait is not None else None,
    )


def access_response(err: AccessError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if err.code == AccessCode.UNAUTHENTICATED else None
    return problem_response(str(err.code), err.message, details=err.details, headers=headers)


def validation_error(exc: RequestValidationError) -> InvalidInputError:
    """The request's own shape was wrong: the same ``details.errors`` as the service's
    ``INVALID_INPUT`` (body fields by their command name; never the offending value)."""
    errors = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        if loc[:1] == ["body"]:
            loc = loc[1:]
        errors.append(
            {
                "field": ".".join(loc) or "(root)",
                "error": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    return InvalidInputError(f"invalid request: {len(errors)} error(s)", details={"errors": errors})


def install_problem_handlers(app: FastAPI, now: Callable[[], datetime]) -> None:
    """Every error the app can answer becomes a problem document; ``now`` is the service's
    clock (a rate limit's ``retry_at`` is in its time)."""

    async def seatledger_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SeatLedgerError)
        return error_response(exc, now())

    async def access_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AccessError)
        return access_response(exc)

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(validation_error(exc), now())

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        """Unknown routes, wrong methods: no seatledger code, so ``about:blank``."""
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse(
            {
                "type": "about:blank",
                "title": HTTPStatus(exc.status_code).phrase,
                "status": exc.status_code,
                "detail": str(exc.detail),
            },
            status_code=exc.status_code,
            headers=exc.headers,
            media_type=PROBLEM_MEDIA_TYPE,
        )

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error answering %s %s", request.method, request.url.path, exc_info=exc)
        err = InfrastructureError(
            InfrastructureCode.INTERNAL_ERROR,
            f"unexpected failure: {type(exc).__name__}",
            details={"operation": request.url.path},
        )
        return error_response(err, now())

    app.add_exception_handler(SeatLedgerError, seatledger_error)
    app.add_exception_handler(AccessError, access_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


#: The error responses every operation documents (OpenAPI ranges).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "description": "A problem document (RFC 9457); `code` says which",
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    },
    "5XX": {
        "description": "A problem document; 503s carry Retry-After",
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    },
}

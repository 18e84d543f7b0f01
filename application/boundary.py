"""The API boundary: what goes in is validated, what comes out is a ``SeatLedgerError``.

Owns input validation (a malformed command becomes ``INVALID_INPUT``), error translation (a
storage failure becomes ``STORAGE_UNAVAILABLE``, anything unexpected ``INTERNAL_ERROR``; only
:class:`~seatledger.domain.errors.SeatLedgerError` escapes), the telemetry of every call (a
scope per command or query: duration, outcome, span; the rejection events), and the
``command_api`` / ``query_api`` decorators that put every public service method behind it.
The HTTP status of each code is part of the boundary too: :mod:`seatledger.application.errors`.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from seatledger.application.errors import STORAGE_ERRORS, InfrastructureCode, InfrastructureError
from seatledger.application.telemetry import Kind, Telemetry
from seatledger.domain.errors import InvalidInputError, PolicyDriftError, SeatLedgerError

C = TypeVar("C", bound=BaseModel)
R = TypeVar("R")
P = ParamSpec("P")

log = logging.getLogger("seatledger.service")


class Observed(Protocol):
    """What the boundary needs of the object behind it: somewhere to report."""

    telemetry: Telemetry


S = TypeVar("S", bound=Observed)


def parse_command(model: type[C], command: C | Mapping[str, Any], *, kind: str = "command") -> C:
    """Validate input into a command (or query) model; failures become ``INVALID_INPUT``."""
    try:
        return model.model_validate(command)
    except ValidationError as exc:
        raise InvalidInputError(
            f"invalid {model.__name__}: {exc.error_count()} error(s)",
            details={
                kind: model.__name__,
                "errors": [
                    {
                        "field": ".".join(str(part) for part in error["loc"]) or "(root)",
                        "error": error["msg"],
                        "type": error["type"],
                    }
                    for error in exc.errors(include_url=False)
                ],
            },
        ) from None


def guarded(
    telemetry: Telemetry,
    operation: str,
    call: Callable[[], R],
    *,
    kind: Kind = "query",
    subject: object = None,
) -> R:
    """Run one API call so that only SeatLedgerError escapes, and report the outcome: in a
    telemetry scope (its duration, span and metrics) named by ``kind`` and ``operation``,
    about the restaurant and booking ``subject`` names."""
    with telemetry.command(kind, operation, **_subject_ids(subject)) as scope:
        try:
            result = call()
        except SeatLedgerError as err:
            scope.finish("rejected", str(err.code))
            if isinstance(err, PolicyDriftError):
                scope.drift_kind = scope.drift_kind or err.kind
            reject(telemetry, operation, err, seconds=scope.seconds)
            raise
        except STORAGE_ERRORS as exc:
            scope.finish("failed", InfrastructureCode.STORAGE_UNAVAILABLE.value)
            raise _storage_failed(telemetry, operation, exc) from exc
        except Exception as exc:
            scope.finish("failed", InfrastructureCode.INTERNAL_ERROR.value)
            raise _internal_error(telemetry, operation, exc) from exc
        scope.finish("succeeded")
        return result


def _subject_ids(subject: object) -> dict[str, str | None]:
    """The restaurant and booking a command or query is about, when it names them (any
    input, even one that is not a mapping: it is about to become ``INVALID_INPUT``)."""
    ids: dict[str, str | None] = {}
    for name in ("restaurant_id", "booking_id"):
        if isinstance(subject, Mapping):
            value = subject.get(name)
        else:
            value = getattr(subject, name, None) if isinstance(subject, BaseModel) else None
        ids[name] = value if isinstance(value, str) else None
    return ids


def _storage_failed(telemetry: Telemetry, operation: str, exc: Exception) -> InfrastructureError:
    telemetry.emit("storage.failed", level=logging.ERROR, operation=operation, error=repr(exc))
    return InfrastructureError(
        InfrastructureCode.STORAGE_UNAVAILABLE,
        f"{operation} failed in the event store: {type(exc).__name__}",
        details={"operation": operation, "error": str(exc)},
    )


def _internal_error(telemetry: Telemetry, operation: str, exc: Exception) -> InfrastructureError:
    log.exception("internal error in %s", operation)
    telemetry.emit("command.failed", level=logging.ERROR, operation=operation, error=repr(exc))
    return InfrastructureError(
        InfrastructureCode.INTERNAL_ERROR,
        f"{operation} failed unexpectedly: {type(exc).__name__}",
        details={"operation": operation, "error": str(exc)},
    )


def reject(telemetry: Telemetry, operation: str, err: SeatLedgerError, *, seconds: float) -> None:
    """``command.rejected`` (commands and queries alike), with the drift kind for a drift
    rejection and the call's duration."""
    kind: dict[str, Any] = {"kind": err.kind} if isinstance(err, PolicyDriftError) else {}
    telemetry.emit(
        "command.rejected",
        operation=operation,
        code=str(err.code),
        **kind,
        details=err.details,
        seconds=round(seconds, 6),
    )


def command_api(
    model: type[C],
) -> Callable[[Callable[[S, C], R]], Callable[[S, C | Mapping[str, Any]], R]]:
    """Decorate a service method taking the validated ``model``."""

    def decorate(method: Callable[[S, C], R]) -> Callable[[S, C | Mapping[str, Any]], R]:
        @functools.wraps(method)
        def wrapper(self: S, command: C | Mapping[str, Any]) -> R:
            return guarded(
                self.telemetry,
                method.__name__,
                lambda: method(self, parse_command(model, command)),
                kind="command",
                subject=command,
            )

        return wrapper

    return decorate


def query_api(
    model: type[BaseModel],
) -> Callable[[Callable[Concatenate[S, P], R]], Callable[Concatenate[S, P], R]]:
    """Decorate a service query: its plain arguments are bound to ``model`` and validated
    like a command's (bad ones are ``INVALID_INPUT``) before the query runs; errors typed."""

    def decorate(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
        signature = inspect.signature(method)
        if set(signature.parameters) - {"self"} != set(model.model_fields):
            raise TypeError(f"{method.__name__}'s parameters are not {model.__name__}'s fields")

        @functools.wraps(method)
        def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            def run() -> R:
                query = parse_query(model, signature, (self, *args), kwargs)
                fields = {name: getattr(query, name) for name in type(query).model_fields}
                return method(self, *(), **fields)  # type: ignore[call-arg]

            names = list(signature.parameters)[1:]
            subject = {**dict(zip(names, args, strict=False)), **kwargs}
            return guarded(self.telemetry, method.__name__, run, subject=subject)

        return wrapper

    return decorate


def parse_query(
    model: type[C], signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> C:
    """Bind a query's arguments to its parameters, then validate them into ``model``."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:  # too many, missing or unknown arguments
        raise InvalidInputError(
            f"invalid {model.__name__}: {exc}",
            details={
                "query": model.__name__,
                "errors": [{"field": "(root)", "error": str(exc), "type": "arguments"}],
            },
        ) from None
    arguments = {name: value for name, value in bound.arguments.items() if name != "self"}
    return parse_command(model, arguments, kind="query")

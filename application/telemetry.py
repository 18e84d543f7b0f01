"""Structured logging and telemetry.

Every notable thing the service does is one named event with fields (codes, ids, kinds),
listed in docs/operations.md (*Logs and telemetry*): it is logged through the ``seatledger``
logger with the fields attached to the record (:class:`JsonFormatter` writes one JSON object
per line, :class:`TextFormatter` a line with ``key=value`` fields) and handed to optional
sinks (a :class:`RecordingSink` in tests) and to optional :class:`Instruments` (metrics and
traces: :mod:`seatledger.application.otel`, imported only when asked for).

Each command or query that passes the API boundary runs inside a :class:`CommandScope`: it
times the call, collects what happens inside it (optimistic retries, policy drift) and, with
instruments, is the command's span; the span's ``traceparent`` is what the command's events
carry to the outbox (:func:`current_traceparent`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from seatledger.projections.db import ReadModelDB

LOGGER_NAME = "seatledger"

Sink = Callable[[str, dict[str, Any]], None]
#: Observations of a gauge: (value, attributes) pairs, read when the metrics are collected.
Observations = Callable[[], Iterable[tuple[float, dict[str, str]]]]
Kind = Literal["command", "query"]
Outcome = Literal["succeeded", "rejected", "failed"]


@dataclass
class CommandScope:
    """One command or query passing the boundary: what its log line, span and metrics say."""

    kind: Kind
    operation: str
    restaurant_id: str | None = None
    booking_id: str | None = None
    outcome: Outcome | None = None
    code: str | None = None
    drift_kind: str | None = None
    #: saves that lost an optimistic-concurrency race and were re-run
    retries: int = 0
    #: the W3C traceparent of this command's span (None: not traced)
    traceparent: str | None = None
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    def observe(self, name: str, fields: Mapping[str, Any]) -> None:
        """Learn from an event emitted inside the command."""
        if name == "command.retry":
            self.retries += 1
        elif name.startswith("policy_drift.") and self.drift_kind is None:
            kind = fields.get("kind")
            self.drift_kind = None if kind is None else str(kind)

    def finish(self, outcome: Outcome, code: str | None = None) -> None:
        self.outcome, self.code = outcome, code
        self.seconds = time.perf_counter() - self.started


_scope: ContextVar[CommandScope | None] = ContextVar("seatledger_command_scope", default=None)


def current_scope() -> CommandScope | None:
    return _scope.get()


def current_traceparent() -> str | None:
    """The traceparent of the traced command running in this context, if any: the mapper
    stores it with the command's events, and the outbox with their messages."""
    scope = _scope.get()
    return None if scope is None else scope.traceparent


class Instruments(Protocol):
    """Metrics and traces behind the telemetry events (OpenTelemetry: :mod:`.otel`)."""

    def command(self, scope: CommandScope) -> AbstractContextManager[None]:
        """Wrap one command or query (its span); read ``scope`` when it ends."""

    def event(self, name: str, fields: Mapping[str, Any]) -> None:
        """An event happened (page and batch spans, counters, histograms)."""

    def observe(self, gauge: str, key: object, observations: Observations) -> None:
        """Report ``observations`` under ``gauge`` whenever metrics are collected; a second
        call with the same ``key`` replaces the first."""


class _Lagging(Protocol):
    @property
    def name(self) -> str: ...

    def lag(self) -> int: ...


class Telemetry:
    def __init__(
        self,
        logger: logging.Logger | None = None,
        sinks: Iterable[Sink] = (),
        instruments: Instruments | None = None,
    ) -> None:
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self.sinks: list[Sink] = list(sinks)
        self.instruments = instruments

    @classmethod
    def configured(cls, *, otel: bool) -> Telemetry:
        """Telemetry as the settings ask (``SEATLEDGER_OTEL_ENABLED``): with OpenTelemetry
        instruments on the global providers, or without (nothing of OpenTelemetry is
        imported)."""
        if not otel:
            return cls()
        from seatledger.application.otel import OpenTelemetry  # noqa: PLC0415 - optional

        return cls(instruments=OpenTelemetry())

    def emit(
        self, name: str, *, level: int = logging.INFO, message: str | None = None, **fields: Any
    ) -> None:
        if self.logger.isEnabledFor(level):
            self.logger.log(
                level,
                message or name,
                extra={"telemetry": name, "fields": fields},
            )
        scope = _scope.get()
        if scope is not None:
            scope.observe(name, fields)
        for sink in self.sinks:
            sink(name, fields)
        if self.instruments is not None:
            self.instruments.event(name, fields)

    @contextmanager
    def command(
        self,
        kind: Kind,
        operation: str,
        *,
        restaurant_id: str | None = None,
        booking_id: str | None = None,
    ) -> Iterator[CommandScope]:
        """The scope of one command or query; the caller calls ``scope.finish``. A command
        that succeeded is logged as ``command.succeeded`` (a query as ``query.succeeded``),
        at debug level, with its duration."""
        scope = CommandScope(kind, operation, restaurant_id=restaurant_id, booking_id=booking_id)
        token = _scope.set(scope)
        try:
            if self.instruments is None:
                yield scope
            else:
                with self.instruments.command(scope):
                    yield scope
        finally:
            _scope.reset(token)
        if scope.outcome == "succeeded":
            self.emit(
                f"{kind}.succeeded",
                level=logging.DEBUG,
                operation=operation,
                seconds=round(scope.seconds, 6),
                **_present(
                    restaurant_id=restaurant_id,
                    booking_id=booking_id,
                    retries=scope.retries or None,
                    drift_kind=scope.drift_kind,
                ),
            )

    def watch_projections(self, runners: Sequence[_Lagging]) -> None:
        """Report the runners' lag (``seatledger.projection.lag``) while they exist."""
        if self.instruments is None or not runners:
            return
        refs = [weakref.ref(runner) for runner in runners]

        def lag() -> Iterator[tuple[float, dict[str, str]]]:
            for ref in refs:
                runner = ref()
                if runner is not None:
                    yield float(runner.lag()), {"seatledger.projection": runner.name}

        self.instruments.observe("seatledger.projection.lag", id(runners[0]), lag)

    def watch_outbox(self, db: ReadModelDB) -> None:
        """Report the outbox depth by status and type (``seatledger.outbox.depth``) while
        ``db`` exists."""
        if self.instruments is None:
            return
        from seatledger.projections.outbox import outbox_counts  # noqa: PLC0415 - no cycle

        ref = weakref.ref(db)

        def depth() -> Iterator[tuple[float, dict[str, str]]]:
            found = ref()
            if found is None:
                return
            for message_type, counts in outbox_counts(found).items():
                for status, count in counts.items():
                    yield (
                        float(count),
                        {
                            "seatledger.outbox.status": status,
                            "seatledger.message.type": message_type,
                        },
                    )

        self.instruments.observe("seatledger.outbox.depth", id(db), depth)


def _present(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


@dataclass
class TelemetryRecord:
    name: str
    fields: dict[str, Any]


@dataclass
class RecordingSink:
    """Keeps every telemetry event in memory (for tests and the demo's counters)."""

    records: list[TelemetryRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, name: str, fields: dict[str, Any]) -> None:
        with self._lock:
            self.records.append(TelemetryRecord(name, dict(fields)))

    def named(self, name: str) -> list[TelemetryRecord]:
        with self._lock:
            return [record for record in self.records if record.name == name]

    def clear(self) -> None:
        with self._lock:
            self.records.clear()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, telemetry name and fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        name = getattr(record, "telemetry", None)
        if name:
            payload["event"] = name
        payload.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, sort_keys=True)


class TextFormatter(logging.Formatter):
    """One line per record: time, level, logger, message, then the telemetry fields as
    ``key=value`` (strings bare when they are one plain word, anything else as JSON)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        name = getattr(record, "telemetry", None)
        parts = [] if not name or name == record.getMessage() else [f"event={name}"]
        fields: Mapping[str, Any] = getattr(record, "fields", None) or {}
        parts.extend(f"{key}={_text_value(value)}" for key, value in fields.items())
        if not parts:
            return line
        head, newline, rest = line.partition("\n")  # keep a traceback below the fields
        return f"{head} {' '.join(parts)}{newline}{rest}"


def _text_value(value: Any) -> str:
    if isinstance(value, str) and value and all(c.isprintable() and c not in ' "=' for c in value):
        return value
    return json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)

"""Structured logging and telemetry.

Every notable thing the service does is one named event with fields (codes, ids, kinds):
it is logged through the ``seatledger`` logger with the fields attached to the record (so any
JSON formatter can emit them; :class:`JsonFormatter` is provided) and handed to optional sinks
(metrics, tracing, or a :class:`RecordingSink` in tests).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

LOGGER_NAME = "seatledger"

Sink = Callable[[str, dict[str, Any]], None]


class Telemetry:
    def __init__(self, logger: logging.Logger | None = None, sinks: Iterable[Sink] = ()) -> None:
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self.sinks: list[Sink] = list(sinks)

    def emit(
        self, name: str, *, level: int = logging.INFO, message: str | None = None, **fields: Any
    ) -> None:
        if self.logger.isEnabledFor(level):
            self.logger.log(
                level,
                message or name,
                extra={"telemetry": name, "fields": fields},
            )
        for sink in self.sinks:
            sink(name, fields)


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

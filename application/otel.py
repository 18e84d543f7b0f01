"""OpenTelemetry instruments for the telemetry events (the ``otel`` extra).

Imported only when asked for (``SEATLEDGER_OTEL_ENABLED=true``, or
``Telemetry(instruments=OpenTelemetry(...))``); it uses the OpenTelemetry API and the
providers it is given, else the global ones the application (or ``opentelemetry-instrument``)
configured. Without an SDK the API records nothing and stores no trace context.

Spans: one per command (``command <method>``) and query (``query <method>``), current while
it runs, with its restaurant, booking, outcome, error code, drift kind and optimistic retries;
one per projection page (``projection.page <name>``) and relay batch (``relay.batch``), made
from their telemetry events (start = end - the event's ``seconds``), children of whatever
span was current. Metrics: see :class:`OpenTelemetry`. The names are in docs/operations.md.
"""

from __future__ import annotations

import importlib.metadata
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from seatledger.application.telemetry import CommandScope, Observations

#: Seconds: from a cached command (a millisecond) to a slow planner or page (seconds).
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
GAUGES = {
    "seatledger.projection.lag": ("{notification}", "Notifications stored after a projection"),
    "seatledger.outbox.depth": ("{message}", "Outbox messages by delivery status and type"),
}
_PROPAGATOR = TraceContextTextMapPropagator()


def traceparent_of(span: Span) -> str | None:
    """The W3C traceparent a consumer continues ``span``'s trace with (None: not traced)."""
    if not span.get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


class OpenTelemetry:
    """Metrics: ``seatledger.commands`` (by command type, outcome, error code),
    ``seatledger.command.duration`` (s), ``seatledger.command.optimistic_retries``,
    ``seatledger.projection.page.duration`` (s), ``seatledger.projection.lag`` (gauge),
    ``seatledger.outbox.depth`` (gauge, by status and type), ``seatledger.outbox.deliveries``,
    ``seatledger.outbox.delivery_failures`` (by type and outcome: retry or dead),
    ``seatledger.planner.duration`` (s)."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        version = _version()
        self.tracer = trace.get_tracer("seatledger", version, tracer_provider=tracer_provider)
        meter = metrics.get_meter("seatledger", version, meter_provider=meter_provider)
        self.commands = meter.create_counter(
            "seatledger.commands", "{command}", "Commands by type, outcome and error code"
        )
        self.command_duration = meter.create_histogram(
            "seatledger.command.duration",
            "s",
            "How long commands took, by type and outcome",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.optimistic_retries = meter.create_counter(
            "seatledger.command.optimistic_retries",
            "{retry}",
            "Saves that lost an optimistic-concurrency race and were re-run",
        )
        self.page_duration = meter.create_histogram(
            "seatledger.projection.page.duration",
            "s",
            "How long a projection page took",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.deliveries = meter.create_counter(
            "seatledger.outbox.deliveries", "{message}", "Messages the broker acknowledged"
        )
        self.delivery_failures = meter.create_counter(
            "seatledger.outbox.delivery_failures", "{message}", "Failed delivery attempts"
        )
        self.planner_duration = meter.create_histogram(
            "seatledger.planner.duration",
            "s",
            "How long one quote's table-set search took",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._lock = threading.Lock()
        self._sources: dict[str, dict[object, Observations]] = {name: {} for name in GAUGES}
        for name, (unit, description) in GAUGES.items():
            meter.create_observable_gauge(name, [self._gauge(name)], unit, description)

    # --- commands and queries ----------------------------------------------------------------

    @contextmanager
    def command(self, scope: CommandScope) -> Iterator[None]:
        attributes: dict[str, AttributeValue] = {f"seatledger.{scope.kind}.type": scope.operation}
        if scope.restaurant_id is not None:
            attributes["seatledger.restaurant_id"] = scope.restaurant_id
        if scope.booking_id is not None:
            attributes["seatledger.booking_id"] = scope.booking_id
        with self.tracer.start_as_current_span(
            f"{scope.kind} {scope.operation}",
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            scope.traceparent = traceparent_of(span)
            try:
                yield
            finally:
                self._finished(span, scope)

    def _finished(self, span: Span, scope: CommandScope) -> None:
        outcome = scope.outcome or "failed"
        span.set_attribute("seatledger.outcome", outcome)
        span.set_attribute("seatledger.command.optimistic_retries", scope.retries)
        if scope.code is not None:
            span.set_attribute("seatledger.error.code", scope.code)
        if scope.drift_kind is not None:
            span.set_attribute("seatledger.drift.kind", scope.drift_kind)
        if outcome == "failed":
            span.set_status(Status(StatusCode.ERROR, scope.code))
        if scope.kind != "command":
            return
        attributes: dict[str, AttributeValue] = {
            "seatledger.command.type": scope.operation,
            "seatledger.outcome": outcome,
        }
        if scope.code is not None:
            attributes["seatledger.error.code"] = scope.code
        self.commands.add(1, attributes)
        self.command_duration.record(scope.seconds, attributes)
        if scope.retries:
            self.optimistic_retries.add(scope.retries, {"seatledger.command.type": scope.operation})

    # --- events ------------------------------------------------------------------------------

    def event(self, name: str, fields: Mapping[str, Any]) -> None:
        if name == "projection.page":
            projection = {"seatledger.projection": str(fields["projection"])}
            self.page_duration.record(float(fields["seconds"]), projection)
            self._span_ended_now(
                f"projection.page {fields['projection']}",
                float(fields["seconds"]),
                {**projection, "seatledger.notifications": int(fields["notifications"])},
            )
        elif name == "outbox.batch":
            counts = ("claimed", "published", "retried", "dead", "lease_lost", "deferred")
            self._span_ended_now(
                "relay.batch",
                float(fields["seconds"]),
                {
                    "seatledger.publisher": str(fields["publisher"]),
                    **{f"seatledger.outbox.{count}": int(fields[count]) for count in counts},
                },
            )
        elif name == "outbox.delivered":
            self.deliveries.add(1, _message_attributes(fields))
        elif name in ("outbox.retry", "outbox.dead"):
            outcome = "dead" if name == "outbox.dead" else "retry"
            self.delivery_failures.add(
                1, {**_message_attributes(fields), "seatledger.outcome": outcome}
            )
        elif name == "planner.quoted":
            self.planner_duration.record(float(fields["seconds"]))

    def _span_ended_now(
        self, name: str, seconds: float, attributes: Mapping[str, AttributeValue]
    ) -> None:
        """A span for something that just ended and took ``seconds``."""
        end = time.time_ns()
        span = self.tracer.start_span(
            name, start_time=end - int(seconds * 1e9), attributes=attributes
        )
        span.end(end_time=end)

    # --- gauges ------------------------------------------------------------------------------

    def observe(self, gauge: str, key: object, observations: Observations) -> None:
        with self._lock:
            self._sources[gauge][key] = observations

    def _gauge(self, name: str) -> Any:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                sources = list(self._sources[name].values())
            found: list[Observation] = []
            for source in sources:
                try:
                    found.extend(Observation(value, attrs) for value, attrs in source())
                except Exception:  # a closed or unreachable store: nothing to say
                    continue
            return found

        return callback


def _message_attributes(fields: Mapping[str, Any]) -> dict[str, AttributeValue]:
    return {
        "seatledger.message.type": str(fields.get("type", "")),
        "seatledger.publisher": str(fields.get("publisher", "")),
    }


def _version() -> str:
    try:
        return importlib.metadata.version("seatledger")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"

"""OpenTelemetry: spans and metrics through the SDK's in-memory exporters, the trace context
from a command to its outbox messages and to the consumer, and nothing at all without it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from seatledger.application.commands import AutoAssign, QuoteBooking
from seatledger.application.otel import OpenTelemetry
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import Telemetry
from seatledger.domain.errors import SeatLedgerError
from seatledger.projections.deliveries import Delivery
from seatledger.projections.relay import Relay
from tests.support import assign, booking, floor, unassign

ROOT = Path(__file__).resolve().parent.parent


class Otel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.instruments = OpenTelemetry(
            tracer_provider=tracer_provider,
            meter_provider=MeterProvider(metric_readers=[self.reader]),
        )

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans.get_finished_spans() if span.name == name]

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for found in scope.metrics
            if found.name == metric
            for point in found.data.data_points
        ]


class InterruptedService(AssignmentService):
    """Before the next save, another writer gets in (a lost race, deterministically)."""

    interloper: Callable[[], object] | None = None

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        interloper, self.interloper = self.interloper, None
        if interloper is not None:
            interloper()
        return super().save(*objs, **kwargs)


@pytest.fixture
def otel() -> Otel:
    return Otel()


@pytest.fixture
def service(otel: Otel, tmp_path: Path) -> Iterator[InterruptedService]:
    settings = Settings(persistence="sqlite", sqlite_path=tmp_path / "seatledger.db")
    telemetry = Telemetry(instruments=otel.instruments)
    with InterruptedService(settings, telemetry=telemetry) as service:
        yield service


def test_a_span_per_command_with_what_it_was_about_and_how_it_ended(
    service: InterruptedService, otel: Otel
) -> None:
    service.create_restaurant(floor())
    service.register_booking(booking("b1", 2, "19:00"))
    service.register_booking(booking("b2", 2, "19:00"))
    service.interloper = lambda: service.register_booking(booking("b9", 2, "19:00"))
    service.assign_tables(assign("b1", "M1"))
    with pytest.raises(SeatLedgerError):
        service.assign_tables(assign("b2", "NOPE"))
    service.get_booking("r1", "b1")

    (ok, rejected) = otel.named("command assign_tables")
    assert ok.attributes is not None and rejected.attributes is not None
    assert dict(ok.attributes) == {
        "seatledger.command.type": "assign_tables",
        "seatledger.restaurant_id": "r1",
        "seatledger.booking_id": "b1",
        "seatledger.outcome": "succeeded",
        "seatledger.command.optimistic_retries": 1,
    }
    assert rejected.attributes["seatledger.outcome"] == "rejected"
    assert rejected.attributes["seatledger.booking_id"] == "b2"
    assert str(rejected.attributes["seatledger.error.code"]).startswith("TABLE")
    assert rejected.status.is_unset  # a rejection is an answer, not a failure
    (query,) = otel.named("query get_booking")
    assert query.attributes is not None and query.attributes["seatledger.outcome"] == "succeeded"
    interloper = [s for s in otel.named("command register_booking") if s.parent is not None]
    assert len(interloper) == 1  # it ran inside the lost race, as its child
    assert otel.named("projection.page outbox")  # the in-process catch-up after a save

    commands = {
        (p.attributes["seatledger.command.type"], p.attributes["seatledger.outcome"]): p.value
        for p in otel.points("seatledger.commands")
    }
    assert commands[("assign_tables", "succeeded")] == 1
    assert commands[("assign_tables", "rejected")] == 1
    assert commands[("register_booking", "succeeded")] == 3
    durations = otel.points("seatledger.command.duration")
    assert sum(p.count for p in durations) == sum(commands.values())
    (retries,) = otel.points("seatledger.command.optimistic_retries")
    assert (retries.attributes["seatledger.command.type"], retries.value) == ("assign_tables", 1)
    pages = otel.points("seatledger.projection.page.duration")
    assert {p.attributes["seatledger.projection"] for p in pages} == {"members", "outbox"}
    lag = {
        p.attributes["seatledger.projection"]: p.value
        for p in otel.points("seatledger.projection.lag")
    }
    assert lag == {"members": 0, "outbox": 0}
    depth = otel.points("seatledger.outbox.depth")
    assert [(p.attributes["seatledger.outbox.status"], p.value) for p in depth] == [("pending", 1)]


def test_drift_kind_and_planner_duration(service: InterruptedService, otel: Otel) -> None:
    from tests.test_auto_assign import drift_policy  # noqa: PLC0415 - the same drift

    service.create_restaurant(floor())
    service.register_booking(booking("b1", 2, "19:00"))
    quoted = service.quote(
        QuoteBooking(restaurant_id="r1", booking_id="b1", actor_id="p", ttl_seconds=600)
    )
    assert quoted.hold is not None
    service.change_policy(drift_policy(10))
    result = service.auto_assign(AutoAssign(restaurant_id="r1", booking_id="b1", actor_id="p"))
    assert result.drift_kind == "policy"
    (auto,) = otel.named("command auto_assign")
    assert auto.attributes is not None
    assert auto.attributes["seatledger.drift.kind"] == "policy"
    assert auto.attributes["seatledger.outcome"] == "succeeded"
    planner = otel.points("seatledger.planner.duration")
    assert sum(p.count for p in planner) >= 2  # the quote and the re-quote


class Consumer:
    """Records what a broker's consumer would see."""

    def __init__(self) -> None:
        self.delivered: list[Delivery] = []

    def publish(self, delivery: Delivery) -> None:
        self.delivered.append(delivery)


def test_the_command_s_trace_context_reaches_the_outbox_and_the_consumer(
    service: InterruptedService, otel: Otel
) -> None:
    service.create_restaurant(floor())
    service.register_booking(booking("b1", 2, "19:00"))
    service.assign_tables(assign("b1", "M1"))
    service.unassign_tables(unassign("b1"))
    consumer = Consumer()
    telemetry = Telemetry(instruments=otel.instruments)
    stats = Relay(service.read_models, consumer, telemetry, rng=random.Random(1)).run_once()
    assert stats.published == 2
    spans = otel.named("command assign_tables") + otel.named("command unassign_tables")
    for span, delivery in zip(spans, consumer.delivered, strict=True):
        assert delivery.traceparent is not None
        carrier = {"traceparent": delivery.traceparent}
        context = TraceContextTextMapPropagator().extract(carrier)
        from opentelemetry import trace  # noqa: PLC0415

        parent = trace.get_current_span(context).get_span_context()
        assert span.context is not None
        assert (parent.trace_id, parent.span_id) == (span.context.trace_id, span.context.span_id)
    (batch,) = otel.named("relay.batch")
    assert batch.attributes is not None and batch.attributes["seatledger.outbox.published"] == 2
    deliveries = otel.points("seatledger.outbox.deliveries")
    assert sum(p.value for p in deliveries) == 2

    (outbox,) = (r for r in service.projection_runners if r.name == "outbox")
    with service.read_models.read() as tx:
        before = tx.execute("SELECT message_id, traceparent FROM seatledger_outbox ORDER BY 1")
    outbox.rebuild()  # the trace context is stored in the events: a rebuild yields it again
    with service.read_models.read() as tx:
        after = tx.execute("SELECT message_id, traceparent FROM seatledger_outbox ORDER BY 1")
    assert after == before and all(row[1] for row in after)


def test_an_untraced_event_is_stored_exactly_as_before(tmp_path: Path) -> None:
    """No span, no trace context: the event's stored state has no traceparent key."""
    settings = Settings(persistence="sqlite", sqlite_path=tmp_path / "seatledger.db")
    with AssignmentService(settings) as service:
        service.create_restaurant(floor())
        notifications = service.recorder.select_notifications(start=1, limit=10)
    assert notifications and all(b"traceparent" not in n.state for n in notifications)


BLOCKED_IMPORTS = """
import sys, importlib.abc

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("opentelemetry", "nats"):
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, Block())
"""


def run_without_extras(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = BLOCKED_IMPORTS + textwrap.dedent(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEATLEDGER_")}
    env["PYTHONPATH"] = str(ROOT)  # for tests.support
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )


def test_without_the_extras_nothing_changes_and_nothing_is_imported(tmp_path: Path) -> None:
    run = run_without_extras(
        """
        import json, sys
        from seatledger.application.service import AssignmentService
        from seatledger.application.settings import Settings
        from seatledger.application.cli import main
        from tests.support import assign, booking, floor

        with AssignmentService(Settings(persistence="sqlite", sqlite_path="s.db")) as service:
            service.create_restaurant(floor())
            service.register_booking(booking("b1", 2, "19:00"))
            service.assign_tables(assign("b1", "M1"))
        assert main(["relay", "--once", "--db", "s.db", "--log-level", "critical"]) == 0
        extras = ("opentelemetry", "nats")
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in extras)))
        """,
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert json.loads(lines[-1]) == []
    assert json.loads(lines[-2])["published"] == 1


def test_asking_for_what_is_not_installed_says_which_extra(tmp_path: Path) -> None:
    run = run_without_extras(
        """
        from seatledger.application.cli import main
        code_nats = main(["relay", "--once", "--db", "s.db", "--publisher", "nats://127.0.0.1:4222"])
        print(code_nats)
        """,
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "2"
    assert "pip install 'seatledger[nats]'" in run.stderr
    run = run_without_extras(
        """
        from seatledger.application.settings import Settings
        try:
            Settings(otel_enabled=True)
        except ValueError as exc:
            print("refused:", exc)
        """,
        tmp_path,
    )
    assert "pip install 'seatledger[otel]'" in run.stdout, run.stderr

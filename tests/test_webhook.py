"""The webhook publisher against a real HTTP server on 127.0.0.1 (started by the test)."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from seatledger.application.clock import ManualClock
from seatledger.application.publishers import publisher_for
from seatledger.application.publishers.webhook import WebhookPublisher, verify
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import RecordingSink, Telemetry
from seatledger.projections.relay import Relay
from tests.support import assign, booking, floor, unassign

SECRET = b"s3cret-webhook-key"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Endpoint:
    """What the server received, and the statuses it answers with next (then 204)."""

    url: str
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    state = Endpoint("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                state.received.append(Received(dict(self.headers.items()), data))
                status = state.answers.pop(0) if state.answers else 204
            self.send_response(status)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"nope" if status >= 300 else b"okay")

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/seatledger"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[AssignmentService]:
    settings = Settings(persistence="sqlite", sqlite_path=tmp_path / "seatledger.db")
    with AssignmentService(settings) as service:
        yield service


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))


def relay_for(service: AssignmentService, url: str, clock: ManualClock) -> Relay:
    publisher = WebhookPublisher(url, secret=SECRET, timeout=5.0, max_in_flight=4)
    return Relay(
        service.read_models,
        publisher,
        Telemetry(sinks=[RecordingSink()]),
        clock=clock.now,
        rng=random.Random(1),
        base_delay=2.0,
    )


def rows(service: AssignmentService) -> list[tuple[object, ...]]:
    with service.read_models.read() as tx:
        return tx.execute(
            "SELECT message_id, status, attempts, last_error, published_via"
            " FROM seatledger_outbox ORDER BY notification_id, seq"
        )


def test_each_message_is_one_signed_post_with_its_idempotency_key(
    service: AssignmentService, endpoint: Endpoint, clock: ManualClock
) -> None:
    service.create_restaurant(floor())
    for i in (1, 2):
        service.register_booking(booking(f"b{i}", 2, "19:00"))
        service.assign_tables(assign(f"b{i}", f"M{i}"))
    service.catch_up_projections()
    relay = relay_for(service, endpoint.url, clock)
    try:
        assert relay.run_once().published == 2
    finally:
        relay.close()
    assert [(row[1], row[4]) for row in rows(service)] == [("done", "webhook")] * 2
    ids = {str(row[0]) for row in rows(service)}
    assert {r.headers["Idempotency-Key"] for r in endpoint.received} == ids
    for request in endpoint.received:
        envelope = json.loads(request.body)
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["Idempotency-Key"] == envelope["messageId"]
        assert request.headers["Seatledger-Message-Type"] == "capacity.assignment.sync"
        assert verify(SECRET, request.body, request.headers["Seatledger-Signature"])
        assert not verify(b"another key", request.body, request.headers["Seatledger-Signature"])
        assert "traceparent" not in request.headers


def test_a_failed_post_is_retried_through_the_back_off_and_later_messages_wait(
    service: AssignmentService, endpoint: Endpoint, clock: ManualClock
) -> None:
    service.create_restaurant(floor())
    service.register_booking(booking("b1", 2, "19:00"))
    service.assign_tables(assign("b1", "M1"))
    service.unassign_tables(unassign("b1"))
    service.catch_up_projections()
    endpoint.answers = [503]
    relay = relay_for(service, endpoint.url, clock)
    try:
        stats = relay.run_once()
        assert (stats.retried, stats.deferred, stats.published) == (1, 1, 0)
        (first, second) = rows(service)
        assert (first[1], first[2]) == ("pending", 1)
        assert "answered 503: nope" in str(first[3])
        assert (second[1], second[2]) == ("pending", 0)  # not sent: it would overtake
        assert len(endpoint.received) == 1
        assert relay.run_once().claimed == 0  # the first is backing off; the second waits
        clock.advance(timedelta(seconds=3))
        assert relay.run_once().published == 2
    finally:
        relay.close()
    assert [row[1] for row in rows(service)] == ["done", "done"]
    keys = [r.headers["Idempotency-Key"] for r in endpoint.received]
    assert keys == [first[0], first[0], second[0]]  # the retry, then the next, in order


def test_an_unreachable_endpoint_fails_the_attempt(
    service: AssignmentService, clock: ManualClock
) -> None:
    service.create_restaurant(floor())
    service.register_booking(booking("b1", 2, "19:00"))
    service.assign_tables(assign("b1", "M1"))
    service.catch_up_projections()
    relay = relay_for(service, "http://127.0.0.1:9/refused", clock)
    try:
        assert relay.run_once().retried == 1
    finally:
        relay.close()
    ((_, status, attempts, error, _),) = rows(service)
    assert (status, attempts) == ("pending", 1) and "WebhookError" in str(error)


def test_the_settings_choose_the_webhook_and_insist_on_a_secret(endpoint: Endpoint) -> None:
    with pytest.raises(ValueError, match="SEATLEDGER_WEBHOOK_SECRET"):
        Settings(persistence="memory", publisher=endpoint.url)
    settings = Settings(persistence="memory", publisher=endpoint.url, webhook_secret="k")
    publisher = publisher_for(settings, Telemetry())
    assert isinstance(publisher, WebhookPublisher)
    assert publisher.info.target == endpoint.url
    with pytest.raises(ValueError, match="must be 'log'"):
        Settings(persistence="memory", publisher="kafka://broker:9092")

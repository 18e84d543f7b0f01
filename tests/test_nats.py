"""The NATS JetStream publisher against real servers: the machine's (127.0.0.1:4222) with a
stream per test, and a private ``nats-server`` restarted in the middle of a batch."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from seatledger.application.clock import ManualClock
from seatledger.application.publishers.jetstream import JetStreamPublisher, subject_token
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import RecordingSink, Telemetry
from seatledger.projections.deliveries import Delivery
from seatledger.projections.relay import PublisherInfo, Relay, Result
from tests.nats_support import PrivateServer, Stream, private_server, stream, unique_stream
from tests.support import assign, booking, floor, unassign

__all__ = ["private_server", "stream"]  # fixtures


@pytest.fixture
def service(tmp_path: Path) -> Iterator[AssignmentService]:
    settings = Settings(persistence="sqlite", sqlite_path=tmp_path / "seatledger.db")
    with AssignmentService(settings) as service:
        yield service


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))


def make_messages(service: AssignmentService, bookings: int) -> list[str]:
    """Per booking: assign, unassign, assign again (three syncs in log order). Returns the
    message ids in log order."""
    service.create_restaurant(floor())
    for i in range(1, bookings + 1):
        service.register_booking(booking(f"b{i}", 2, "19:00"))
    for i in range(1, bookings + 1):
        service.assign_tables(assign(f"b{i}", f"M{i}"))
        service.unassign_tables(unassign(f"b{i}"))
        service.assign_tables(assign(f"b{i}", f"M{i}"))
    service.catch_up_projections()
    with service.read_models.read() as tx:
        return [
            str(row[0])
            for row in tx.execute(
                "SELECT message_id FROM seatledger_outbox ORDER BY notification_id, seq"
            )
        ]


def publisher_for(stream: Stream, **options: object) -> JetStreamPublisher:
    settings: dict[str, object] = {"create_stream": True, "timeout": 2.0, **options}
    return JetStreamPublisher(
        stream.url,
        stream=stream.name,
        subject_prefix=stream.prefix,
        **settings,  # type: ignore[arg-type]
    )


def relay_for(
    service: AssignmentService, publisher: object, clock: ManualClock, sink: RecordingSink
) -> Relay:
    return Relay(
        service.read_models,
        publisher,  # type: ignore[arg-type]
        Telemetry(sinks=[sink]),
        clock=clock.now,
        rng=random.Random(5),
        base_delay=1.0,
        lease_seconds=30,
    )


def statuses(service: AssignmentService) -> Counter[tuple[str, str | None]]:
    with service.read_models.read() as tx:
        rows = tx.execute("SELECT status, published_via FROM seatledger_outbox")
    return Counter((str(status), via) for status, via in rows)


def ids_in_stream(stream: Stream) -> list[str]:
    return [m.headers["Nats-Msg-Id"] for m in stream.messages()]


def test_delivers_each_message_once_per_subject_in_booking_order(
    service: AssignmentService, stream: Stream, clock: ManualClock
) -> None:
    ids = make_messages(service, bookings=3)
    sink = RecordingSink()
    publisher = publisher_for(stream, max_in_flight=2, telemetry=Telemetry(sinks=[sink]))
    relay = relay_for(service, publisher, clock, sink)
    try:
        stats = relay.run_once()
    finally:
        relay.close()
    assert (stats.claimed, stats.published) == (9, 9)
    assert statuses(service) == Counter({("done", "nats"): 9})
    stored = stream.messages()
    assert sorted(m.headers["Nats-Msg-Id"] for m in stored) == sorted(ids)
    for message in stored:
        envelope = json.loads(message.data)
        assert message.subject == f"{stream.prefix}.capacity.assignment.sync.r1"
        assert message.headers["Seatledger-Message-Id"] == envelope["messageId"]
        assert message.headers["Seatledger-Message-Type"] == envelope["type"]
        assert "traceparent" not in message.headers  # the commands were not traced
        assert envelope["payload"]["bookingId"] == envelope["bookingId"]
    for i in range(1, 4):  # each booking's messages are in the stream in log order
        mine = [json.loads(m.data) for m in stored if json.loads(m.data)["bookingId"] == f"b{i}"]
        positions = [m["notificationId"] for m in mine]
        assert len(positions) == 3 and positions == sorted(positions)
        assert [m["payload"]["tableIds"] for m in mine] == [[f"M{i}"], [], [f"M{i}"]]
    assert len(sink.named("publisher.stream_created")) == 1
    assert len(sink.named("outbox.delivered")) == 9


class CrashAfterPublishing:
    """The relay process dies after the broker acknowledged the batch and before the relay
    recorded it (a BaseException: nothing below catches it)."""

    class Crash(BaseException):
        pass

    def __init__(self, inner: JetStreamPublisher) -> None:
        self.inner = inner

    @property
    def info(self) -> PublisherInfo:
        return self.inner.info

    async def publish_batch(self, batch: Sequence[Delivery]) -> Sequence[Result]:
        results = await self.inner.publish_batch(batch)
        assert all(result is None for result in results)
        raise self.Crash

    async def close(self) -> None:
        await self.inner.close()


def test_the_stream_holds_each_message_once_across_a_relay_crash_and_an_outbox_rebuild(
    service: AssignmentService, stream: Stream, clock: ManualClock
) -> None:
    ids = make_messages(service, bookings=2)
    sink = RecordingSink()
    crashed = relay_for(service, CrashAfterPublishing(publisher_for(stream)), clock, sink)
    with pytest.raises(CrashAfterPublishing.Crash):
        crashed.run_once()
    crashed.close()
    assert sorted(ids_in_stream(stream)) == sorted(ids)  # published, never recorded
    assert statuses(service) == Counter({("processing", None): 6})

    clock.advance(timedelta(seconds=31))  # the dead relay's lease runs out
    survivor = relay_for(service, publisher_for(stream), clock, sink)
    try:
        assert survivor.run_once().published == 6  # sent again: JetStream drops them
        assert statuses(service) == Counter({("done", "nats"): 6})
        assert sorted(ids_in_stream(stream)) == sorted(ids)

        (outbox,) = (r for r in service.projection_runners if r.name == "outbox")
        assert outbox.rebuild() > 0  # every message pending again, same ids
        assert statuses(service) == Counter({("pending", None): 6})
        assert survivor.run_once().published == 6
    finally:
        survivor.close()
    assert statuses(service) == Counter({("done", "nats"): 6})
    assert sorted(ids_in_stream(stream)) == sorted(ids)  # still once each


def test_without_the_stream_messages_wait_and_say_why(
    service: AssignmentService, clock: ManualClock
) -> None:
    missing = unique_stream()  # never created
    make_messages(service, bookings=1)
    sink = RecordingSink()
    relay = relay_for(service, publisher_for(missing, create_stream=False), clock, sink)
    try:
        stats = relay.run_once()
    finally:
        relay.close()
    assert (stats.retried, stats.deferred, stats.published) == (1, 2, 0)
    with service.read_models.read() as tx:
        rows = tx.execute(
            "SELECT status, attempts, last_error FROM seatledger_outbox"
            " ORDER BY notification_id, seq"
        )
    assert [(row[0], row[1]) for row in rows] == [("pending", 1), ("pending", 0), ("pending", 0)]
    assert "NoStreamResponseError" in str(rows[0][2])


class RestartMidBatch:
    """In one batch: sends the first ``before`` messages, stops the broker, sends the rest
    (they time out; the client buffers them and may still deliver them when the broker is
    back, unacknowledged), then starts the broker again on the same store."""

    def __init__(self, inner: JetStreamPublisher, server: PrivateServer, before: int) -> None:
        self.inner = inner
        self.server = server
        self.before = before
        self.restarts = 0

    @property
    def info(self) -> PublisherInfo:
        return self.inner.info

    async def publish_batch(self, batch: Sequence[Delivery]) -> Sequence[Result]:
        if self.restarts:
            return await self.inner.publish_batch(batch)
        first = await self.inner.publish_batch(batch[: self.before])
        await asyncio.to_thread(self.server.stop)
        rest = await self.inner.publish_batch(batch[self.before :])
        await asyncio.to_thread(self.server.start)
        self.restarts += 1
        return [*first, *rest]

    async def close(self) -> None:
        await self.inner.close()


def test_a_broker_restart_mid_batch_loses_and_doubles_nothing(
    service: AssignmentService, private_server: PrivateServer, clock: ManualClock
) -> None:
    ids = make_messages(service, bookings=4)
    target = Stream(private_server.url, "SLTEST_RESTART", "sltest")
    publisher = RestartMidBatch(publisher_for(target, max_in_flight=4), private_server, before=3)
    sink = RecordingSink()
    relay = relay_for(service, publisher, clock, sink)
    try:
        first = relay.run_once()
        assert publisher.restarts == 1 and first.claimed == 12
        assert first.published == 3  # acknowledged before the broker went down
        assert first.retried >= 1 and first.retried + first.deferred == 9
        for _ in range(20):  # the failed ones come back after their back-off
            if statuses(service) == Counter({("done", "nats"): 12}):
                break
            clock.advance(timedelta(minutes=10))
            relay.run_once()
    finally:
        relay.close()
    assert statuses(service) == Counter({("done", "nats"): 12})
    stored = ids_in_stream(target)
    assert sorted(stored) == sorted(ids)  # each message once, none lost
    for i in range(1, 5):  # and each booking's in log order
        mine = [m for m in target.messages() if json.loads(m.data)["bookingId"] == f"b{i}"]
        positions = [json.loads(m.data)["notificationId"] for m in mine]
        assert positions == sorted(positions)


def test_a_restaurant_id_is_one_subject_token() -> None:
    assert subject_token("r1") == "r1"
    assert subject_token("a.b *>c") == "a%2Eb%20%2A%3Ec"
    assert subject_token("café") == "caf%C3%A9"
    assert subject_token("50%") == "50%25"

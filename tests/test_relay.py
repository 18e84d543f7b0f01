"""The outbox relay: delivery state, back-off with jitter, dead letters, leases, SKIP LOCKED."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from seatledger.application.clock import ManualClock
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import RecordingSink, Telemetry
from seatledger.projections.deliveries import Delivery, mark_done
from seatledger.projections.relay import Deferred, Relay, RelayStats, in_booking_order
from tests.support import assign, booking, floor, unassign


class Recorder:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.delivered: list[Delivery] = []

    def publish(self, delivery: Delivery) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker unavailable")
        self.delivered.append(delivery)


class Broken:
    def publish(self, delivery: Delivery) -> None:
        raise ConnectionError("broker unavailable")


def make_messages(service: AssignmentService, bookings: int = 3) -> None:
    service.create_restaurant(floor())
    for i in range(1, bookings + 1):
        service.register_booking(booking(f"b{i}", 2, "19:00"))
        service.assign_tables(assign(f"b{i}", f"M{i}"))
    service.catch_up_projections()


def delivery_state(service: AssignmentService) -> list[tuple[object, ...]]:
    with service.read_models.read() as tx:
        return tx.execute(
            "SELECT message_id, status, attempts, next_attempt_at, last_error"
            " FROM seatledger_outbox ORDER BY notification_id, seq"
        )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))


def relay_for(
    service: AssignmentService, publisher: object, clock: ManualClock, **options: object
) -> Relay:
    return Relay(
        service.read_models,
        publisher,  # type: ignore[arg-type]
        Telemetry(),
        clock=clock.now,
        rng=random.Random(7),
        **options,  # type: ignore[arg-type]
    )


def test_publishes_every_message_once_in_log_order(
    service: AssignmentService, clock: ManualClock
) -> None:
    make_messages(service)
    publisher = Recorder()
    relay = relay_for(service, publisher, clock)
    stats = relay.run_once()
    assert stats.published == 3 and stats.claimed == 3
    assert [d.payload["bookingId"] for d in publisher.delivered] == ["b1", "b2", "b3"]
    assert all(d.type == "capacity.assignment.sync" and d.attempt == 1 for d in publisher.delivered)
    assert {row[1] for row in delivery_state(service)} == {"done"}
    assert relay.run_once().claimed == 0  # nothing is delivered twice


def test_failures_back_off_exponentially_then_dead_letter(
    service: AssignmentService, clock: ManualClock
) -> None:
    make_messages(service, bookings=1)
    sink = RecordingSink()
    relay = Relay(
        service.read_models,
        Broken(),
        Telemetry(sinks=[sink]),
        clock=clock.now,
        rng=random.Random(3),
        base_delay=2.0,
        max_delay=60.0,
        max_attempts=10,
    )
    delays = []
    for attempt in range(1, 11):
        stats = relay.run_once()
        assert stats.claimed == 1, f"attempt {attempt} should have been due"
        ((_, status, attempts, next_attempt_at, last_error),) = delivery_state(service)
        assert attempts == attempt and "broker unavailable" in str(last_error)
        if attempt < 10:
            assert status == "pending"
            due = datetime.fromisoformat(str(next_attempt_at))
            delay = (due - clock.now()).total_seconds()
            ceiling = min(60.0, 2.0 * 2 ** (attempt - 1))
            assert ceiling * 0.5 - 1 <= delay <= ceiling  # jitter in the upper half, capped
            delays.append(delay)
            assert relay.run_once().claimed == 0  # not due yet
            clock.set(due)
        else:
            assert status == "dead" and next_attempt_at is None
    assert delays[5] >= 30 - 1 and max(delays) <= 60  # grew, then hit the cap
    assert len(sink.named("outbox.retry")) == 9 and len(sink.named("outbox.dead")) == 1
    assert relay.run_once().claimed == 0  # dead letters stay dead


def test_a_crashed_relays_claims_return_after_the_lease(
    service: AssignmentService, clock: ManualClock
) -> None:
    make_messages(service, bookings=2)
    crashed = relay_for(service, Recorder(), clock, lease_seconds=30)
    assert len(crashed.claim()) == 2  # claimed, then the process died
    survivor = relay_for(service, Recorder(), clock, lease_seconds=30)
    assert survivor.run_once().claimed == 0  # leased to the dead relay
    clock.advance(timedelta(seconds=31))
    assert survivor.run_once().published == 2


class Overtaken:
    """A publisher slower than its relay's lease: while it works the lease runs out and
    ``meanwhile`` runs (another relay claims the message); then the publish fails."""

    def __init__(self, clock: ManualClock, lease: timedelta, meanwhile: Callable[[], object]):
        self.clock = clock
        self.lease = lease
        self.meanwhile = meanwhile

    def publish(self, delivery: Delivery) -> None:
        self.clock.advance(self.lease + timedelta(seconds=1))
        self.meanwhile()
        raise TimeoutError("broker did not answer")


@pytest.mark.parametrize("max_attempts", [1, 10], ids=["would-be-dead", "would-be-retried"])
def test_a_relay_whose_lease_ran_out_leaves_another_relays_delivery_alone(
    service: AssignmentService, clock: ManualClock, max_attempts: int
) -> None:
    make_messages(service, bookings=1)
    lease = timedelta(seconds=30)
    delivered = Recorder()
    rescuer = relay_for(service, delivered, clock, lease_seconds=30)
    sink = RecordingSink()
    slow = Relay(
        service.read_models,
        Overtaken(clock, lease, meanwhile=rescuer.run_once),
        Telemetry(sinks=[sink]),
        clock=clock.now,
        rng=random.Random(7),
        lease_seconds=30,
        max_attempts=max_attempts,
    )

    stats = slow.run_once()
    assert len(delivered.delivered) == 1  # the rescuer delivered it meanwhile
    ((_, status, attempts, next_attempt_at, last_error),) = delivery_state(service)
    assert (status, attempts, next_attempt_at, last_error) == ("done", 1, None, None)
    assert stats == RelayStats(claimed=1, lease_lost=1)
    assert [r.fields["outcome"] for r in sink.named("outbox.lease_lost")] == ["failed"]
    assert not sink.named("outbox.dead") and not sink.named("outbox.retry")
    clock.advance(timedelta(minutes=10))
    assert rescuer.run_once().claimed == 0  # done stays done: nothing is sent again


def test_a_late_outcome_does_not_free_a_message_another_relay_holds(
    service: AssignmentService, clock: ManualClock
) -> None:
    make_messages(service, bookings=1)
    lease = timedelta(seconds=30)
    rescuer = relay_for(service, Recorder(), clock, lease_seconds=30)
    held: list[Delivery] = []
    slow = relay_for(
        service,
        Overtaken(clock, lease, meanwhile=lambda: held.extend(rescuer.claim())),
        clock,
        lease_seconds=30,
    )

    stats = slow.run_once()
    assert len(held) == 1  # the rescuer is publishing it now
    ((_, status, attempts, _, last_error),) = delivery_state(service)
    assert (status, attempts, last_error) == ("processing", 0, None)
    assert stats == RelayStats(claimed=1, lease_lost=1)
    clock.advance(timedelta(seconds=5))  # past any back-off the late failure could have set
    third = Recorder()
    assert relay_for(service, third, clock).run_once().claimed == 0
    assert third.delivered == []  # not sent a third time while the rescuer holds it

    assert mark_done(service.read_models, held[0], now=clock.now())
    assert [row[1] for row in delivery_state(service)] == ["done"]


def test_a_failing_publisher_never_affects_commands(service: AssignmentService) -> None:
    make_messages(service, bookings=1)
    stop = threading.Event()
    relay = Relay(service.read_models, Broken(), Telemetry(), base_delay=0.01, max_delay=0.02)
    thread = threading.Thread(target=relay.serve, args=(stop,), kwargs={"idle_wait": 0.01})
    thread.start()
    try:
        for i in range(2, 6):
            service.register_booking(booking(f"b{i}", 2, "19:00"))
            assert service.assign_tables(assign(f"b{i}", f"M{i}")).changed
            assert service.unassign_tables(unassign(f"b{i}")).changed
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


@pytest.fixture
def pg_relay_service(postgres_schema: str) -> Iterator[AssignmentService]:
    settings = Settings(
        persistence="postgres", postgres_schema=postgres_schema, projection_mode="in_process"
    )
    with AssignmentService(settings) as service:
        yield service


@pytest.mark.postgres
def test_relays_skip_rows_another_relay_holds(
    pg_relay_service: AssignmentService, clock: ManualClock
) -> None:
    service = pg_relay_service
    make_messages(service, bookings=4)
    ids = [str(row[0]) for row in delivery_state(service)]
    with (
        psycopg.connect(
            service.settings.postgres_conninfo(),
            options=f"-c search_path={service.settings.postgres_schema}",
        ) as other,
        other.transaction(),
    ):
        other.execute(
            "SELECT message_id FROM seatledger_outbox WHERE message_id = ANY(%s) FOR UPDATE",
            (ids[:2],),
        )
        claimed = relay_for(service, Recorder(), clock).claim()  # must not block
        assert sorted(d.message_id for d in claimed) == sorted(ids[2:])


def a_delivery(booking_id: str, n: int) -> Delivery:
    return Delivery(
        message_id=f"{booking_id}-{n}",
        notification_id=n,
        type="capacity.assignment.sync",
        restaurant_id="r1",
        booking_id=booking_id,
        dedupe_key="",
        occurred_at="2026-11-24T18:00:00Z",
        payload={},
        attempt=1,
        lease_token="t",
    )


def test_a_batch_is_sent_with_bounded_messages_in_flight_each_booking_in_order() -> None:
    batch = [a_delivery(f"b{b}", n) for n in range(1, 4) for b in range(1, 6)]
    in_flight, peak, sent = 0, 0, []

    async def send(delivery: Delivery) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)  # the answer comes later: others may start meanwhile
        in_flight -= 1
        sent.append(delivery.message_id)
        if delivery.message_id == "b2-1":
            raise ConnectionError("no ack")

    results = asyncio.run(in_booking_order(batch, send, max_in_flight=2))
    assert peak == 2
    outcome = {d.message_id: r for d, r in zip(batch, results, strict=True)}
    assert isinstance(outcome["b2-1"], ConnectionError)
    assert isinstance(outcome["b2-2"], Deferred) and isinstance(outcome["b2-3"], Deferred)
    assert sum(r is None for r in results) == 12
    for b in (1, 3, 4, 5):  # each booking's messages went one after the other, in order
        assert [m for m in sent if m.startswith(f"b{b}-")] == [f"b{b}-{n}" for n in (1, 2, 3)]
    assert "b2-2" not in sent and "b2-3" not in sent

"""Fail fast, recover fast (issue 8, item 3): the shared PostgreSQL server behind a TCP proxy
this test controls (``tests/tcp_proxy.py``); the proxy plays the outage, the server is never
stopped.

* a command against a server that is gone fails with ``STORAGE_UNAVAILABLE`` after one wait of
  the connect timeout for a connection (the library no longer retries that wait ten times);
* the first command after the server is back succeeds;
* the worker and the relay wait for the store at start and through an outage, logging each
  attempt, and carry on afterwards;
* no command line command prints a traceback when the store is unreachable.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.postgres import PostgresApplicationRecorder

from seatledger.application.errors import InfrastructureCode
from seatledger.application.schema import migrate_store
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import RecordingSink, Telemetry
from seatledger.application.worker import run_relay, run_worker
from seatledger.domain.errors import SeatLedgerError
from seatledger.projections.db import PostgresReadModels
from seatledger.projections.deliveries import Delivery
from seatledger.projections.outbox import outbox_counts
from seatledger.projections.pool import StorePool, StoreUnreachableError
from tests.support import assign, booking, floor
from tests.tcp_proxy import Proxy
from tests.test_cli_options import refused_port, run_cli
from tests.test_worker import ROOT, SEATLEDGER, stop_process, wait_until

pytestmark = pytest.mark.postgres

CONNECT_TIMEOUT = 2
LIVENESS = 60.0  # seconds a test waits for something to happen (a deadline, not a speed bound)


@pytest.fixture
def store(postgres_schema: str) -> Settings:
    """A migrated store, reached directly (the test's own view of it)."""
    settings = Settings(persistence="postgres", postgres_schema=postgres_schema)
    migrate_store(settings)
    return settings


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    with Proxy() as running:
        yield running


def through(store: Settings, proxy: Proxy, **overrides: object) -> Settings:
    """The same store, reached through the proxy."""
    return store.model_copy(
        update={
            "postgres_port": proxy.port,
            "postgres_connect_timeout": CONNECT_TIMEOUT,
            "migrate_on_start": False,
            "projection_mode": "off",
            **overrides,
        }
    )


def unreachable(call: Callable[[], object]) -> SeatLedgerError:
    with pytest.raises(SeatLedgerError) as caught:
        call()
    assert caught.value.code == InfrastructureCode.STORAGE_UNAVAILABLE
    return caught.value


def event_pool(service: AssignmentService) -> StorePool[Any]:
    recorder = service.recorder
    assert isinstance(recorder, PostgresApplicationRecorder)
    pool = recorder.datastore.pool
    assert isinstance(pool, StorePool)
    return pool


def test_a_command_fails_after_one_connect_timeout_and_the_first_one_after_succeeds(
    store: Settings, proxy: Proxy
) -> None:
    with AssignmentService(through(store, proxy)) as service:
        service.create_restaurant(floor())
        service.register_booking(booking("b1"))
        assert isinstance(service.read_models, PostgresReadModels)
        events, read_models = event_pool(service), service.read_models.pool

        proxy.stop()
        err = unreachable(lambda: service.register_booking(booking("b2")))
        assert isinstance(err.__cause__, StoreUnreachableError)
        assert f"within {CONNECT_TIMEOUT} s" in err.details["error"]
        # one wait for a connection, not the library's ten (each a connect timeout)
        assert events.timeouts == 1
        unreachable(lambda: service.members("r1", "b1"))
        assert read_models.timeouts == 1

        proxy.resume()
        service.register_booking(booking("b3"))  # the first command after the outage
        result = service.assign_tables(assign("b3", "M1"))
        assert result.table_ids == ["M1"]
        assert events.timeouts == 1


def test_a_service_cannot_start_while_the_server_is_away(store: Settings, proxy: Proxy) -> None:
    proxy.stop()
    err = unreachable(lambda: AssignmentService(through(store, proxy)))
    assert err.details["operation"] == "open"
    proxy.resume()
    with AssignmentService(through(store, proxy)) as service:
        service.create_restaurant(floor())


def records(sink: RecordingSink, name: str) -> int:
    return len(sink.named(name))


def test_the_worker_waits_at_start_and_through_an_outage(store: Settings, proxy: Proxy) -> None:
    sink, stop = RecordingSink(), threading.Event()
    proxy.stop()
    worker = threading.Thread(
        target=run_worker,
        args=(through(store, proxy, projection_poll_seconds=0.2),),
        kwargs={"stop": stop, "telemetry": Telemetry(sinks=[sink])},
        daemon=True,
    )
    worker.start()
    try:
        wait_until(lambda: records(sink, "worker.waiting") >= 2, timeout=LIVENESS, what="wait")
        waiting = sink.named("worker.waiting")
        assert [r.fields["attempt"] for r in waiting[:2]] == [1, 2]
        assert waiting[0].fields["reason"] == "unreachable"
        assert waiting[1].fields["retry_in_seconds"] > waiting[0].fields["retry_in_seconds"]
        proxy.resume()
        wait_until(lambda: records(sink, "worker.started") == 1, timeout=LIVENESS, what="start")

        with AssignmentService(store.model_copy(update={"projection_mode": "off"})) as direct:
            direct.create_restaurant(floor())
            direct.register_booking(booking("b1"))
            direct.assign_tables(assign("b1", "M1"))
            wait_until(lambda: members(direct, "b1") == ["M1"], timeout=LIVENESS, what="caught up")

            proxy.stop()
            failed_before = records(sink, "projection.failed")
            direct.register_booking(booking("b2"))
            direct.assign_tables(assign("b2", "M2"))
            wait_until(
                lambda: records(sink, "projection.failed") >= failed_before + 2,
                timeout=LIVENESS,
                what="failures logged during the outage",
            )
            assert members(direct, "b2") == []
            proxy.resume()
            wait_until(lambda: members(direct, "b2") == ["M2"], timeout=LIVENESS, what="resumed")
    finally:
        stop.set()
        worker.join(LIVENESS)
    assert not worker.is_alive()
    assert records(sink, "worker.stopped") == 1


def members(service: AssignmentService, booking_id: str) -> list[str]:
    return [m.table_id for m in service.members("r1", booking_id)]


class Collected:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def publish(self, delivery: Delivery) -> None:
        self.messages.append(delivery.message_id)


def test_the_relay_waits_at_start_and_through_an_outage(store: Settings, proxy: Proxy) -> None:
    with AssignmentService(store.model_copy(update={"projection_mode": "in_process"})) as direct:
        direct.create_restaurant(floor())
        direct.register_booking(booking("b1"))
        direct.assign_tables(assign("b1", "M1"))
        sink, stop, published = RecordingSink(), threading.Event(), Collected()
        proxy.stop()
        relay = threading.Thread(
            target=run_relay,
            args=(through(store, proxy, relay_idle_seconds=0.1),),
            kwargs={"stop": stop, "telemetry": Telemetry(sinks=[sink]), "publisher": published},
            daemon=True,
        )
        relay.start()
        try:
            wait_until(lambda: records(sink, "relay.waiting") >= 2, timeout=LIVENESS, what="wait")
            proxy.resume()
            wait_until(lambda: len(published.messages) >= 1, timeout=LIVENESS, what="published")

            proxy.stop()
            failed_before = records(sink, "outbox.relay_failed")
            direct.register_booking(booking("b2"))
            direct.assign_tables(assign("b2", "M2"))
            wait_until(
                lambda: records(sink, "outbox.relay_failed") >= failed_before + 2,
                timeout=LIVENESS,
                what="failures logged during the outage",
            )
            proxy.resume()
            wait_until(
                lambda: (
                    outbox_counts(direct.read_models).get("capacity.assignment.sync", {})
                    == {"done": 2}
                ),
                timeout=LIVENESS,
                what="everything delivered after the outage",
            )
        finally:
            stop.set()
            relay.join(LIVENESS)
    assert not relay.is_alive()


# --- the command line against an unreachable server -------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["migrate"], ["migrate", "--status"], ["status"], ["relay", "--once"], ["worker", "--once"]],
    ids=" ".join,
)
def test_no_command_prints_a_traceback_when_the_server_is_unreachable(
    command: list[str],
) -> None:
    with refused_port() as port:
        url = f"postgresql://postgres@127.0.0.1:{port}/test?connect_timeout={CONNECT_TIMEOUT}"
        run = run_cli(*command, "--database-url", url)
    assert run.returncode == 1, run.stderr
    assert run.stderr.startswith("error: "), run.stderr
    assert "Traceback" not in run.stderr


def test_a_long_running_worker_waits_for_an_unreachable_server_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    log = tmp_path / "worker.log"
    with refused_port() as port, log.open("ab") as stderr:
        url = f"postgresql://postgres@127.0.0.1:{port}/test?connect_timeout={CONNECT_TIMEOUT}"
        worker = subprocess.Popen(
            [SEATLEDGER, "worker", "--log-format", "json", "--database-url", url],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            wait_until(
                lambda: log.read_text().count('"worker.waiting"') >= 2,
                timeout=LIVENESS,
                what="the worker logs that it waits",
                alive=worker,
                log=log,
            )
        finally:
            code = stop_process(worker, timeout=LIVENESS)
    assert code == 0
    text = log.read_text()
    assert "Traceback" not in text
    waiting = [json.loads(line) for line in text.splitlines() if '"worker.waiting"' in line]
    assert waiting[0]["reason"] == "unreachable"

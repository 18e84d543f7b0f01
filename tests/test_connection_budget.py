"""The connection budget (issue 8, item 4): how many PostgreSQL connections each process holds,
idle and busy, with the default settings; every one of them names itself in
``pg_stat_activity`` (``application_name``).

The connections are found from this process's side: the sockets it has open to the server
(``/proc``), matched to ``pg_stat_activity`` by client port, so a connection that forgot its
name cannot hide.
"""

from __future__ import annotations

import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from eventsourcing.postgres import PostgresApplicationRecorder

from seatledger.application.schema import migrate_store
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import RecordingSink, Telemetry
from seatledger.application.worker import run_relay, run_worker
from seatledger.projections.db import PostgresReadModels
from tests.support import DAY, booking, floor
from tests.test_worker import wait_until

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)"),
]

#: The documented budget with the default settings (docs/operations.md): idle, and at most.
SERVICE_IDLE, SERVICE_MAX = 2, 6
WORKER_IDLE = 3
RELAY_IDLE = 1


def own_sockets_to(port: int) -> set[int]:
    """Local ports of this process's TCP connections to ``port`` on the server."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == port and state == "01":
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


class Census:
    """This process's connections to the server opened since the census began, by name."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.before = own_sockets_to(settings.postgres_port)

    def names(self) -> list[str]:
        ports = own_sockets_to(self.settings.postgres_port) - self.before
        with psycopg.connect(self.settings.postgres_conninfo(), autocommit=True) as conn:
            mine = own_sockets_to(self.settings.postgres_port) - self.before - ports
            rows = conn.execute(
                "SELECT client_port, application_name FROM pg_stat_activity"
                " WHERE client_port = ANY(%s) AND pid <> pg_backend_pid()",
                (sorted(ports - mine),),
            ).fetchall()
        return sorted(str(name) for _, name in rows)


@pytest.fixture
def budget(postgres_schema: str) -> Settings:
    """Default settings on a migrated schema, under a name of this test's own."""
    name = f"budget-{uuid.uuid4().hex[:8]}"
    settings = Settings(persistence="postgres", postgres_schema=postgres_schema)
    migrate_store(settings)
    return settings.model_copy(update={"application_name": name})


def full_pools(service: AssignmentService) -> None:
    """Wait until each pool has opened its minimum (it does so in the background)."""
    assert isinstance(service.recorder, PostgresApplicationRecorder)
    assert isinstance(service.read_models, PostgresReadModels)
    service.recorder.datastore.pool.wait()
    service.read_models.pool.wait()


def test_a_service_holds_two_connections_idle_and_six_at_most(budget: Settings) -> None:
    census = Census(budget)
    with AssignmentService(budget.model_copy(update={"projection_mode": "in_process"})) as svc:
        full_pools(svc)
        assert census.names() == [f"{budget.application_name}-service"] * SERVICE_IDLE
        svc.create_restaurant(floor())
        busiest: list[int] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                busiest.append(len(census.names()))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        with ThreadPoolExecutor(16) as pool:
            # one day per booking: the load is on the connections, not on one aggregate
            list(
                pool.map(
                    lambda n: svc.register_booking(
                        booking(f"b{n}", service_date=DAY + timedelta(days=n))
                    ),
                    range(64),
                )
            )
        stop.set()
        watcher.join()
        assert max(busiest) <= SERVICE_MAX
        assert set(census.names()) == {f"{budget.application_name}-service"}


def test_a_worker_holds_three_connections_idle(budget: Settings) -> None:
    census = Census(budget)
    settings = budget.model_copy(update={"process_role": "worker"})
    stop, idle = threading.Event(), threading.Event()
    worker = threading.Thread(
        target=run_worker,
        args=(settings,),
        kwargs={"stop": stop, "on_idle": idle.set, "telemetry": Telemetry()},
        daemon=True,
    )
    worker.start()
    try:
        wait_until(idle.is_set, timeout=60, what="the worker is idle")
        # the start's migration check closed its connection (its backend may still be
        # leaving): what stays is the pools at their minimum
        expected = [f"{budget.application_name}-worker"] * WORKER_IDLE
        wait_until(lambda: census.names() == expected, timeout=60, what="pools at minimum")
    finally:
        stop.set()
        worker.join(60)


def test_a_relay_holds_one_connection_idle(budget: Settings) -> None:
    census = Census(budget)
    settings = budget.model_copy(update={"process_role": "relay", "relay_idle_seconds": 0.05})
    stop, events = threading.Event(), RecordingSink()
    relay = threading.Thread(
        target=run_relay,
        args=(settings,),
        kwargs={"stop": stop, "telemetry": Telemetry(sinks=[events])},
        daemon=True,
    )
    relay.start()
    try:
        # serving: the start's migration check has closed its own connection (its backend
        # may still be leaving), and the relay's pool is what stays
        wait_until(lambda: bool(events.named("relay.started")), timeout=60, what="relay serving")
        expected = [f"{budget.application_name}-relay"] * RELAY_IDLE
        wait_until(lambda: census.names() == expected, timeout=60, what="one idle connection")
    finally:
        stop.set()
        relay.join(60)

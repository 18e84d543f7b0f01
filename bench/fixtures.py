"""Set-up shared by the issue-12 benchmarks, through the public service API only.

Restaurants are the sample grid floor (``grid_floor``: 25 tables per zone); a booking of the
command benchmarks is a party that fills one active table exactly, so every assignment is a
single table, allowed by any policy. Days are filled through the command API on a memory
service (fast: no I/O) and the stored events copied into the measured store
(``copy_log``): the measured store then holds exactly what the service wrote. The projection
worker, when one is needed, is the real ``seatledger worker`` in a subprocess.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent

from bench.common import postgres_settings, scratch_schema_names, scratch_schemas
from seatledger.application.commands import (
    AssignTables,
    CreateRestaurant,
    RegisterBooking,
    UnassignTables,
)
from seatledger.application.samples import grid_floor
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import Telemetry
from seatledger.domain.layout import Table

DAY = date(2026, 11, 24)
ACTOR = "bench-host"


def quiet_telemetry() -> Telemetry:
    """No log lines from the measured services (a warning per command would be measured
    too, and floods the terminal); the same telemetry object on every side."""
    return Telemetry(logger=logging.Logger("seatledger.bench", level=logging.CRITICAL + 1))


def open_service(settings: Settings) -> AssignmentService:
    return AssignmentService(settings, telemetry=quiet_telemetry())


@dataclass(frozen=True)
class Floor:
    zones: int

    def create(self, restaurant_id: str) -> CreateRestaurant:
        return grid_floor(self.zones, 25).create(
            restaurant_id, command_id=f"bench-create-{restaurant_id}"
        )

    @property
    def tables(self) -> list[Table]:
        """The active tables (a booking of a table's capacity fits it alone)."""
        return [t for t in grid_floor(self.zones, 25).tables if t.active]


def booking(
    restaurant_id: str, booking_id: str, party: int, day: date, start: str = "19:00"
) -> RegisterBooking:
    return RegisterBooking(
        restaurant_id=restaurant_id,
        booking_id=booking_id,
        party_size=party,
        service_date=day,
        start_time=clock_time.fromisoformat(start),
        command_id=f"register-{restaurant_id}-{booking_id}",
        actor_id=ACTOR,
    )


def assign(restaurant_id: str, booking_id: str, table_id: str) -> AssignTables:
    return AssignTables(
        restaurant_id=restaurant_id,
        booking_id=booking_id,
        table_ids=[table_id],
        actor_id=ACTOR,
    )


def unassign(restaurant_id: str, booking_id: str) -> UnassignTables:
    return UnassignTables(restaurant_id=restaurant_id, booking_id=booking_id, actor_id=ACTOR)


def spread_bookings(
    service: AssignmentService, restaurant_id: str, floor: Floor, count: int, prefix: str
) -> list[tuple[str, str]]:
    """Register ``count`` bookings, one per active table at 19:00, on as many days as that
    takes (a day holds one booking per table); returns (booking id, its table)."""
    tables = floor.tables
    plan: list[tuple[str, str]] = []
    for index in range(count):
        table = tables[index % len(tables)]
        booking_id = f"{prefix}{index:05d}"
        day = DAY + timedelta(days=index // len(tables))
        service.register_booking(booking(restaurant_id, booking_id, table.capacity, day))
        plan.append((booking_id, table.table_id))
    return plan


def stored_events(service: AssignmentService) -> list[StoredEvent]:
    """Every event of a (memory) service's store, in notification order, to copy elsewhere."""
    events: list[StoredEvent] = []
    last = 0
    while True:
        page = service.recorder.select_notifications(
            start=last, limit=1000, inclusive_of_start=False
        )
        if not page:
            return events
        events.extend(
            StoredEvent(n.originator_id, n.originator_version, n.topic, n.state) for n in page
        )
        last = page[-1].id


def memory_settings() -> Settings:
    return Settings(persistence="memory", projection_mode="off", read_your_writes_timeout_ms=0)


# --- stores ----------------------------------------------------------------------------------


@contextmanager
def postgres_schema(label: str) -> Iterator[str]:
    """A fresh scratch schema ``bench_<label>_…``, dropped afterwards."""
    conninfo = Settings().postgres_conninfo()
    (name,) = scratch_schema_names(label, "s")
    with scratch_schemas(conninfo, [name]):
        yield name


@contextmanager
def sqlite_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="seatledger-bench-") as folder:
        yield Path(folder)


def pg_settings(schema: str, **overrides: Any) -> Settings:
    return postgres_settings(schema, **overrides)


# --- the worker and CPU ----------------------------------------------------------------------


@contextmanager
def worker_process(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """``seatledger worker`` for this store in a subprocess (the production set-up), its
    output discarded; stopped with SIGTERM (then killed) at the end."""
    env = dict(os.environ)
    env.update(
        {
            "SEATLEDGER_PERSISTENCE": settings.persistence,
            "SEATLEDGER_POSTGRES_SCHEMA": settings.postgres_schema,
            "SEATLEDGER_SQLITE_PATH": str(settings.sqlite_path),
            "SEATLEDGER_APPLICATION_NAME": settings.application_name,
        }
    )
    code = "import sys; from seatledger.application.cli import main; sys.exit(main(['worker']))"
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process of this machine (None when it is gone or unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


class BackendCpu:
    """CPU of the PostgreSQL backends serving connections named ``application_name`` (the
    server runs on this machine: its backends are processes we can read in /proc)."""

    def __init__(self, conninfo: str, application_name: str) -> None:
        self._conn = psycopg.connect(conninfo, autocommit=True, application_name="bench-monitor")
        self._name = application_name

    def sample(self) -> dict[int, float]:
        rows = self._conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self._name,)
        ).fetchall()
        found = {int(r[0]): process_cpu_seconds(int(r[0])) for r in rows}
        return {pid: cpu for pid, cpu in found.items() if cpu is not None}

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        """CPU between two samples (a backend born between them counts from zero)."""
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())

    def close(self) -> None:
        self._conn.close()


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:g} s")
        time.sleep(0.05)

"""The embedded default (SQLite, projections in-process) under threads and processes
(issue 8, item 1).

One service shared by 32 threads, and 4 processes on one SQLite file, each thread registering
a booking and auto-assigning it on the same day: every command succeeds or gets the domain's
answer; never ``STORAGE_UNAVAILABLE`` (nor a ``CONCURRENCY_CONFLICT`` from writers starving each
other), and nothing deadlocks. The root cause had a precise shape: the in-process catch-up read
the event store while holding the read models' write transaction, which on SQLite is the file's
write lock that the event store's writers wait for; a test pins the order down.
"""

from __future__ import annotations

import multiprocessing
import queue
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import Notification

from seatledger.application.commands import AutoAssign
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.errors import ErrorCode, SeatLedgerError
from seatledger.projections.db import SQLiteReadModels
from seatledger.projections.projection import DayInfo
from seatledger.projections.source import EventSource
from tests.support import DAY, booking, floor

THREADS = 32
PROCESSES = 4
THREADS_PER_PROCESS = 8
SAFETY_NET = 300.0  # seconds before a hung run is called a deadlock (not a speed bound)


def sqlite_settings(path: Path) -> Settings:
    return Settings(persistence="sqlite", sqlite_path=path, projection_mode="in_process")


def seat(service: AssignmentService, booking_id: str, n: int) -> str:
    """Register a booking and auto-assign it: ``ok``, a domain code, or what went wrong."""
    try:
        service.register_booking(booking(booking_id, start=f"{12 + n % 10}:{15 * (n % 4):02d}"))
        service.auto_assign(AutoAssign(restaurant_id="r1", booking_id=booking_id))
    except SeatLedgerError as err:
        return str(err.code) if isinstance(err.code, ErrorCode) else f"infrastructure: {err}"
    return "ok"


def seat_all(service: AssignmentService, prefix: str, count: int) -> list[str]:
    """``count`` threads released together, each seating one booking."""
    gate = threading.Barrier(count)

    def run(n: int) -> str:
        gate.wait(SAFETY_NET)
        return seat(service, f"{prefix}{n}", n)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count), timeout=SAFETY_NET))


def check_outcomes(outcomes: Sequence[str]) -> None:
    failures = [o for o in outcomes if o != "ok" and o not in {str(c) for c in ErrorCode}]
    assert failures == []
    assert "ok" in outcomes


def check_the_floor(service: AssignmentService) -> None:
    """No table in two overlapping bookings; every seated booking is in the members read
    model with exactly its tables."""
    day = service.get_day("r1", DAY)
    seated = [b for b in day.bookings if b.table_ids]
    assert seated
    for a, b in combinations(seated, 2):
        if a.window.overlaps(b.window):
            assert not set(a.table_ids) & set(b.table_ids), (a.booking_id, b.booking_id)
    service.catch_up_projections()
    for b in seated:
        members = service.members("r1", b.booking_id)
        assert sorted(m.table_id for m in members) == sorted(b.table_ids)


def test_one_service_shared_by_32_threads(tmp_path: Path) -> None:
    with AssignmentService(sqlite_settings(tmp_path / "shared.db")) as service:
        service.create_restaurant(floor())
        outcomes = seat_all(service, "t", THREADS)
        check_outcomes(outcomes)
        check_the_floor(service)


def seat_in_process(path: Path, index: int, barrier: Any, results: Any) -> None:
    with AssignmentService(sqlite_settings(path)) as service:
        barrier.wait(SAFETY_NET)
        results.put(seat_all(service, f"p{index}-", THREADS_PER_PROCESS))


@pytest.mark.slow
def test_four_processes_on_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with AssignmentService(sqlite_settings(path)) as setup:
        setup.create_restaurant(floor())
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=seat_in_process, args=(path, i, barrier, results))
        for i in range(PROCESSES)
    ]
    outcomes: list[str] = []
    try:
        for process in processes:
            process.start()
        for _ in processes:
            outcomes += results.get(timeout=SAFETY_NET)
        for process in processes:
            process.join(SAFETY_NET)
    except queue.Empty:
        pytest.fail(f"processes stopped reporting (deadlock?); got {outcomes}")
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join()
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    assert len(outcomes) == PROCESSES * THREADS_PER_PROCESS
    check_outcomes(outcomes)
    with AssignmentService(sqlite_settings(path)) as reader:
        check_the_floor(reader)


class WatchedSource(EventSource):
    """Records whether the calling thread's read-model connection was inside a transaction
    whenever the event store was read."""

    def __init__(self, inner: EventSource, db: SQLiteReadModels) -> None:
        super().__init__(inner.recorder, inner.mapper)
        self.db = db
        self.reads_inside_a_transaction: list[str] = []

    def _watch(self, what: str) -> None:
        conn: sqlite3.Connection | None = getattr(self.db._local, "conn", None)
        if conn is not None and conn.in_transaction:
            self.reads_inside_a_transaction.append(what)

    def page(self, after: int, limit: int, topics: Sequence[str]) -> Sequence[Notification]:
        self._watch("page")
        return super().page(after, limit, topics)

    def day_of(self, event: DomainEvent) -> DayInfo:
        self._watch("day_of")
        return super().day_of(event)


def test_a_runner_never_reads_the_event_store_inside_a_read_model_transaction(
    tmp_path: Path,
) -> None:
    settings = sqlite_settings(tmp_path / "order.db").model_copy(update={"projection_mode": "off"})
    with AssignmentService(settings) as service:
        service.create_restaurant(floor())
        for n in range(3):
            seat(service, f"b{n}", n)
        assert isinstance(service.read_models, SQLiteReadModels)
        watched = WatchedSource(service.event_source, service.read_models)
        for runner in service.projection_runners:
            runner.source = watched
        assert service.catch_up_projections() > 0
        assert watched.reads_inside_a_transaction == []

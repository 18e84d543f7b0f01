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

from seatledger.application.commands import AutoAssign, CancelBooking
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.errors import ErrorCode, SeatLedgerError
from seatledger.projections.db import SQLiteReadModels
from seatledger.projections.members import all_members
from seatledger.projections.outbox import all_outbox
from seatledger.projections.projection import DayInfo
from seatledger.projections.source import EventSource
from tests.support import DAY, assign, booking, floor, unassign

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


def test_catch_up_from_what_a_service_saved_matches_the_log(tmp_path: Path) -> None:
    """The catch-up after a save takes the saved events from memory when nothing else was
    written in between, and reads the log at a gap (another writer's events): with two
    in-process services and one that does not project on one file, every command sees its
    own members, and the read models equal a rebuild from the log."""
    path = tmp_path / "two.db"

    # a long poll: no background rounds, only the catch-ups after the saves
    def settings(mode: str = "in_process") -> Settings:
        return Settings.model_validate(
            {
                "persistence": "sqlite",
                "sqlite_path": path,
                "projection_mode": mode,
                "projection_poll_seconds": 600.0,
            }
        )

    a, c, b = (
        AssignmentService(settings()),
        AssignmentService(settings()),
        AssignmentService(settings("off")),
    )
    outcomes: list[bool] = []  # a's pages: from memory (True) or read from the log (False)
    known_page = a.event_source.known_page

    def watched(
        after: int, limit: int, topics: Sequence[str], upto: int
    ) -> list[Notification] | None:
        page = known_page(after, limit, topics, upto)
        outcomes.append(page is not None)
        return page

    a.event_source.known_page = watched  # type: ignore[method-assign]

    def seen(result: Any) -> None:
        assert result.members and all(m.assignment_id for m in result.members)

    try:
        a.create_restaurant(floor())
        for n, start in enumerate(("18:00", "18:30", "19:00", "20:00", "21:00")):
            a.register_booking(booking(f"b{n}", 2, start))
        seen(a.assign_tables(assign("b0", "M1")))
        seen(a.assign_tables(assign("b1", "M2")))
        assert outcomes and all(outcomes)  # nothing else written: no log read
        b.assign_tables(assign("b4", "M4"))  # not projected by b
        b.unassign_tables(unassign("b0", "M1"))
        outcomes.clear()
        seen(a.assign_tables(assign("b2", "M3")))
        assert False in outcomes  # b's events are a gap: read from the log
        assert a.members("r1", "b4") and not a.members("r1", "b0")
        seen(c.assign_tables(assign("b3", "P5")))
        seen(a.assign_tables(assign("b1", "M1", "M2", replace=True)))
        seen(c.assign_tables(assign("b0", "P4")))
        a.unassign_tables(unassign("b2"))
        a.cancel_booking(CancelBooking(restaurant_id="r1", booking_id="b3"))
        # what a service remembers of its saves is what decoding the log gives
        remembered = list(a.event_source._memo.values())
        assert remembered
        for notification, event in remembered:
            assert a.event_source.decoder.decode(notification) == event
        a.catch_up_projections()
        members, outbox = all_members(a.read_models), all_outbox(a.read_models)
        for runner in a.projection_runners:
            runner.rebuild()
        assert all_members(a.read_models) == members
        assert all_outbox(a.read_models) == outbox
        assert len(members) == 4  # b0 P4, b1 M1 M2, b4 M4
    finally:
        for service in (a, b, c):
            service.close()

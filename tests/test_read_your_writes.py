"""Read-your-writes without sleeping (issue 12): a result's members come from the command's
own events (the ids the read model gives its rows), and where the result waits for the read
model, the wait ends when the members projection passes the command's save."""

from __future__ import annotations

import threading
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from seatledger.application.commands import AutoAssign, CancelBooking
from seatledger.application.read_your_writes import LONGEST_PAUSE_SECONDS
from seatledger.application.results import AssignmentResult, Member
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import RecordingSink, Telemetry
from seatledger.domain.layout import layout_id
from seatledger.domain.service_day import day_id
from tests.conftest import settings_for
from tests.support import DAY, assign, booking, floor, unassign


def row_form(members: list[Member]) -> list[tuple[Any, ...]]:
    """A member as its read-model row says it (instants in UTC)."""
    return [
        (
            m.booking_id,
            m.table_id,
            m.assignment_id,
            m.start_at.astimezone(UTC),
            m.end_at.astimezone(UTC),
            m.merge_group_id,
        )
        for m in sorted(members, key=lambda m: m.table_id)
    ]


def test_members_from_events_equal_the_read_model_rows(settings: Settings) -> None:
    """Every kind of change: the result's ids, derived from its events, are the rows' ids."""
    with AssignmentService(settings) as service:
        service.create_restaurant(floor())
        service.register_booking(booking("b1", 4))
        service.register_booking(booking("b2", 2))
        service.register_booking(booking("b3", 2, "12:00"))
        results: list[AssignmentResult] = [
            service.assign_tables(assign("b1", "M1", "M2")),
            service.auto_assign(AutoAssign(restaurant_id="r1", booking_id="b2")).assignment
            or pytest.fail("auto-assign seated nothing"),
            service.unassign_tables(unassign("b1", "M2")),
            service.assign_tables(assign("b1", "M2")),
            service.assign_tables(assign("b3", "M3")),
        ]
        service.cancel_booking(CancelBooking(restaurant_id="r1", booking_id="b3"))
        for result in results:
            assert result.members and all(m.assignment_id for m in result.members)
        service.catch_up_projections()
        latest = {result.booking_id: result for result in results}
        for booking_id in ("b1", "b2"):
            rows = service.members("r1", booking_id)
            assert row_form(rows) == row_form(latest[booking_id].members)
        assert service.members("r1", "b3") == []


def waiting_service(tmp_path: Path, **extra: Any) -> AssignmentService:
    """A service whose projections run elsewhere (a worker), with a generous timeout: the
    tests decide when the "worker" moves, so the timeout is never what ends a wait."""
    settings = Settings(
        persistence="sqlite",
        sqlite_path=tmp_path / "s.db",
        projection_mode="worker",
        read_your_writes_timeout_ms=60_000,
        **extra,
    )
    return AssignmentService(settings, telemetry=Telemetry(sinks=[RecordingSink()]))


def test_the_wait_ends_when_the_members_projection_passes_the_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The result polls the projection's tracking position, with short growing pauses, and
    returns as soon as it passes the command's save: here the worker moves during the third
    pause, so the fourth look at the position ends the wait, rows never read."""
    pauses: list[float] = []
    moved = threading.Event()
    workers: list[AssignmentService] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:
            workers[0].catch_up_projections()  # the worker's turn
            moved.set()

    monkeypatch.setattr("seatledger.application.read_your_writes.time.sleep", sleep)
    with waiting_service(tmp_path) as service, waiting_service(tmp_path) as worker:
        workers.append(worker)
        service.create_restaurant(floor())
        service.register_booking(booking("b1", 4))
        runner = next(r for r in service.projection_runners if r.name == "members")
        looks: list[int] = []
        position = runner.position

        def look() -> int:
            looks.append(position())
            return looks[-1]

        monkeypatch.setattr(runner, "position", look)
        result = service.assign_tables(assign("b1", "M1", "M2"))
        assert moved.is_set()
        assert len(pauses) == 3 and len(looks) == 4
        assert pauses == sorted(pauses) and max(pauses) <= LONGEST_PAUSE_SECONDS
        assert looks[:3] == [looks[0]] * 3 and looks[3] > looks[0]
        assert all(m.assignment_id for m in result.members)
        assert row_form(service.members("r1", "b1")) == row_form(result.members)


def test_in_process_projections_need_no_wait_and_no_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service projected its save in its own thread: no pause, no read back."""
    settings = Settings(persistence="sqlite", sqlite_path=tmp_path / "s.db")
    pauses: list[float] = []
    monkeypatch.setattr("seatledger.application.read_your_writes.time.sleep", pauses.append)
    with AssignmentService(settings) as service:
        service.create_restaurant(floor())
        service.register_booking(booking("b1", 4))
        monkeypatch.setattr(
            "seatledger.application.read_your_writes.booking_members",
            lambda *args: pytest.fail("read back"),
        )
        result = service.assign_tables(assign("b1", "M1", "M2"))
    assert pauses == [] and all(m.assignment_id for m in result.members)


@pytest.mark.postgres
def test_a_worker_in_another_thread_ends_the_wait(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """PostgreSQL in its production mode: the projections run in a worker (here a thread
    with its own service), and the command's result shows the rows the worker wrote."""
    settings = settings_for("postgres", request, tmp_path).model_copy(
        update={"projection_mode": "worker", "read_your_writes_timeout_ms": 60_000}
    )
    sink = RecordingSink()
    stop = threading.Event()
    with (
        AssignmentService(settings, telemetry=Telemetry(sinks=[sink])) as service,
        AssignmentService(settings) as worker,
    ):

        def work() -> None:
            while not stop.is_set():
                worker.catch_up_projections()
                stop.wait(0.001)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        try:
            service.create_restaurant(floor())
            service.register_booking(booking("b1", 4))
            result = service.assign_tables(assign("b1", "M1", "M2"))
        finally:
            stop.set()
            thread.join()
        assert all(m.assignment_id for m in result.members)
        assert row_form(service.members("r1", "b1")) == row_form(result.members)
        assert sink.named("assignments.rows_missing") == []


# --- caches sized in restaurants --------------------------------------------------------------


def test_cache_sizes_are_set_in_restaurants() -> None:
    settings = Settings(
        persistence="memory",
        cache_restaurants=3,
        cache_days_per_restaurant=2,
        directory_cache_per_restaurant=10,
    )
    assert settings.aggregate_cache_entries == 9  # a layout and two days each
    assert settings.directory_cache_entries == 30
    assert settings.eventsourcing_env()["AGGREGATE_CACHE_MAXSIZE"] == "9"
    assert Settings(aggregate_cache_size=7).aggregate_cache_entries == 7  # spelled out


def test_directory_entries_never_evict_service_days() -> None:
    """One restaurant's worth of cache: its layout and its day stay cached however many
    bookings the day files (their directory entries have a cache of their own)."""
    settings = Settings(persistence="memory", cache_restaurants=1, cache_days_per_restaurant=1)
    with AssignmentService(settings) as service:
        service.create_restaurant(floor())
        for number in range(20):
            service.register_booking(booking(f"b{number}", 2, f"{12 + number % 9}:00"))
            service.get_booking("r1", f"b{number}")  # a directory look-up
        service.assign_tables(assign("b0", "M1"))
        cache: Any = service.repository.cache
        assert set(cache.cache) == {layout_id("r1"), day_id("r1", DAY)}

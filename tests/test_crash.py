"""Crash and race tests of the projection worker, on PostgreSQL and SQLite.

A realistic log of >= 20,000 events (``seatledger.application.testing.workload``) is copied
into a fresh store with projections off. Worker processes then catch it up and are SIGKILLed
at random points of their progress (chosen from the tracking positions the test watches),
restarted each time, and finally allowed to finish. The members and outbox rows must then equal, row
for row, those of a clean catch-up of the same log in a separate store, with exactly one
``capacity.assignment.sync`` per table-set-changing event. Two workers started at once on one
store must never apply anything twice either.
"""

from __future__ import annotations

import random
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.testing.workload import copy_log, generate_log, table_set_changes
from seatledger.projections.members import MembersProjection, all_members
from seatledger.projections.outbox import SYNC, OutboxProjection, all_outbox
from tests.conftest import RUN_PREFIX, require_postgres
from tests.test_worker import start_worker, stop_process, telemetry_lines, wait_until

pytestmark = pytest.mark.slow

LOG_EVENTS = 20_000
SEED = 20_261_124
#: Small pages, so that a kill lands in the middle of a catch-up.
PAGE_SIZE = 200
POLL_SECONDS = 0.2
KILLS = 6
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass(frozen=True)
class Rows:
    members: list[tuple[Any, ...]]
    outbox: list[tuple[Any, ...]]


@dataclass(frozen=True)
class KillPoint:
    threshold: int
    members: int
    outbox: int


def read_rows(service: AssignmentService) -> Rows:
    return Rows(all_members(service.read_models), all_outbox(service.read_models))


def store_settings(backend: str, *, schema: str = "public", path: Path | None = None) -> Settings:
    if backend == "postgres":
        return Settings(
            persistence="postgres",
            postgres_schema=schema,
            postgres_pool_size=2,
            projection_mode="off",
            projection_page_size=PAGE_SIZE,
            projection_poll_seconds=POLL_SECONDS,
        )
    assert path is not None
    return Settings(
        persistence="sqlite",
        sqlite_path=path,
        projection_mode="off",
        projection_page_size=PAGE_SIZE,
        projection_poll_seconds=POLL_SECONDS,
    )


def last_relevant(log: Sequence[StoredEvent], topics: Sequence[str]) -> int:
    """The notification id a projection's position ends at once the copied log is caught up
    (a fresh store numbers the copied events 1..n)."""
    wanted = set(topics)
    return max(n for n, event in enumerate(log, start=1) if event.topic in wanted)


def ends(log: Sequence[StoredEvent]) -> tuple[int, int]:
    """Where the members and outbox positions end for the copied log."""
    return last_relevant(log, MembersProjection.topics), last_relevant(log, OutboxProjection.topics)


@pytest.fixture(scope="module")
def log() -> list[StoredEvent]:
    stored = generate_log(LOG_EVENTS, seed=SEED, restaurants=2)
    assert len(stored) >= LOG_EVENTS
    return stored


class References:
    """Clean catch-ups of the log, one per backend, each in its own fresh store (a schema or
    a file nobody else writes to), computed once per module."""

    def __init__(self, log: list[StoredEvent], directory: Path) -> None:
        self.log = log
        self.directory = directory
        self.rows: dict[str, Rows] = {}
        self.schemas: list[str] = []
        #: One ``capacity.assignment.sync`` per table-set-changing event of the log.
        self.expected_syncs = table_set_changes(log)

    def of(self, backend: str) -> Rows:
        if backend not in self.rows:
            if backend == "postgres":
                require_postgres()
                schema = f"{RUN_PREFIX}ref_{uuid.uuid4().hex[:8]}"
                self.schemas.append(schema)
                settings = store_settings(backend, schema=schema)
            else:
                settings = store_settings(backend, path=self.directory / "reference.db")
            # another page size than the workers': rows must not depend on page boundaries
            with AssignmentService(settings.model_copy(update={"projection_page_size": 500})) as s:
                copy_log(self.log, s.recorder)
                s.catch_up_projections()
                # a catch-up that stopped early (a busy lock) must not become the reference
                assert positions(s) == ends(self.log)
                self.rows[backend] = read_rows(s)
        return self.rows[backend]

    def close(self) -> None:
        if not self.schemas:
            return
        with psycopg.connect(Settings().postgres_conninfo(), autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


@pytest.fixture(scope="module")
def references(
    log: list[StoredEvent], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[References]:
    refs = References(log, tmp_path_factory.mktemp("reference"))
    try:
        yield refs
    finally:
        refs.close()


@dataclass
class Case:
    """One test's world: a fresh store holding the copied log (nothing projected yet), the
    log, its clean rebuild, and the worker processes started (killed if still running)."""

    backend: str
    store: AssignmentService
    log: list[StoredEvent]
    references: References
    directory: Path
    processes: list[subprocess.Popen[bytes]]

    def start_worker(self, name: str) -> tuple[subprocess.Popen[bytes], Path]:
        path = self.directory / f"{name}.log"
        worker = start_worker(self.store.settings, path)
        self.processes.append(worker)
        return worker, path

    def reference(self) -> Rows:
        return self.references.of(self.backend)


@pytest.fixture
def case(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    references: References,
) -> Iterator[Case]:
    log = references.log
    if backend == "postgres":
        settings = store_settings(backend, schema=request.getfixturevalue("postgres_schema"))
    else:
        settings = store_settings(backend, path=tmp_path / "store.db")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with AssignmentService(settings) as service:
            assert copy_log(log, service.recorder, batch=1000) == len(log)
            assert service.recorder.max_notification_id() == len(log)
            assert positions(service) == (0, 0)
            yield Case(backend, service, log, references, tmp_path, processes)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def positions(service: AssignmentService) -> tuple[int, int]:
    members, outbox = service.projection_runners
    assert members.name == "members" and outbox.name == "outbox"
    return members.position(), outbox.position()


def assert_rows_match(service: AssignmentService, reference: Rows, expected_syncs: int) -> None:
    rows = read_rows(service)
    assert len(rows.members) == len(reference.members)
    assert len(rows.outbox) == len(reference.outbox)
    assert rows.members == reference.members
    assert rows.outbox == reference.outbox
    ids = [row[0] for row in rows.outbox]
    assert len(set(ids)) == len(ids)
    types = Counter(row[3] for row in rows.outbox)
    assert types[SYNC] == expected_syncs


def failures(logs: Sequence[Path]) -> list[str]:
    return [
        str(record.get("error"))
        for log in logs
        for record in telemetry_lines(log)
        if record.get("event") == "projection.failed"
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_workers_leave_exactly_the_rows_of_a_clean_rebuild(case: Case) -> None:
    store, log, backend = case.store, case.log, case.backend
    rng = random.Random(f"{SEED}-{backend}")
    members_end, outbox_end = ends(log)
    total = members_end + outbox_end
    logs: list[Path] = []
    kills: list[KillPoint] = []
    progress = 0

    def reached(threshold: int) -> bool:
        return sum(positions(store)) >= threshold

    # kill points spread uniformly over both projections' work (members first, then outbox);
    # one the previous worker already ran past moves just beyond where it got
    for kill, target in enumerate(sorted(rng.sample(range(1, total), KILLS))):
        threshold = min(max(target, progress + 1), total)
        worker, path = case.start_worker(f"worker-{kill}")
        logs.append(path)
        wait_until(
            partial(reached, threshold),
            timeout=90,
            interval=0.002,
            what=f"progress {threshold}",
            alive=worker,
            log=path,
        )
        worker.kill()
        assert worker.wait(timeout=10) == -9
        members, outbox = positions(store)
        kills.append(KillPoint(threshold, members, outbox))
        assert members + outbox >= max(threshold, progress)
        progress = members + outbox

    print(f"\n[{backend}] {len(log)} events; positions end at {members_end}/{outbox_end}")
    for n, point in enumerate(kills, start=1):
        print(
            f"[{backend}] kill {n}: threshold {point.threshold} -> committed"
            f" members={point.members} outbox={point.outbox}"
        )
    assert any(0 < p.members < members_end or 0 < p.outbox < outbox_end for p in kills), (
        "no kill landed in the middle of a catch-up"
    )

    worker, path = case.start_worker("worker-final")
    logs.append(path)
    wait_until(
        lambda: positions(store) == (members_end, outbox_end),
        timeout=120,
        what="the final worker caught up",
        alive=worker,
        log=path,
    )
    assert stop_process(worker, timeout=20) == 0
    assert failures(logs) == []

    reference = case.reference()
    assert_rows_match(store, reference, case.references.expected_syncs)

    # re-delivering processed notifications (the first page, random pages) changes nothing
    for start in [1, *rng.sample(range(2, len(log)), 4)]:
        page = store.recorder.select_notifications(start=start, limit=1000)
        for runner in store.projection_runners:
            assert runner.apply_notifications(page) == 0
    assert positions(store) == (members_end, outbox_end)
    assert read_rows(store) == reference


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_started_at_once_never_double_apply(case: Case) -> None:
    store, backend = case.store, case.backend
    members_end, outbox_end = ends(case.log)
    (first, first_log), (second, second_log) = (case.start_worker(n) for n in ("a", "b"))
    pairs = ((first, first_log), (second, second_log))

    def caught_up() -> bool:
        for worker, path in pairs:
            if worker.poll() is not None:
                tail = path.read_text(errors="replace")[-3000:]
                pytest.fail(f"worker {worker.pid} exited ({worker.returncode}):\n{tail}")
        return positions(store) == (members_end, outbox_end)

    wait_until(caught_up, timeout=120, what="both projections caught up")
    # both are still up (no error escaped either of them) and stop cleanly
    assert stop_process(first) == 0
    assert stop_process(second) == 0

    logs = [first_log, second_log]
    seen = failures(logs)
    print(f"\n[{backend}] two workers: projection.failed records: {seen or 'none'}")
    # a lost race may only ever show up as a retried conflict, never as a changed row
    assert all(
        "TrackingConflictError" in error or "UniqueViolation" in error or "Serialization" in error
        for error in seen
    ), seen
    assert_rows_match(store, case.reference(), case.references.expected_syncs)
    started = [
        r for path in logs for r in telemetry_lines(path) if r.get("event") == "worker.started"
    ]
    assert len(started) == 2

    # every notification was applied once, by one of the two (page records follow commits)
    applied = {
        (path.stem, name): sum(
            int(r["notifications"])
            for r in telemetry_lines(path)
            if r.get("event") == "projection.page" and r.get("projection") == name
        )
        for path in logs
        for name in ("members", "outbox")
    }
    print(f"[{backend}] two workers: notifications applied per worker: {applied}")
    for projection in (MembersProjection, OutboxProjection):
        relevant = sum(1 for event in case.log if event.topic in projection.topics)
        assert sum(n for (_, name), n in applied.items() if name == projection.name) == relevant


@pytest.mark.postgres
def test_clean_rebuilds_agree_across_backends(references: References) -> None:
    """Same log, same rows: the PostgreSQL and SQLite read models are identical."""
    assert references.of("postgres") == references.of("sqlite")

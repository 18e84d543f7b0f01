"""The projection worker: LISTEN/NOTIFY wake-ups, a lost LISTEN connection, a clean stop.

Also home of the helpers that start a worker as a separate process (``tests/test_crash.py``
uses them): configured only through ``SEATLEDGER_*`` environment variables, telemetry as JSON
lines on stderr (redirected to a file, never a pipe nobody reads).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import RecordingSink, Telemetry
from seatledger.application.worker import run_worker
from seatledger.domain.errors import ErrorCode, InvalidInputError
from seatledger.projections.loops import ListenWakeups, Wakeups
from seatledger.projections.members import booking_members
from tests.conftest import require_postgres
from tests.support import assign, booking, floor

ROOT = Path(__file__).resolve().parent.parent

#: The console script of this environment (``make`` installs it beside the interpreter).
SEATLEDGER = str(Path(sys.executable).with_name("seatledger"))


def worker_command(*, once: bool = False) -> list[str]:
    """``seatledger worker`` with JSON telemetry on stderr, page records included, so
    tests can read what each process applied."""
    return [
        SEATLEDGER,
        "--log-level",
        "debug",
        "--log-format",
        "json",
        "worker",
        *(["--once"] if once else []),
    ]


def worker_env(settings: Settings) -> dict[str, str]:
    """The process environment that makes ``Settings()`` in the worker mean ``settings``."""
    env = dict(os.environ)
    env.update(
        {
            "SEATLEDGER_PERSISTENCE": settings.persistence,
            "SEATLEDGER_POSTGRES_SCHEMA": settings.postgres_schema,
            "SEATLEDGER_SQLITE_PATH": str(settings.sqlite_path),
            "SEATLEDGER_PROJECTION_PAGE_SIZE": str(settings.projection_page_size),
            "SEATLEDGER_PROJECTION_POLL_SECONDS": str(settings.projection_poll_seconds),
            "SEATLEDGER_POSTGRES_POOL_SIZE": "2",
            "SEATLEDGER_POSTGRES_MAX_OVERFLOW": "2",
        }
    )
    return env


def start_worker(settings: Settings, log: Path, *, once: bool = False) -> subprocess.Popen[bytes]:
    """Start a worker process whose stderr is appended to ``log``."""
    with log.open("ab") as stderr:
        return subprocess.Popen(
            worker_command(once=once),
            env=worker_env(settings),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def telemetry_lines(log: Path) -> list[dict[str, Any]]:
    """The JSON telemetry records a worker wrote to ``log`` (other lines are ignored)."""
    if not log.exists():
        return []
    records: list[dict[str, Any]] = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by SIGKILL
                continue
    return records


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.01,
    alive: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds (a liveness deadline,
    not a speed assertion), or as soon as the ``alive`` process has exited."""
    deadline = time.monotonic() + timeout
    while not condition():
        if alive is not None and alive.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log is not None else ""
            pytest.fail(f"worker exited ({alive.returncode}) while waiting for {what}:\n{tail}")
        if time.monotonic() > deadline:
            pytest.fail(f"not reached within {timeout} s: {what}")
        time.sleep(interval)


def stop_process(process: subprocess.Popen[bytes], *, timeout: float = 20.0) -> int:
    """SIGTERM, then the exit code (killed and failed if it does not stop in time)."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"worker {process.pid} did not stop within {timeout} s of SIGTERM")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes a test started; any still running afterwards are killed."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()


# --- in-process worker (PostgreSQL) ----------------------------------------------------------


class ThreadWorker:
    """``run_worker`` in a background thread, with its wake-ups and telemetry at hand."""

    def __init__(
        self,
        settings: Settings,
        *,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.sink = RecordingSink()
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.idle = threading.Event()
        self.wakeups: Wakeups | None = None
        self.error: BaseException | None = None
        self._on_idle = on_idle
        self.thread = threading.Thread(target=self._run, name="test-worker", daemon=True)

    def _run(self) -> None:
        try:
            run_worker(
                self.settings,
                stop=self.stop,
                telemetry=Telemetry(sinks=[self.sink]),
                on_idle=self._idle,
                on_ready=self._ready,
            )
        except BaseException as exc:
            self.error = exc
            raise

    def _ready(self, service: AssignmentService, wakeups: Wakeups) -> None:
        self.wakeups = wakeups
        self.ready.set()

    def _idle(self) -> None:
        if self._on_idle is not None:
            self._on_idle()
        self.idle.set()

    @property
    def listen(self) -> ListenWakeups:
        assert isinstance(self.wakeups, ListenWakeups)
        return self.wakeups

    def listen_pid(self) -> int | None:
        return self.listen.backend_pid

    def __enter__(self) -> ThreadWorker:
        self.thread.start()
        wait_until(self.ready.is_set, timeout=30, what="worker ready")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the worker thread did not stop"


def pg_settings(schema: str, **overrides: Any) -> Settings:
    return Settings(
        persistence="postgres",
        postgres_schema=schema,
        projection_mode="off",
        postgres_pool_size=2,
        **overrides,
    )


def seeded_store(settings: Settings) -> AssignmentService:
    """A store (projections off) with a restaurant and two bookings, none assigned yet."""
    service = AssignmentService(settings)
    service.create_restaurant(floor())
    service.register_booking(booking("b1", 4))
    service.register_booking(booking("b2", 2, "20:00"))
    return service


def visible(service: AssignmentService, booking_id: str) -> list[str]:
    return [row.table_id for row in booking_members(service.read_models, "r1", booking_id)]


def terminate_backend(settings: Settings, pid: int) -> bool:
    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
        row = conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
    return bool(row and row[0])


@pytest.mark.postgres
def test_worker_survives_its_listen_connection_being_killed(postgres_schema: str) -> None:
    settings = pg_settings(postgres_schema, projection_poll_seconds=1.0)
    with seeded_store(settings) as service, ThreadWorker(settings) as worker:
        wait_until(lambda: worker.listen_pid() is not None, timeout=20, what="LISTEN connected")
        pid = worker.listen_pid()
        assert pid is not None
        assert terminate_backend(settings, pid)
        wait_until(
            lambda: bool(worker.sink.named("projection.listen_lost")),
            timeout=20,
            what="projection.listen_lost",
        )

        service.assign_tables(assign("b1", "M1", "M2"))
        wait_until(lambda: visible(service, "b1") == ["M1", "M2"], timeout=20, what="b1 projected")
        wait_until(
            lambda: bool(worker.sink.named("projection.listen_restored")),
            timeout=20,
            what="projection.listen_restored",
        )
        new_pid = worker.listen_pid()
        assert new_pid is not None and new_pid != pid

        # and the restored connection is listening: a later write is projected too
        service.assign_tables(assign("b2", "M5"))
        wait_until(lambda: visible(service, "b2") == ["M5"], timeout=20, what="b2 projected")
    assert worker.error is None
    (lost, *_) = worker.sink.named("projection.listen_lost")
    assert lost.fields["failures"] == 1 and lost.fields["error"]
    assert worker.sink.named("projection.failed") == []


@pytest.mark.postgres
def test_notify_wakes_the_worker_long_before_the_poll_interval(postgres_schema: str) -> None:
    """With a 30 s poll, only NOTIFY can make a new event visible within 10 s."""
    settings = pg_settings(postgres_schema, projection_poll_seconds=30.0)
    with seeded_store(settings) as service, ThreadWorker(settings) as worker:
        wait_until(worker.idle.is_set, timeout=20, what="first catch-up")
        wait_until(lambda: worker.listen_pid() is not None, timeout=20, what="LISTEN connected")
        service.assign_tables(assign("b1", "M1", "M2"))
        wait_until(lambda: visible(service, "b1") == ["M1", "M2"], timeout=10, what="b1 visible")
    assert worker.error is None


@pytest.mark.postgres
def test_an_event_written_before_listen_starts_is_not_left_to_the_poll(
    postgres_schema: str,
) -> None:
    """The worker catches up, then starts listening: an event committed in between sends
    its NOTIFY to nobody. The worker must catch up again once LISTEN is active instead of
    sleeping through the (here 30 s) poll interval."""
    settings = pg_settings(postgres_schema, projection_poll_seconds=30.0)
    with seeded_store(settings) as service:
        written = threading.Event()

        def write_once() -> None:  # runs in the worker thread, after its first catch-up
            if not written.is_set():
                written.set()
                service.assign_tables(assign("b1", "M1", "M2"))

        with ThreadWorker(settings, on_idle=write_once) as worker:
            wait_until(written.is_set, timeout=20, what="first catch-up")
            wait_until(
                lambda: visible(service, "b1") == ["M1", "M2"], timeout=10, what="b1 visible"
            )
    assert worker.error is None


@pytest.mark.postgres
def test_a_listening_worker_honours_stop_without_waiting_out_the_poll(
    postgres_schema: str,
) -> None:
    settings = pg_settings(postgres_schema, projection_poll_seconds=30.0)
    with seeded_store(settings):
        worker = ThreadWorker(settings)
        worker.thread.start()
        wait_until(worker.idle.is_set, timeout=30, what="first catch-up")
        wait_until(lambda: worker.listen_pid() is not None, timeout=20, what="LISTEN connected")
        worker.stop.set()
        worker.thread.join(timeout=10)
        assert not worker.thread.is_alive(), "stop was not honoured within 10 s (poll: 30 s)"
    assert worker.error is None


def returns_within(call: Callable[[], None], seconds: float) -> bool:
    """Whether ``call`` (run in a thread) returns within ``seconds`` (a liveness deadline)."""
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


@pytest.mark.postgres
def test_listen_wakeups_on_a_quiet_channel() -> None:
    """The same properties on a channel of its own, where no other store's NOTIFY (all
    stores of a database share the events table's channel name) can wake the wait early."""
    require_postgres()
    conninfo = Settings().postgres_conninfo()
    channel = f"sl_test_channel_{uuid.uuid4().hex[:8]}"
    wakeups = ListenWakeups(conninfo, channel, Telemetry())
    stop = threading.Event()
    try:
        # (re)connecting returns at once: the caller catches up again with LISTEN active
        assert returns_within(lambda: wakeups.wait(30.0, stop), 10)
        assert wakeups.backend_pid is not None

        def notify() -> None:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(channel)))

        waiting = threading.Thread(target=lambda: wakeups.wait(30.0, stop), daemon=True)
        waiting.start()
        notify()  # LISTEN is registered: even a NOTIFY sent before the wait begins counts
        waiting.join(10)
        assert not waiting.is_alive(), "NOTIFY did not end the wait"

        waiting = threading.Thread(target=lambda: wakeups.wait(30.0, stop), daemon=True)
        waiting.start()
        stop.set()  # before or during the wait: either way it must end long before 30 s
        waiting.join(10)
        assert not waiting.is_alive(), "stop did not end the wait"
    finally:
        stop.set()
        wakeups.close()


# --- worker process ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_worker_process_stops_cleanly_on_sigterm(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    if backend == "postgres":
        settings = pg_settings(request.getfixturevalue("postgres_schema"))
    else:
        settings = Settings(
            persistence="sqlite", sqlite_path=tmp_path / "s.db", projection_mode="off"
        )
    log = tmp_path / "worker.log"
    with seeded_store(settings) as service:
        service.assign_tables(assign("b1", "M1", "M2"))
        worker = start_worker(settings, log)
        processes.append(worker)
        wait_until(
            lambda: visible(service, "b1") == ["M1", "M2"],
            timeout=30,
            what="worker caught up",
            alive=worker,
            log=log,
        )
        assert stop_process(worker, timeout=15) == 0
    events = [record.get("event") for record in telemetry_lines(log)]
    assert "worker.started" in events
    assert events[-1] == "worker.stopped"
    assert "projection.failed" not in events


def test_worker_once_catches_up_and_exits(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    settings = Settings(persistence="sqlite", sqlite_path=tmp_path / "s.db", projection_mode="off")
    with seeded_store(settings) as service:
        service.assign_tables(assign("b1", "M1", "M2"))
        worker = start_worker(settings, tmp_path / "worker.log", once=True)
        processes.append(worker)
        assert worker.wait(timeout=30) == 0
        assert visible(service, "b1") == ["M1", "M2"]


def test_a_worker_refuses_the_memory_store() -> None:
    with pytest.raises(InvalidInputError) as refused:
        run_worker(Settings(persistence="memory"), stop=threading.Event())
    assert refused.value.code == ErrorCode.INVALID_INPUT
    assert refused.value.details["errors"][0]["field"] == "persistence"

"""assign_tables per second in the default configurations, beside the bare library (issue 12
items 1 and 2).

* **PostgreSQL, production default:** ``projection_mode`` worker (the real ``seatledger
  worker`` in a subprocess) and read-your-writes on (the settings' defaults). Beside it, in
  the same schema and the same run: the bare ``eventsourcing`` application's one-event
  get+save (:mod:`bench.bare`), and the same service with ``read_your_writes_timeout_ms=0``
  (one read of the members, no waiting: "without read-your-writes"), whose p50 latency is
  item 2's baseline.
* **SQLite, embedded default:** in-process projections, read-your-writes on; beside the bare
  library on a SQLite file in the same folder.

The sides alternate in ``--rounds`` blocks so drift in the machine's load hits all alike.
Every command assigns a fresh booking (registered beforehand, not timed) its own table.
CPU per command: the benchmark process's ``time.process_time`` (the service; on SQLite it
includes the in-process projection thread), the PostgreSQL backends serving the service's
connections (``/proc/<pid>/stat`` of the pids ``pg_stat_activity`` lists under the
service's ``application_name``) and the worker (its process and its backends).
"""

from __future__ import annotations

import argparse
import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.bare import Bare
from bench.figures import Figure, percentile
from bench.fixtures import (
    BackendCpu,
    Floor,
    assign,
    open_service,
    pg_settings,
    postgres_schema,
    process_cpu_seconds,
    spread_bookings,
    sqlite_folder,
    wait_until,
    worker_process,
)
from bench.report import print_figures
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings

FLOOR = Floor(zones=4)
WARM_UP = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--commands", type=int, default=300, help="commands per side (300)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating blocks (3)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")


@dataclass
class Side:
    """One side's per-command seconds and CPU seconds."""

    times: list[float] = field(default_factory=list)
    process_cpu: float = 0.0
    backend_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.times) / sum(self.times)

    def p(self, share: float) -> float:
        return percentile(self.times, share) * 1000


class Assigner:
    """Assign the next registered booking of a restaurant, timed one command at a time."""

    def __init__(self, service: AssignmentService, restaurant_id: str, count: int) -> None:
        self.service, self.restaurant_id = service, restaurant_id
        service.create_restaurant(FLOOR.create(restaurant_id))
        self._plan = spread_bookings(service, restaurant_id, FLOOR, count, "b")

    def run(self, count: int) -> list[float]:
        times: list[float] = []
        for _ in range(count):
            booking_id, table_id = self._plan.pop(0)
            command = assign(self.restaurant_id, booking_id, table_id)
            began = time.perf_counter()
            self.service.assign_tables(command)
            times.append(time.perf_counter() - began)
        return times

    def visible(self) -> bool:
        """One assignment whose members the read model already shows (ids not "")."""
        booking_id, table_id = self._plan.pop(0)
        result = self.service.assign_tables(assign(self.restaurant_id, booking_id, table_id))
        return all(member.assignment_id for member in result.members)


def blocks(total: int, rounds: int) -> list[int]:
    rounds = max(1, min(rounds, total))
    return [total // rounds + (1 if i < total % rounds else 0) for i in range(rounds)]


def timed(side: Side, run: Callable[[], list[float]], backends: BackendCpu | None) -> None:
    before = backends.sample() if backends else {}
    cpu = time.process_time()
    side.times.extend(run())
    side.process_cpu += time.process_time() - cpu
    if backends:
        side.backend_cpu += BackendCpu.spent(before, backends.sample())


def measure_postgres(commands: int, rounds: int) -> list[Figure]:
    command = f"python -m bench command-rate --commands {commands} --rounds {rounds}"
    token = uuid.uuid4().hex[:8]
    default, plain, bare = Side(), Side(), Side()
    with postgres_schema("cmdrate") as schema:
        settings = pg_settings(schema, application_name=f"bench-{token}")
        quiet = pg_settings(
            schema, application_name=f"bench-{token}-n", read_your_writes_timeout_ms=0
        )
        conninfo = settings.postgres_conninfo()
        with open_service(settings) as service, open_service(quiet) as service_plain:
            ours = Assigner(service, "ryw", commands + WARM_UP + 200)
            theirs = Assigner(service_plain, "plain", commands + WARM_UP)
            library = Bare(settings)
            library.prepare(commands + WARM_UP)
            backends = {
                "ryw": BackendCpu(conninfo, f"bench-{token}-service"),
                "plain": BackendCpu(conninfo, f"bench-{token}-n-service"),
                "worker": BackendCpu(conninfo, f"bench-{token}-worker"),
            }
            try:
                with worker_process(settings) as worker:
                    wait_until(ours.visible, 60, "the worker to project an assignment")
                    for warm in (ours.run, theirs.run, library.run):
                        warm(WARM_UP)
                    worker_before = process_cpu_seconds(worker.pid) or 0.0
                    worker_backends = backends["worker"].sample()
                    for size in blocks(commands, rounds):
                        timed(default, functools.partial(ours.run, size), backends["ryw"])
                        timed(bare, functools.partial(library.run, size), None)
                        timed(plain, functools.partial(theirs.run, size), backends["plain"])
                    worker_cpu = (process_cpu_seconds(worker.pid) or 0.0) - worker_before
                    worker_cpu += BackendCpu.spent(worker_backends, backends["worker"].sample())
            finally:
                for monitor in backends.values():
                    monitor.close()
                library.close()
    per = 1000 / commands
    return [
        Figure(
            "commands_postgres_default",
            "assign_tables/s, PostgreSQL, worker + read-your-writes",
            default.rate,
            "cmd/s",
            bare.rate,
            "bare eventsourcing get+save, one event, same schema",
            ">= 0.7",
            command,
            details={
                "p50_ms": default.p(0.5),
                "p99_ms": default.p(0.99),
                "bare_p50_ms": bare.p(0.5),
                "commands": commands,
            },
        ),
        Figure(
            "cpu_service_postgres",
            "service CPU per command (process_time), PostgreSQL default",
            default.process_cpu * per,
            "ms",
            bare.process_cpu * per,
            "bare library, same process",
            None,
            command,
        ),
        Figure(
            "cpu_backend_postgres",
            "PostgreSQL backend CPU per command (service's connections)",
            default.backend_cpu * per,
            "ms",
            None,
            "",
            None,
            command,
            details={"worker_cpu_per_command_ms": worker_cpu / (2 * commands) * 1000},
        ),
        Figure(
            "ryw_latency_postgres",
            "assign_tables p50 with read-your-writes, PostgreSQL worker",
            default.p(0.5),
            "ms",
            plain.p(0.5),
            "p50 without it (read_your_writes_timeout_ms=0)",
            "<= 1.2",
            command,
            details={"p99_ms": default.p(0.99), "baseline_p99_ms": plain.p(0.99)},
        ),
    ]


def measure_sqlite(commands: int, rounds: int) -> list[Figure]:
    command = f"python -m bench command-rate --commands {commands} --rounds {rounds}"
    ours_side, bare = Side(), Side()
    with sqlite_folder() as folder:
        settings = Settings(persistence="sqlite", sqlite_path=folder / "seatledger.db")
        with open_service(settings) as service:
            ours = Assigner(service, "r1", commands + WARM_UP)
            library = Bare(settings)
            try:
                library.prepare(commands + WARM_UP)
                ours.run(WARM_UP)
                library.run(WARM_UP)
                for size in blocks(commands, rounds):
                    timed(ours_side, functools.partial(ours.run, size), None)
                    timed(bare, functools.partial(library.run, size), None)
            finally:
                library.close()
    per = 1000 / commands
    return [
        Figure(
            "commands_sqlite_default",
            "assign_tables/s, SQLite default (in-process projections)",
            ours_side.rate,
            "cmd/s",
            bare.rate,
            "bare eventsourcing get+save, one event, SQLite file",
            ">= 0.7",
            command,
            details={"p50_ms": ours_side.p(0.5), "bare_p50_ms": bare.p(0.5)},
        ),
        Figure(
            "cpu_service_sqlite",
            "service CPU per command (process_time), SQLite default",
            ours_side.process_cpu * per,
            "ms",
            bare.process_cpu * per,
            "bare library, same process",
            None,
            command,
        ),
    ]


def main(args: argparse.Namespace) -> int:
    figures = measure_sqlite(args.commands, args.rounds)
    if not args.no_postgres:
        figures = measure_postgres(args.commands, args.rounds) + figures
    print_figures("command rate", figures)
    return 0

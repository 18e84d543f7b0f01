"""Contention: how many commands give up when several writers hit one service day at once.

Every writer is its own ``AssignmentService`` (its own connections) on one PostgreSQL store, in
its own thread. A burst: all writers start together at a barrier; each registers its bookings
on the same service day and assigns each one its own table (so no command can fail for a domain
reason: every save races only for the day's next version). A command that loses the race is
re-run on fresh state after the unit of work's back-off, up to ``COMMAND_RETRIES`` times, then
ends in ``CONCURRENCY_CONFLICT``. Reported: the share of commands that gave up (registrations
and assignments apart; a booking whose registration gave up is not assigned), re-runs per
command, and command latency, per burst and overall.
Read models are off (``projection_mode=off``, no read-back): only the event store is raced.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any, TypeVar

from bench.common import (
    load_average,
    machine,
    postgres_settings,
    print_json_line,
    print_table,
    progress,
    scratch_schema_names,
    scratch_schemas,
)
from seatledger.application.commands import (
    AssignTables,
    Command,
    CreateRestaurant,
    RegisterBooking,
)
from seatledger.application.errors import InfrastructureCode
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import Telemetry
from seatledger.domain.errors import SeatLedgerError
from seatledger.domain.layout import Table, Zone

RESTAURANT = "contention"
FIRST_DAY = date(2026, 11, 24)
BARRIER_TIMEOUT = 60.0

C = TypeVar("C", bound=Command)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--writers", type=int, default=8, help="concurrent writers (default 8)")
    parser.add_argument(
        "--bookings", type=int, default=40, help="bookings per writer per burst (default 40)"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=None,
        help="COMMAND_RETRIES for the writers (default: the settings' default)",
    )


@dataclass
class Tally:
    """One writer's outcomes in one burst."""

    commands: Counter[str] = field(default_factory=Counter)
    gave_up: Counter[str] = field(default_factory=Counter)
    other_errors: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)
    reruns: int = 0

    def rerun(self, name: str, fields: dict[str, Any]) -> None:
        if name == "command.retry":
            self.reruns += 1


def restaurant(tables: int) -> CreateRestaurant:
    return CreateRestaurant(
        restaurant_id=RESTAURANT,
        zones=[Zone(zone_id="hall")],
        tables=[
            Table(table_id=f"T{i:04d}", zone_id="hall", capacity=2, movable=False)
            for i in range(tables)
        ],
        command_id="bench-contention-floor",
    )


class Writer:
    """One writer: its own service (opened before the bursts: services opening at the same
    moment on a fresh schema race the library's table creation) and its current tally."""

    def __init__(self, settings: Settings, index: int) -> None:
        self.index = index
        self.tally = Tally()
        self.service = AssignmentService(settings, telemetry=Telemetry(sinks=[self._rerun]))

    def _rerun(self, name: str, fields: dict[str, Any]) -> None:
        self.tally.rerun(name, fields)

    def burst(self, barrier: threading.Barrier, day: date, bookings: int) -> None:
        self.tally = Tally()
        barrier.wait(BARRIER_TIMEOUT)
        for n in range(bookings):
            booking_id = f"{day.isoformat()}-w{self.index}-b{n:03d}"
            table_id = f"T{self.index * bookings + n:04d}"
            register = RegisterBooking(
                restaurant_id=RESTAURANT,
                booking_id=booking_id,
                party_size=2,
                service_date=day,
                start_time=clock_time(19, 0),
            )
            if not run(self.tally, "register", self.service.register_booking, register):
                continue  # nothing to assign
            assign = AssignTables(
                restaurant_id=RESTAURANT, booking_id=booking_id, table_ids=[table_id]
            )
            run(self.tally, "assign", self.service.assign_tables, assign)


def run(tally: Tally, kind: str, method: Callable[[C], object], command: C) -> bool:
    """Run one command and count its outcome; False if it failed."""
    began = time.perf_counter()
    ok = False
    try:
        method(command)
        ok = True
    except SeatLedgerError as err:
        if err.code == InfrastructureCode.CONCURRENCY_CONFLICT:
            tally.gave_up[kind] += 1
        else:
            tally.other_errors[str(err.code)] += 1
    tally.commands[kind] += 1
    tally.seconds.append(time.perf_counter() - began)
    return ok


def burst(writers: list[Writer], day: date, bookings: int) -> tuple[Tally, float]:
    """All writers at once on ``day``; their outcomes summed, and the burst's wall time."""
    barrier = threading.Barrier(len(writers) + 1)
    threads = [
        threading.Thread(target=writer.burst, args=(barrier, day, bookings)) for writer in writers
    ]
    for thread in threads:
        thread.start()
    barrier.wait(BARRIER_TIMEOUT)
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return summed(writer.tally for writer in writers), wall


def summed(tallies: Iterable[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total.commands.update(tally.commands)
        total.gave_up.update(tally.gave_up)
        total.other_errors.update(tally.other_errors)
        total.seconds.extend(tally.seconds)
        total.reruns += tally.reruns
    return total


def percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def row(label: str, tally: Tally, wall: float | None) -> list[object]:
    commands = sum(tally.commands.values())
    return [
        label,
        commands,
        f"{percent(sum(tally.gave_up.values()), commands)} %",
        f"{percent(tally.gave_up['register'], tally.commands['register'])} %",
        f"{percent(tally.gave_up['assign'], tally.commands['assign'])} %",
        round(tally.reruns / commands, 2) if commands else 0,
        round(1000 * statistics.median(tally.seconds), 1) if tally.seconds else 0,
        round(1000 * quantile(tally.seconds, 0.95), 1),
        round(1000 * max(tally.seconds, default=0.0), 1),
        "" if wall is None else round(wall, 2),
    ]


def main(args: argparse.Namespace) -> int:
    logging.getLogger("seatledger").setLevel(logging.ERROR)
    conninfo = Settings().postgres_conninfo()
    (schema,) = scratch_schema_names("contention", "store")
    with scratch_schemas(conninfo, [schema]):
        overrides: dict[str, Any] = {"projection_mode": "off", "read_your_writes_timeout_ms": 0}
        if args.retries is not None:
            overrides["command_retries"] = args.retries
        settings = postgres_settings(schema, **overrides)
        with AssignmentService(settings) as setup:
            setup.create_restaurant(restaurant(args.writers * args.bookings))
        writers = [Writer(settings, index) for index in range(args.writers)]
        bursts: list[tuple[Tally, float]] = []
        try:
            for repeat in range(args.repeat):
                day = FIRST_DAY + timedelta(days=repeat)
                progress(f"burst {repeat + 1}/{args.repeat}: {args.writers} writers on {day}")
                bursts.append(burst(writers, day, args.bookings))
        finally:
            for writer in writers:
                writer.service.close()
        stats = machine(conninfo)
    overall = summed(tally for tally, _ in bursts)
    commands = sum(overall.commands.values())
    print_table(
        f"contention on PostgreSQL: {args.writers} writers on one service day,"
        f" {args.bookings} bookings each per burst (register + assign),"
        f" COMMAND_RETRIES={settings.command_retries}",
        [
            "",
            "commands",
            "gave up",
            "registrations",
            "assignments",
            "re-runs/cmd",
            "p50 ms",
            "p95 ms",
            "max ms",
            "burst s",
        ],
        [
            *(row(f"burst {i + 1}", tally, wall) for i, (tally, wall) in enumerate(bursts)),
            row("all", overall, None),
        ],
    )
    print_json_line(
        {
            "benchmark": "contention",
            "writers": args.writers,
            "bookings_per_writer": args.bookings,
            "bursts": args.repeat,
            "command_retries": settings.command_retries,
            "commands": commands,
            "gave_up_percent": percent(sum(overall.gave_up.values()), commands),
            "gave_up_percent_per_burst": [
                percent(sum(t.gave_up.values()), sum(t.commands.values())) for t, _ in bursts
            ],
            "registrations_gave_up_percent": percent(
                overall.gave_up["register"], overall.commands["register"]
            ),
            "assignments_gave_up_percent": percent(
                overall.gave_up["assign"], overall.commands["assign"]
            ),
            "other_errors": dict(overall.other_errors),
            "reruns_per_command": round(overall.reruns / commands, 3) if commands else 0,
            "latency_ms": {
                "p50": round(1000 * statistics.median(overall.seconds), 1),
                "p95": round(1000 * quantile(overall.seconds, 0.95), 1),
                "max": round(1000 * max(overall.seconds, default=0.0), 1),
            },
            "machine": stats.as_dict(),
            "load_average": load_average(),
            "date": datetime.now(UTC).date().isoformat(),
        }
    )
    return 0

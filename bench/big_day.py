"""Commands on a big service day beside a small one (issue 12 item 3).

Two restaurants with the same floor (16 zones of the grid floor, 396 active tables): one day
of ``--bookings`` bookings (default 5,000) and one of 50, both on the same date. Each day is
filled through the command API on a memory service (registrations at random quarter-hours
of lunch and dinner, each booking assigned to the first table of its size range that is
free, if any: a full day, with many bookings unseated), then copied into a SQLite file opened
with the embedded defaults (in-process projections, read-your-writes), projections caught
up. The last ``RESERVED`` tables are kept free for the probes: bookings of both days,
registered with the rest, that the measurement assigns (timed) and unassigns (not timed).

* **warm:** probe after probe, the two days alternating, one service kept open; p50 of the
  assignments. Target: big ≤ 1.3 x small.
* **first after a restart:** a new service over the same file, its first command an
  assignment on the big day (timed: the call only, not the service's construction); then the
  same on the small day with another new service. Median of ``--restarts``. Target: the
  big day's ≤ 100 ms (absolute), the small day's beside it.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

from bench.figures import Figure, percentile
from bench.fixtures import (
    DAY,
    Floor,
    assign,
    booking,
    memory_settings,
    open_service,
    sqlite_folder,
    stored_events,
    unassign,
)
from bench.report import print_figures
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.testing.workload import copy_log
from seatledger.domain.errors import SeatLedgerError

FLOOR = Floor(zones=16)
RESERVED = 8
SMALL = 50
PARTY = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bookings", type=int, default=5000, help="the big day (5000)")
    parser.add_argument("--probes", type=int, default=100, help="timed commands per day (100)")
    parser.add_argument("--restarts", type=int, default=5, help="cold starts per day (5)")


def _starts(rng: random.Random) -> str:
    lunch = [datetime(2026, 1, 1, 11, 30) + timedelta(minutes=15 * i) for i in range(12)]
    dinner = [datetime(2026, 1, 1, 17, 0) + timedelta(minutes=15 * i) for i in range(20)]
    return rng.choice(lunch + dinner).strftime("%H:%M")


def fill_day(service: AssignmentService, restaurant_id: str, bookings: int, probes: int) -> int:
    """Register ``bookings`` bookings and seat those that fit; then ``probes`` probe
    bookings (not seated). Returns how many of the day's bookings were seated."""
    rng = random.Random(f"{restaurant_id}-{bookings}")
    tables = [t for t in FLOOR.tables if PARTY <= t.capacity <= PARTY + 4][:-RESERVED]
    busy: dict[str, list[tuple[datetime, datetime]]] = {t.table_id: [] for t in tables}
    seated = 0
    for index in range(bookings):
        view = service.register_booking(
            booking(restaurant_id, f"d{index:05d}", PARTY, DAY, _starts(rng))
        )
        start, end = view.window.start, view.window.end
        for table_id, windows in busy.items():
            if all(end <= s or e <= start for s, e in windows):
                try:
                    service.assign_tables(assign(restaurant_id, view.booking_id, table_id))
                except SeatLedgerError:
                    continue
                windows.append((start, end))
                seated += 1
                break
    for index in range(probes):
        service.register_booking(booking(restaurant_id, f"p{index:04d}", PARTY, DAY, "19:00"))
    return seated


def probe_table(index: int) -> str:
    return [t for t in FLOOR.tables if PARTY <= t.capacity <= PARTY + 4][-RESERVED:][
        index % RESERVED
    ].table_id


def probe(service: AssignmentService, restaurant_id: str, index: int) -> float:
    """Assign probe ``index`` (timed), then unassign it again (not timed)."""
    booking_id = f"p{index:04d}"
    command = assign(restaurant_id, booking_id, probe_table(index))
    began = time.perf_counter()
    service.assign_tables(command)
    seconds = time.perf_counter() - began
    service.unassign_tables(unassign(restaurant_id, booking_id))
    return seconds


def build(path: Path, bookings: int, probes: int) -> dict[str, float]:
    """Both days into a SQLite file at ``path``; what building them took."""
    began = time.perf_counter()
    with open_service(memory_settings()) as memory:
        for restaurant_id in ("big", "small"):
            memory.create_restaurant(FLOOR.create(restaurant_id))
        seated = fill_day(memory, "big", bookings, probes)
        generated = time.perf_counter() - began
        fill_day(memory, "small", SMALL, probes)
        events = stored_events(memory)
    with open_service(sqlite_settings(path)) as service:
        copy_log(events, service.recorder)
        service.catch_up_projections()
    return {
        "generate_big_day_seconds": round(generated, 1),
        "build_seconds": round(time.perf_counter() - began, 1),
        "events": len(events),
        "big_day_seated": seated,
    }


def sqlite_settings(path: Path) -> Settings:
    return Settings(persistence="sqlite", sqlite_path=path)


def measure(bookings: int, probes: int, restarts: int) -> list[Figure]:
    command = (
        f"python -m bench big-day --bookings {bookings} --probes {probes} --restarts {restarts}"
    )
    warm: dict[str, list[float]] = {"big": [], "small": []}
    cold: dict[str, list[float]] = {"big": [], "small": []}
    with sqlite_folder() as folder:
        path = folder / "seatledger.db"
        facts = build(path, bookings, probes + restarts)
        with open_service(sqlite_settings(path)) as service:
            probe(service, "big", 0)  # the first of each day is a cold one
            probe(service, "small", 0)
            for index in range(1, probes):
                for day in ("big", "small"):
                    warm[day].append(probe(service, day, index))
        for restart in range(restarts):
            for day in ("big", "small"):
                with open_service(sqlite_settings(path)) as fresh:
                    cold[day].append(probe(fresh, day, probes + restart))
    ms = {day: [t * 1000 for t in times] for day, times in warm.items()}
    first = {day: statistics.median(times) * 1000 for day, times in cold.items()}
    return [
        Figure(
            "warm_command_big_day",
            f"warm assign_tables p50, {bookings:,}-booking day (SQLite)",
            percentile(ms["big"], 0.5),
            "ms",
            percentile(ms["small"], 0.5),
            f"p50 on a {SMALL}-booking day, same floor",
            "<= 1.3",
            command,
            details={"p99_ms": percentile(ms["big"], 0.99), **facts},
        ),
        Figure(
            "first_command_big_day",
            f"first command after a restart, {bookings:,}-booking day (SQLite)",
            first["big"],
            "ms",
            first["small"],
            f"the same on a {SMALL}-booking day",
            "<= 100",
            command,
            target_of="value",
            details={
                "runs_ms": [round(t * 1000, 1) for t in cold["big"]],
                "baseline_runs_ms": [round(t * 1000, 1) for t in cold["small"]],
            },
        ),
    ]


def main(args: argparse.Namespace) -> int:
    print_figures("big day", measure(args.bookings, args.probes, args.restarts))
    return 0

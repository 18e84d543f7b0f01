"""One process serving many restaurants round-robin, beside few (issue 12 item 4).

``--served`` restaurants (default 1,000) with the 15-table sample floor, each with the
same small day (``PROBES`` bookings at 19:00), built through the command API on a memory
service and copied into a SQLite file (embedded defaults: in-process projections,
read-your-writes). Then, each with a new service over that file:

* **few:** 10 of the restaurants served in turn, ``ROUNDS_FEW`` rounds;
* **many:** all of them served in turn, ``--rounds`` rounds;

each turn one warm command (an assignment of the restaurant's next probe booking to M1;
the booking is unassigned again, not timed), after a first round that is not timed (it
loads every restaurant). Reported: the p50 of the warm commands, many vs few.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.figures import Figure, percentile
from bench.fixtures import (
    DAY,
    assign,
    booking,
    memory_settings,
    open_service,
    sqlite_folder,
    stored_events,
    unassign,
)
from bench.report import print_figures
from seatledger.application.samples import SMALL_FLOOR
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.testing.workload import copy_log

FEW = 10
ROUNDS_FEW = 10
TABLE = "M1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--served", type=int, default=1000, help="restaurants served (1000)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds over all (3)")


def restaurant_ids(count: int) -> list[str]:
    return [f"m{index:04d}" for index in range(count)]


def build(path: Path, restaurants: int, probes: int) -> dict[str, float]:
    began = time.perf_counter()
    with open_service(memory_settings()) as memory:
        for restaurant_id in restaurant_ids(restaurants):
            memory.create_restaurant(
                SMALL_FLOOR.create(restaurant_id, command_id=f"create-{restaurant_id}")
            )
            for index in range(probes):
                memory.register_booking(booking(restaurant_id, f"p{index:03d}", 2, DAY))
        events = stored_events(memory)
    with open_service(Settings(persistence="sqlite", sqlite_path=path)) as service:
        copy_log(events, service.recorder)
        service.catch_up_projections()
    return {"build_seconds": round(time.perf_counter() - began, 1), "events": len(events)}


def turn(service: AssignmentService, restaurant_id: str, index: int) -> float:
    booking_id = f"p{index:03d}"
    command = assign(restaurant_id, booking_id, TABLE)
    began = time.perf_counter()
    service.assign_tables(command)
    seconds = time.perf_counter() - began
    service.unassign_tables(unassign(restaurant_id, booking_id))
    return seconds


def serve(path: Path, restaurants: list[str], rounds: int) -> list[float]:
    """A new service; one untimed round, then ``rounds`` timed ones; milliseconds."""
    times: list[float] = []
    with open_service(Settings(persistence="sqlite", sqlite_path=path)) as service:
        for index in range(rounds + 1):
            for restaurant_id in restaurants:
                seconds = turn(service, restaurant_id, index)
                if index:
                    times.append(seconds * 1000)
    return times


def measure(restaurants: int, rounds: int) -> list[Figure]:
    command = f"python -m bench many-restaurants --served {restaurants} --rounds {rounds}"
    probes = max(rounds, ROUNDS_FEW) + 1
    ids = restaurant_ids(restaurants)
    with sqlite_folder() as folder:
        path = folder / "seatledger.db"
        facts = build(path, restaurants, probes)
        few = serve(path, ids[:FEW], ROUNDS_FEW)
        many = serve(path, ids, rounds)
    return [
        Figure(
            "many_restaurants",
            f"warm command p50, {restaurants:,} restaurants round-robin (SQLite)",
            percentile(many, 0.5),
            "ms",
            percentile(few, 0.5),
            f"p50 with {FEW} restaurants, same process kind",
            "<= 1.5",
            command,
            details={
                "p99_ms": percentile(many, 0.99),
                "baseline_p99_ms": percentile(few, 0.99),
                **facts,
            },
        )
    ]


def main(args: argparse.Namespace) -> int:
    print_figures("many restaurants", measure(args.served, args.rounds))
    return 0

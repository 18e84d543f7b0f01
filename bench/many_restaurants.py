"""One process serving many restaurants round-robin, beside few (issue 12 item 4).

``--served`` restaurants (default 1,000, ``m0000``...) and ``FEW`` more (``f0``...), all with
the 15-table sample floor and ``BOOKINGS`` bookings each at 19:00, built through the command
API on a memory service and copied into two SQLite files, the ``m`` restaurants into one and
the ``f`` ones into the other (two services on one file would wait for each other's
in-process projections). Two new services with the embedded defaults (in-process
projections, read-your-writes): *many* serves the ``m`` restaurants in turn, *few* the ``f``
ones; after an untimed first round each (it loads every restaurant), they take turns command
by command (so drift in the machine's load hits both alike), the same number of timed
commands each (``--served`` x ``--rounds``). A turn is one warm command: the restaurant's
next booking assigned to M1 (timed), then unassigned again (not timed).
Reported: the p50 of the warm commands, many vs few.
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
TABLE = "M1"
#: Bookings per restaurant, served in turn: each has its directory entry to look up, as in a
#: real day (with one booking per restaurant, the cache never fills).
BOOKINGS = 12


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--served", type=int, default=1000, help="restaurants served (1000)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds over all (3)")


def restaurant_ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{index:04d}" for index in range(count)]


def build(path: Path, restaurants: list[str]) -> dict[str, float]:
    began = time.perf_counter()
    with open_service(memory_settings()) as memory:
        for restaurant_id in restaurants:
            memory.create_restaurant(
                SMALL_FLOOR.create(restaurant_id, command_id=f"create-{restaurant_id}")
            )
            for index in range(BOOKINGS):
                memory.register_booking(booking(restaurant_id, f"p{index:03d}", 2, DAY))
        events = stored_events(memory)
    with open_service(sqlite_settings(path)) as service:
        copy_log(events, service.recorder)
        service.catch_up_projections()
    return {"build_seconds": round(time.perf_counter() - began, 1), "events": len(events)}


def sqlite_settings(path: Path) -> Settings:
    return Settings(persistence="sqlite", sqlite_path=path)


def turn(service: AssignmentService, restaurant_id: str, index: int) -> float:
    """One warm command on the restaurant's ``index``-th booking (modulo ``BOOKINGS``), in
    milliseconds; then its undoing, not timed."""
    booking_id = f"p{index % BOOKINGS:03d}"
    command = assign(restaurant_id, booking_id, TABLE)
    began = time.perf_counter()
    service.assign_tables(command)
    seconds = time.perf_counter() - began
    service.unassign_tables(unassign(restaurant_id, booking_id))
    return seconds * 1000


def measure(restaurants: int, rounds: int) -> list[Figure]:
    command = f"python -m bench many-restaurants --served {restaurants} --rounds {rounds}"
    many_ids, few_ids = restaurant_ids("m", restaurants), restaurant_ids("f", FEW)
    many: list[float] = []
    few: list[float] = []
    with sqlite_folder() as folder:
        facts = build(folder / "many.db", many_ids)
        build(folder / "few.db", few_ids)
        with (
            open_service(sqlite_settings(folder / "many.db")) as many_service,
            open_service(sqlite_settings(folder / "few.db")) as few_service,
        ):
            for restaurant_id in many_ids:
                turn(many_service, restaurant_id, 0)
            for restaurant_id in few_ids:
                turn(few_service, restaurant_id, 0)
            for index in range(restaurants * rounds):
                many_round, many_at = divmod(index, restaurants)
                few_round, few_at = divmod(index, FEW)
                many.append(turn(many_service, many_ids[many_at], many_round + 1))
                few.append(turn(few_service, few_ids[few_at], few_round + 1))
    return [
        Figure(
            "many_restaurants",
            f"warm command p50, {restaurants:,} restaurants round-robin (SQLite)",
            percentile(many, 0.5),
            "ms",
            percentile(few, 0.5),
            f"p50 with {FEW} restaurants (another service, turns alternating)",
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

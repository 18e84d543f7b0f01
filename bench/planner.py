"""Planner latency on a 100-table floor with 400 bookings in a day, beside a naive baseline.

The floor: four zones of 25 tables (15 movable 2- and 4-tops on a 3x5 grid of adjacency
edges, 10 fixed tables of 4 to 10 seats, two of them inactive). The day: 400 bookings at
random quarter-hours of lunch and dinner, party sizes weighted towards twos and fours. They
are planned one after another; each booking's best candidate is assigned, so later bookings
meet a fuller floor.

For every booking the planner (``seatledger.domain.planner.plan_tables``, connected sets grown
through the adjacency graph) is timed; on a sample of the same states the naive baseline is
timed too: every subset of up to k active tables of the whole floor, filtered and ranked by the
same rules. Both must produce the same ranked candidates (checked) or the comparison is void."""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta

from bench.common import load_average, machine, print_json_line, print_table, progress
from seatledger.application.samples import grid_floor
from seatledger.domain.layout import FloorView
from seatledger.domain.planner import MAX_CANDIDATES_LISTED, Blocker, Candidate, plan_tables
from seatledger.domain.policy import VenuePolicy, block_window
from seatledger.domain.values import Window

DAY = date(2026, 11, 24)
PARTY_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 10)
PARTY_WEIGHTS = (4, 38, 10, 26, 6, 8, 3, 3, 2)


def bench_floor(zones: int = 4, per_zone: int = 25) -> FloorView:
    """The sample grid floor (``seatledger.application.samples.grid_floor``) as the planner
    reads it."""
    return grid_floor(zones, per_zone).view(
        "bench", name="bench", policy=VenuePolicy(slack_budget=3)
    )


def naive_candidates(floor: FloorView, party: int, blockers: dict[str, Blocker]) -> list[Candidate]:
    """All subsets of up to k active tables, filtered by the planner's rules (no ladder): the
    minimal ones (no table can be left out), ranked, as many as the planner lists."""
    policy = floor.policy
    required = policy.requires_adjacency(party)
    active = sorted(t.table_id for t in floor.tables.values() if t.active)

    def structural(combo: tuple[str, ...]) -> bool:
        chosen = [floor.tables[t] for t in combo]
        capacity = sum(t.capacity for t in chosen)
        if capacity < party or capacity - party > policy.slack_budget:
            return False
        if len({t.zone_id for t in chosen}) > 1:
            return False
        if len(chosen) == 1:
            only = chosen[0]
            if only.max_party_size is not None and party > only.max_party_size:
                return False
            return only.min_party_size is None or party >= only.min_party_size
        if not all(t.movable for t in chosen):
            return False
        return not required or floor.is_connected(combo)

    found: list[Candidate] = []
    for size in range(1, policy.max_combination_size + 1):
        for combo in itertools.combinations(active, size):
            if any(t in blockers for t in combo) or not structural(combo):
                continue
            if size > 1 and any(structural(tuple(t for t in combo if t != o)) for o in combo):
                continue
            chosen = [floor.tables[t] for t in combo]
            zone_id = chosen[0].zone_id
            capacity = sum(t.capacity for t in chosen)
            found.append(
                Candidate(
                    slack=capacity - party,
                    table_count=size,
                    zone_preference=floor.zones[zone_id].preference,
                    zone_id=zone_id,
                    tables=combo,
                    capacity=capacity,
                    adjacency_required=required,
                )
            )
    return sorted(found)[:MAX_CANDIDATES_LISTED]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bookings", type=int, default=400, help="bookings (default 400)")
    parser.add_argument(
        "--naive-every",
        type=int,
        default=4,
        help="time the naive baseline on every Nth booking (default 4: it is slow)",
    )


def main(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    floor = bench_floor()
    bookings = args.bookings
    sample_every = max(1, args.naive_every)
    slots = [datetime(2026, 11, 24, 12, 0) + timedelta(minutes=15 * i) for i in range(10)] + [
        datetime(2026, 11, 24, 17, 0) + timedelta(minutes=15 * i) for i in range(17)
    ]
    assigned: list[tuple[Window, tuple[str, ...]]] = []
    planner_ms: list[float] = []
    naive_ms: list[float] = []
    compared = seated = relaxed = 0
    progress(f"planning {bookings} bookings on {len(floor.tables)} tables")
    for index in range(bookings):
        party = rng.choices(PARTY_SIZES, weights=PARTY_WEIGHTS)[0]
        start = rng.choice(slots)
        window = block_window(floor.policy, DAY, start.time(), party).window
        blockers = {
            table: Blocker("assignment", f"b{n}", f"b{n}")
            for n, (other, tables) in enumerate(assigned)
            if other.overlaps(window)
            for table in tables
        }
        began = time.perf_counter()
        plan = plan_tables(floor, party_size=party, blockers=blockers)
        planner_ms.append((time.perf_counter() - began) * 1000)
        if index % sample_every == 0:
            began = time.perf_counter()
            naive = naive_candidates(floor, party, blockers)
            naive_ms.append((time.perf_counter() - began) * 1000)
            if plan.relaxations == () and plan.candidates:
                if list(plan.candidates) != naive:
                    raise AssertionError(f"booking {index}: planner and baseline disagree")
                compared += 1
        if plan.relaxations:
            relaxed += 1
        if plan.best is not None:
            assigned.append((window, plan.best.tables))
            seated += 1
    result = {
        "benchmark": "planner",
        "tables": len(floor.tables),
        "bookings": bookings,
        "seated": seated,
        "relaxed_plans": relaxed,
        "compared_with_baseline": compared,
        "planner_p50_ms": round(percentile(planner_ms, 0.5), 3),
        "planner_p95_ms": round(percentile(planner_ms, 0.95), 3),
        "planner_mean_ms": round(statistics.fmean(planner_ms), 3),
        "naive_calls": len(naive_ms),
        "naive_p50_ms": round(percentile(naive_ms, 0.5), 3),
        "naive_p95_ms": round(percentile(naive_ms, 0.95), 3),
        "speedup_p50": round(percentile(naive_ms, 0.5) / percentile(planner_ms, 0.5), 1),
        "speedup_p95": round(percentile(naive_ms, 0.95) / percentile(planner_ms, 0.95), 1),
        "machine": machine().as_dict(),
        "load_average": load_average(),
        "date": datetime.now(UTC).date().isoformat(),
    }
    print_table(
        f"planner: {bookings} bookings, {len(floor.tables)} tables (seed {args.seed})",
        ["", "p50 ms", "p95 ms", "calls"],
        [
            ["graph planner", result["planner_p50_ms"], result["planner_p95_ms"], bookings],
            ["naive k-subsets", result["naive_p50_ms"], result["naive_p95_ms"], len(naive_ms)],
            ["speed-up", f"{result['speedup_p50']}x", f"{result['speedup_p95']}x", ""],
        ],
    )
    print_json_line(result)
    return 0

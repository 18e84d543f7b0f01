"""Planner worst cases: the floors a tenant can configure that made one quote explode (issue 9).

Floors of look-alike movable tables and no adjacency edges: the adjacency rung finds nothing,
the relaxed rung may combine any tables of the zone. For each floor one quote (a party of 6 on
an empty floor) is timed (median of ``--repeat`` runs) and run once more under ``tracemalloc``
for its peak memory, with the default search budget; the plan's work (table sets examined) and
whether it stopped early are reported.

Baselines in the same run:

* **exhaustive**: what the planner did before the budget: every set of up to k movable tables
  within the slack, all materialised as candidates, then sorted. It takes minutes and
  gigabytes at the issue's sizes, so it runs on smaller floors of the same shape
  (``--baseline-tables``), beside the bounded planner on those very floors;
* **bench floor**: the same quote on the 100-table floor of ``python -m bench planner``.
"""

from __future__ import annotations

import argparse
import functools
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.common import load_average, machine, median, print_json_line, print_table, progress
from bench.planner import bench_floor
from seatledger.domain.layout import FloorView, Table, Zone
from seatledger.domain.planner import Blocker, Candidate, plan_tables
from seatledger.domain.policy import VenuePolicy

PARTY = 6


@dataclass(frozen=True)
class Case:
    name: str
    floor: FloorView
    blockers: dict[str, Blocker]


def look_alikes(count: int, capacity: int, k: int) -> FloorView:
    tables = [
        Table(table_id=f"t{i:03d}", zone_id="main", capacity=capacity, movable=True)
        for i in range(count)
    ]
    return FloorView.build(
        restaurant_id="bench",
        name="worst case",
        policy=VenuePolicy(max_combination_size=k),
        zones={"main": Zone(zone_id="main")},
        tables={t.table_id: t for t in tables},
        edges=[],
        version=1,
    )


def mostly_held(count: int) -> Case:
    """All but three tables held by other quotes: no bound can prune held sets."""
    floor = look_alikes(count, 2, 3)
    free = {"t000", "t001", f"t{count - 1:03d}"}
    held = {t: Blocker("hold", f"h-{t}", f"b-{t}") for t in floor.tables if t not in free}
    return Case(f"{count} 2-tops, all but 3 held, k=3", floor, held)


def exhaustive(floor: FloorView, party: int) -> list[Candidate]:
    """The planner before the budget, on an empty floor without edges: every set within the
    slack (capacity-pruned, in id order), materialised, then sorted."""
    policy = floor.policy
    most = party + policy.slack_budget
    ordered = sorted(floor.tables.values(), key=lambda t: t.table_id)

    def grow(start: int, chosen: tuple[Table, ...], seats: int) -> Iterator[tuple[Table, ...]]:
        if chosen:
            yield chosen
        if len(chosen) == policy.max_combination_size:
            return
        for index in range(start, len(ordered)):
            table = ordered[index]
            if seats + table.capacity <= most:
                yield from grow(index + 1, (*chosen, table), seats + table.capacity)

    found = []
    for chosen in grow(0, (), 0):
        capacity = sum(t.capacity for t in chosen)
        if capacity >= party:
            found.append(
                Candidate(
                    slack=capacity - party,
                    table_count=len(chosen),
                    zone_preference=0,
                    zone_id="main",
                    tables=tuple(t.table_id for t in chosen),
                    capacity=capacity,
                    adjacency_required=False,
                    relaxations=("adjacency",),
                )
            )
    return sorted(found)


def measure(run: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Median milliseconds over ``repeat`` runs, then the peak MB of one traced run."""
    seconds = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - began)
    tracemalloc.start()
    try:
        result = run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return median(seconds) * 1000, peak / 1e6, result


def quote(case: Case, repeat: int) -> dict[str, Any]:
    ms, mb, plan = measure(
        lambda: plan_tables(case.floor, party_size=PARTY, blockers=case.blockers), repeat
    )
    best = plan.best
    return {
        "floor": case.name,
        "tables": len(case.floor.tables),
        "ms": round(ms, 2),
        "peak_mb": round(mb, 3),
        "work": plan.work,
        "stopped_early": plan.stopped_early,
        "best": None if best is None else list(best.tables),
        "best_slack": None if best is None else best.slack,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline-tables",
        type=int,
        nargs=2,
        default=(100, 20),
        metavar=("TWO_TOPS", "ONE_TOPS"),
        help="sizes of the exhaustive baseline's floors (default 100 2-tops, 20 1-tops)",
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the exhaustive baseline (slow)"
    )


def main(args: argparse.Namespace) -> int:
    repeat = max(1, args.repeat)
    cases = [
        Case("200 2-tops, no edges, k=3", look_alikes(200, 2, 3), {}),
        Case("28 1-tops, no edges, k=8", look_alikes(28, 1, 8), {}),
        mostly_held(200),
        Case("bench floor (100 tables, grid edges)", bench_floor(), {}),
    ]
    rows = []
    for case in cases:
        progress(f"planner: {case.name}")
        rows.append(quote(case, repeat))

    baseline = []
    if not args.no_baseline:
        two_tops, one_tops = args.baseline_tables
        for case in (
            Case(f"{two_tops} 2-tops, no edges, k=3", look_alikes(two_tops, 2, 3), {}),
            Case(f"{one_tops} 1-tops, no edges, k=8", look_alikes(one_tops, 1, 8), {}),
        ):
            progress(f"exhaustive baseline: {case.name}")
            ms, mb, found = measure(functools.partial(exhaustive, case.floor, PARTY), 1)
            ours = quote(case, repeat)
            if ours["best"] != list(found[0].tables):
                raise AssertionError(f"{case.name}: planner and baseline disagree on the best")
            baseline.append(
                {
                    "floor": case.name,
                    "exhaustive_ms": round(ms, 1),
                    "exhaustive_peak_mb": round(mb, 1),
                    "exhaustive_candidates": len(found),
                    "planner_ms": ours["ms"],
                    "planner_peak_mb": ours["peak_mb"],
                    "planner_work": ours["work"],
                    "speedup": round(ms / ours["ms"], 0),
                }
            )

    print_table(
        f"one quote, party of {PARTY}, default search budget (median of {repeat})",
        ["floor", "ms", "peak MB", "work", "stopped early", "best (slack)"],
        [
            [
                r["floor"],
                r["ms"],
                r["peak_mb"],
                r["work"],
                r["stopped_early"],
                f"{len(r['best'] or [])} tables ({r['best_slack']})",
            ]
            for r in rows
        ],
    )
    if baseline:
        print_table(
            "the same quote, exhaustive (before the budget) beside bounded, same floors",
            ["floor", "exhaustive ms", "MB", "candidates", "bounded ms", "MB", "speed-up"],
            [
                [
                    b["floor"],
                    b["exhaustive_ms"],
                    b["exhaustive_peak_mb"],
                    b["exhaustive_candidates"],
                    b["planner_ms"],
                    b["planner_peak_mb"],
                    f"{b['speedup']:.0f}x",
                ]
                for b in baseline
            ],
        )
    print_json_line(
        {
            "benchmark": "planner-worst-case",
            "party": PARTY,
            "repeat": repeat,
            "quotes": rows,
            "baseline": baseline,
            "machine": machine().as_dict(),
            "load_average": load_average(),
            "date": datetime.now(UTC).date().isoformat(),
        }
    )
    return 0

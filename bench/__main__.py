"""``python -m bench <name> [options]``: run one benchmark, print a table and a JSON line.

Benchmarks register in :data:`BENCHMARKS` by name with the module that runs them. A module
provides ``main(args: argparse.Namespace) -> int`` and, for options of its own, may provide
``add_arguments(parser: argparse.ArgumentParser) -> None``; it is imported only when chosen,
so one benchmark's imports never slow another down. The common options below are always
there (a benchmark ignores those it has no use for). See docs/benchmarks.md for what each
benchmark measures and its last figures.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Benchmark:
    summary: str
    module: str

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


BENCHMARKS: dict[str, Benchmark] = {
    "suite": Benchmark(
        "what `make bench` runs: every figure below that has a target (issue 12), with its"
        " baseline, ratio and target, into one JSON file; refreshes docs/benchmarks.md",
        "bench.suite",
    ),
    "command-rate": Benchmark(
        "assign_tables/s in the default configurations (PostgreSQL with a worker and"
        " read-your-writes; SQLite) beside the bare library's one-event get+save; CPU per"
        " command; latency with and without read-your-writes",
        "bench.command_rate",
    ),
    "big-day": Benchmark(
        "warm command on a 5,000-booking day vs a 50-booking day; first command after a"
        " restart on each (SQLite)",
        "bench.big_day",
    ),
    "many-restaurants": Benchmark(
        "warm command p50 with 1,000 restaurants served round-robin by one process vs 10",
        "bench.many_restaurants",
    ),
    "availability-history": Benchmark(
        "availability query p50/p99 with 1,000,000 member rows of history vs 10,000",
        "bench.availability_history",
    ),
    "replay-rates": Benchmark(
        "projection catch-up and the audit's replay, each beside the raw paged read of the"
        " same log (PostgreSQL)",
        "bench.replay_rates",
    ),
    "projection-catchup": Benchmark(
        "PostgreSQL catch-up of the members and outbox projections: PageRunner vs the"
        " library's ProjectionRunner (one transaction per event), same log, same rows",
        "bench.projection_catchup",
    ),
    "planner": Benchmark(
        "planner latency p50/p95 on a 100-table floor with 400 bookings in a day, beside a"
        " naive all-k-subsets baseline on the same states (same candidates checked)",
        "bench.planner",
    ),
    "planner-worst-case": Benchmark(
        "one quote on the floors that made the planner explode (issue 9): time, peak memory"
        " and work within the search budget, beside the exhaustive pre-budget search",
        "bench.planner_worst",
    ),
    "contention": Benchmark(
        "8 writers (threads, one service each) on one PostgreSQL service day: the share of"
        " commands that give up with CONCURRENCY_CONFLICT, re-runs and latency per burst",
        "bench.contention",
    ),
    "audit-replay": Benchmark(
        "seatledger audit's replay on PostgreSQL beside the raw bulk read of the same"
        " notifications (select_notifications), same log, same page size",
        "bench.audit_replay",
    ),
    "command-path": Benchmark(
        "the command ledger's cost on PostgreSQL: event-store and read-model round trips,"
        " commands per second and storage per command, beside the same commands without it",
        "bench.command_path",
    ),
    "embedded-threads": Benchmark(
        "commands per second and latency of one SQLite service (in-process projections)"
        " shared by 1, 8 and 32 threads; no infrastructure error allowed",
        "bench.embedded_threads",
    ),
    "auto-assign": Benchmark(
        "auto_assign commands per second on PostgreSQL, beside assign_tables of the same"
        " table sets in the same run",
        "bench.auto_assign",
    ),
}


def parser() -> argparse.ArgumentParser:
    names = "\n".join(f"  {name:<20} {b.summary}" for name, b in BENCHMARKS.items())
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run a seatledger benchmark.",
        epilog=f"benchmarks:\n{names}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", choices=sorted(BENCHMARKS), metavar="name", help="which benchmark")
    add_common_arguments(p)
    return p


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", type=int, default=50_000, help="events in the log (default 50000)")
    p.add_argument(
        "--repeat", type=int, default=3, help="runs per side; the median is reported (default 3)"
    )
    p.add_argument(
        "--page-size",
        type=int,
        default=None,
        help="notifications per page/transaction (default: the settings' default)",
    )
    p.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    p.add_argument(
        "--restaurants", type=int, default=1, help="restaurants in the workload (default 1)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # first pass: only which benchmark, so its own options join the parser before --help
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("name", nargs="?")
    add_common_arguments(first)
    known, _ = first.parse_known_args(argv)
    full = parser()
    benchmark = BENCHMARKS.get(known.name or "")
    module = benchmark.load() if benchmark is not None else None
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = getattr(
        module, "add_arguments", None
    )
    if add_arguments is not None:
        add_arguments(full)
    args = full.parse_args(argv)  # exits with usage on a missing or unknown name
    assert module is not None
    run: Callable[[argparse.Namespace], int] = module.main
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

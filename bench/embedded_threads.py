"""The embedded default under threads: one ``AssignmentService`` on a SQLite file (projections
in-process, read-your-writes on) shared by 1, 8 and 32 threads.

Each thread takes bookings from a shared queue and registers then auto-assigns each one: two
commands per booking, on a 100-table floor, bookings spread over several service days so the
floor does not fill up. Every command must succeed or get the domain's answer: an
infrastructure error (``STORAGE_UNAVAILABLE``, ``CONCURRENCY_CONFLICT``) is counted and fails the
run. Reports commands per second and the p50/p95 latency of one command per thread count.
"""

from __future__ import annotations

import argparse
import functools
import queue
import random
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

from bench.auto_assign import restaurant
from bench.common import load_average, machine, print_json_line, print_table, progress
from bench.planner import PARTY_SIZES, PARTY_WEIGHTS, bench_floor
from seatledger.application.commands import AutoAssign, RegisterBooking
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.domain.errors import ErrorCode, SeatLedgerError

FIRST_DAY = date(2026, 11, 24)
DAYS = 12
THREAD_COUNTS = (1, 8, 32)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bookings", type=int, default=480, help="bookings per thread count (default 480)"
    )


def plan(rng: random.Random, bookings: int) -> list[RegisterBooking]:
    slots = [clock_time(12, 0), clock_time(13, 0), clock_time(18, 0), clock_time(19, 30)]
    return [
        RegisterBooking(
            restaurant_id="bench",
            booking_id=f"b{n:05d}",
            party_size=rng.choices(PARTY_SIZES, weights=PARTY_WEIGHTS)[0],
            service_date=FIRST_DAY + timedelta(days=n % DAYS),
            start_time=rng.choice(slots),
        )
        for n in range(bookings)
    ]


def run(threads: int, bookings: list[RegisterBooking], folder: Path) -> dict[str, object]:
    """One thread count on a fresh file: commands per second, latencies, outcomes."""
    settings = Settings(persistence="sqlite", sqlite_path=folder / f"threads-{threads}.db")
    work: queue.SimpleQueue[RegisterBooking] = queue.SimpleQueue()
    for command in bookings:
        work.put(command)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def timed(call: Callable[[], object]) -> None:
        began = time.perf_counter()
        try:
            call()
            outcome = "ok"
        except SeatLedgerError as err:
            outcome = str(err.code) if isinstance(err.code, ErrorCode) else f"!{err.code}"
        with lock:
            latencies.append(time.perf_counter() - began)
            outcomes[outcome] += 1

    with AssignmentService(settings) as service:
        service.create_restaurant(restaurant(bench_floor(), "bench"))
        gate = threading.Barrier(threads + 1)

        def worker() -> None:
            gate.wait()
            while True:
                try:
                    command = work.get_nowait()
                except queue.Empty:
                    return
                auto = AutoAssign(restaurant_id="bench", booking_id=command.booking_id)
                timed(functools.partial(service.register_booking, command))
                timed(functools.partial(service.auto_assign, auto))

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in pool:
            thread.start()
        gate.wait()
        began = time.perf_counter()
        for thread in pool:
            thread.join()
        seconds = time.perf_counter() - began
    cut = statistics.quantiles(latencies, n=20)
    return {
        "threads": threads,
        "commands": len(latencies),
        "seconds": round(seconds, 2),
        "commands_per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(cut[18] * 1000, 1),
        "outcomes": dict(sorted(outcomes.items())),
        "infrastructure_errors": sum(n for o, n in outcomes.items() if o.startswith("!")),
    }


def main(args: argparse.Namespace) -> int:
    bookings = plan(random.Random(args.seed), args.bookings)
    results = []
    with tempfile.TemporaryDirectory(prefix="seatledger-bench-") as folder:
        for threads in THREAD_COUNTS:
            progress(f"{threads} thread(s): {len(bookings)} bookings, two commands each")
            results.append(run(threads, bookings, Path(folder)))
    print_table(
        f"embedded (SQLite, in-process projections): {len(bookings)} bookings over {DAYS} days",
        ["threads", "commands", "seconds", "per second", "p50 ms", "p95 ms", "infra errors"],
        [
            [
                r["threads"],
                r["commands"],
                r["seconds"],
                r["commands_per_second"],
                r["p50_ms"],
                r["p95_ms"],
                r["infrastructure_errors"],
            ]
            for r in results
        ],
    )
    print_json_line(
        {
            "benchmark": "embedded-threads",
            "bookings": len(bookings),
            "runs": results,
            "machine": machine().as_dict(),
            "load_average": load_average(),
            "date": datetime.now(UTC).date().isoformat(),
        }
    )
    return 1 if any(r["infrastructure_errors"] for r in results) else 0

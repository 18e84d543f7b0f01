"""Reading the whole log: projection catch-up and the audit's replay, each beside the raw
paged read of the same log (issue 12 item 6, issue 11 item 8), and the existing benchmarks
the suite reports (planner, projection catch-up vs the library's runner).

* **catch-up vs raw read:** one generated log (``generate_log``) copied into a scratch
  schema (``VACUUM ANALYZE``d); alternately, ``--repeat`` times: the raw paged read of every
  notification (``bench.audit_replay.raw_read``: ``select_notifications`` page by page, the
  projections' page size, nothing decoded) and the catch-up of both projections from
  position 0 (``bench.projection_catchup.catch_up_from_zero``: fresh page runners, emptied
  read models), after one untimed raw read (the first read of a fresh copy is several times
  slower: it would flatter a single repeat's ratio). Ratio of the rates (log events/s).
* **audit:** ``python -m bench audit-replay`` on the same log (handed over in a pickle file),
  its JSON line read back: the audit's rate over the raw bulk read's, measured by it.
* **planner** and **projection-catchup**: their own commands, their JSON lines read back.

The other benchmarks run as subprocesses so each keeps its own command line and output as
its contract (they may change inside without breaking the suite).
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from bench import audit_replay, projection_catchup
from bench.common import median
from bench.figures import Figure
from bench.fixtures import open_service, pg_settings, postgres_schema
from bench.report import print_figures
from seatledger.application.testing.workload import copy_log, generate_log

ROOT = Path(__file__).resolve().parent.parent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-audit", action="store_true", help="catch-up vs raw read only")


def run_benchmark(*argv: str) -> dict[str, Any]:
    """``python -m bench <argv>`` in a subprocess; its JSON line (the last ``{`` line)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"bench {' '.join(argv)} failed ({done.returncode}): {tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def catch_up_figure(log: list[StoredEvent], repeat: int) -> Figure:
    raw_times: list[float] = []
    catch_up_times: list[float] = []
    lock_busy = 0
    with postgres_schema("catchup_raw") as schema:
        settings = pg_settings(schema, projection_mode="off")
        with open_service(settings) as service:
            copy_log(log, service.recorder)
            table = service.recorder.events_table_name  # type: ignore[attr-defined]
            with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
                conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(schema, table)))
            audit_replay.raw_read(service, settings.projection_page_size)  # warm, not timed
            for _ in range(repeat):
                began = time.perf_counter()
                count = audit_replay.raw_read(service, settings.projection_page_size)
                raw_times.append(time.perf_counter() - began)
                if count != len(log):
                    raise AssertionError(f"raw read saw {count} of {len(log)} events")
                caught_up = projection_catchup.catch_up_from_zero(service)
                catch_up_times.append(caught_up.seconds)
                lock_busy += caught_up.lock_busy
    return Figure(
        "catch_up_vs_raw",
        f"projection catch-up (members + outbox), {len(log):,}-event log (PostgreSQL)",
        len(log) / median(catch_up_times),
        "events/s",
        len(log) / median(raw_times),
        "raw paged read of the same log (select_notifications)",
        ">= 0.3",
        f"python -m bench replay-rates --events {len(log)} --repeat {repeat} --no-audit",
        details={
            "catch_up_seconds": [round(t, 3) for t in catch_up_times],
            "raw_seconds": [round(t, 3) for t in raw_times],
            # the projections' advisory locks are per name, not per schema: another store's
            # runner on the same database makes ours wait (and this counts the waits)
            "lock_busy_retries": lock_busy,
        },
    )


def audit_figure(log: list[StoredEvent], repeat: int) -> Figure:
    with tempfile.TemporaryDirectory(prefix="seatledger-bench-") as folder:
        path = Path(folder) / "log.pickle"
        with path.open("wb") as f:
            pickle.dump(log, f)
        events = str(len(log))
        result = run_benchmark(
            "audit-replay", "--events", events, "--repeat", str(repeat), "--log-file", str(path)
        )
    return Figure(
        "audit_vs_raw",
        f"audit replay, {len(log):,}-event log (PostgreSQL)",
        float(result["audit_events_per_second"]),
        "events/s",
        float(result["raw_events_per_second"]),
        "raw bulk read of the same notifications",
        ">= 0.4",
        f"python -m bench audit-replay --events {len(log)} --repeat {repeat}",
        details={"page_size": result.get("page_size")},
    )


def planner_figure(bookings: int, naive_every: int) -> Figure:
    argv = ["planner", "--bookings", str(bookings), "--naive-every", str(naive_every)]
    result = run_benchmark(*argv)
    return Figure(
        "planner_p50",
        f"planner p50, 100-table floor, {bookings} bookings",
        float(result["planner_p50_ms"]),
        "ms",
        float(result["naive_p50_ms"]),
        "naive all-k-subsets p50 on the same states",
        None,
        "python -m bench " + " ".join(argv),
        details={
            "planner_p95_ms": result.get("planner_p95_ms"),
            "speedup_p50": result.get("speedup_p50"),
        },
    )


def library_catch_up_figure(events: int, repeat: int) -> Figure:
    argv = ["projection-catchup", "--events", str(events), "--repeat", str(repeat)]
    result = run_benchmark(*argv)
    return Figure(
        "catch_up_vs_library",
        f"projection catch-up, PageRunner, {events:,}-event log (PostgreSQL)",
        float(result["ours"]["log_events_per_s"]),
        "events/s",
        float(result["library"]["log_events_per_s"]),
        "the library's ProjectionRunner, same log",
        None,
        "python -m bench " + " ".join(argv),
    )


def load_log(events: int, seed: int) -> tuple[list[StoredEvent], float]:
    began = time.perf_counter()
    log = generate_log(events, seed=seed)
    return log, time.perf_counter() - began


def main(args: argparse.Namespace) -> int:
    log, _ = load_log(args.events, args.seed)
    figures = [catch_up_figure(log, args.repeat)]
    if not args.no_audit:
        figures.append(audit_figure(log, args.repeat))
    print_figures("replay rates", figures)
    return 0

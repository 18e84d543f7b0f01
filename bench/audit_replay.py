"""Audit replay on PostgreSQL against the raw bulk read of the same notifications.

One generated log (``seatledger.application.testing.workload.generate_log``) is copied into
the event table of a store in a scratch schema, its read models caught up (the live side of
the audit). Then, alternately, ``--repeat`` times each:

* **raw** — every notification of the log read with the recorder's bulk
  ``select_notifications`` in pages of ``--page-size`` (every topic, ``inclusive_of_start``
  false, as the audit reads), each row's state touched (its length summed), nothing decoded;
* **read + decode** — the same read, and every event decoded with the service's mapper:
  not a baseline the audit could beat (it must decode every event), but its ceiling;
* **audit** — ``Audit(service, page_size=...).run()``: the same pages read, every event
  decoded, chained, checked against the invariants and projected into scratch read models,
  then compared with the live read models. The report must say ``ok``, or the run fails.
  The audit runs as it does by default: on PostgreSQL, for a log this long, in one forked
  worker process per CPU (at most four; reported as ``workers``).

Reported: the median time and rate (log events per second) of each side and the ratio of
the audit's rate to the raw rate (the audit's target is 40 % or more).
"""

from __future__ import annotations

import argparse
import gc
import pickle
import time
from pathlib import Path

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from bench.common import (
    load_average,
    machine,
    median,
    postgres_settings,
    print_json_line,
    print_table,
    progress,
    rate,
    scratch_schema_names,
    scratch_schemas,
)
from seatledger.application.audit import Audit
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.testing.workload import copy_log, generate_log


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-file",
        type=Path,
        default=None,
        help="reuse the generated log from this pickle file (written when missing)",
    )


def load_log(args: argparse.Namespace) -> list[StoredEvent]:
    path: Path | None = args.log_file
    if path is not None and path.exists():
        with path.open("rb") as f:
            log: list[StoredEvent] = pickle.load(f)
        if len(log) >= args.events:
            progress(f"log of {len(log)} events read from {path}")
            return log
    progress(f"generating a log of {args.events} events (seed {args.seed})")
    log = generate_log(args.events, seed=args.seed, restaurants=args.restaurants)
    if path is not None:
        with path.open("wb") as f:
            pickle.dump(log, f)
    return log


def raw_read(service: AssignmentService, page_size: int, *, decode: bool = False) -> int:
    """Every notification, page by page (each state touched, or decoded); returns how many."""
    count = size = after = 0
    to_event = service.mapper.to_domain_event
    while True:
        page = service.recorder.select_notifications(
            start=after, limit=page_size, inclusive_of_start=False
        )
        if not page:
            return count
        count += len(page)
        if decode:
            for notification in page:
                to_event(notification)
        else:
            size += sum(len(n.state) for n in page)
        after = page[-1].id


def main(args: argparse.Namespace) -> int:
    conninfo = Settings().postgres_conninfo()
    page_size = args.page_size or 1000
    log = load_log(args)
    (schema,) = scratch_schema_names("audit", "store")
    raw_times: list[float] = []
    decode_times: list[float] = []
    audit_times: list[float] = []
    with scratch_schemas(conninfo, [schema]):
        settings = postgres_settings(schema, projection_mode="off")
        with AssignmentService(settings) as service:
            progress(f"copying {len(log)} events into {schema}, catching the read models up")
            copy_log(log, service.recorder)
            service.catch_up_projections()
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("VACUUM ANALYZE {}.{}").format(
                        sql.Identifier(schema),
                        sql.Identifier(service.recorder.events_table_name),  # type: ignore[attr-defined]
                    )
                )
            # the generated log stays referenced here: keep the cycle collector from scanning
            # it again and again in every side's timings (a process serving the log has none)
            gc.collect()
            gc.freeze()
            workers = Audit(service, page_size=page_size).processes()
            load_before = load_average()
            for repeat in range(args.repeat):
                began = time.perf_counter()
                count = raw_read(service, page_size)
                raw_times.append(time.perf_counter() - began)
                assert count == len(log), (count, len(log))
                began = time.perf_counter()
                raw_read(service, page_size, decode=True)
                decode_times.append(time.perf_counter() - began)
                began = time.perf_counter()
                report = Audit(service, page_size=page_size).run()
                audit_times.append(time.perf_counter() - began)
                if not report.ok or report.events != len(log):
                    raise SystemExit(f"the audit did not pass: {report.model_dump_json()[:2000]}")
                progress(
                    f"repeat {repeat + 1}: raw {raw_times[-1]:.2f} s,"
                    f" read + decode {decode_times[-1]:.2f} s, audit {audit_times[-1]:.2f} s"
                    f" ({rate(len(log), raw_times[-1]):,.0f} vs"
                    f" {rate(len(log), audit_times[-1]):,.0f} events/s)"
                )
            load_after = load_average()
            stats = machine(conninfo)
    raw_rate, audit_rate = rate(len(log), median(raw_times)), rate(len(log), median(audit_times))
    decode_rate = rate(len(log), median(decode_times))
    ratio = audit_rate / raw_rate
    print_table(
        f"audit replay vs raw select_notifications, {len(log)} events, page size {page_size}",
        ["side", "median time", "events/s", "runs"],
        [
            [
                "raw select",
                f"{median(raw_times):.2f} s",
                f"{raw_rate:,.0f}",
                ", ".join(f"{t:.2f}" for t in raw_times),
            ],
            [
                "read + decode",
                f"{median(decode_times):.2f} s",
                f"{decode_rate:,.0f}",
                ", ".join(f"{t:.2f}" for t in decode_times),
            ],
            [
                "audit",
                f"{median(audit_times):.2f} s",
                f"{audit_rate:,.0f}",
                ", ".join(f"{t:.2f}" for t in audit_times),
            ],
        ],
    )
    print(
        f"audit rate / raw rate: {ratio:.1%} (target 40 %; {workers} worker process(es));"
        f" read + decode alone: {decode_rate / raw_rate:.1%}"
    )
    print_json_line(
        {
            "benchmark": "audit-replay",
            "events": len(log),
            "page_size": page_size,
            "raw_seconds": [round(t, 3) for t in raw_times],
            "decode_seconds": [round(t, 3) for t in decode_times],
            "decode_events_per_second": round(decode_rate),
            "audit_seconds": [round(t, 3) for t in audit_times],
            "raw_events_per_second": round(raw_rate),
            "audit_events_per_second": round(audit_rate),
            "ratio": round(ratio, 3),
            "workers": workers,
            "load_average": {"before": load_before, "after": load_after},
            "machine": stats.as_dict(),
        }
    )
    return 0

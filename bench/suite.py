"""``make bench``: every issue-12 figure (and issue 11's audit rate, the planner, the
catch-up against the library) in one run; one JSON file; docs/benchmarks.md refreshed.

``python -m bench suite`` (what ``make bench`` runs). Sizes come from the mode: full (the
issue's sizes, about 10-15 minutes on a 2-core machine), quick (``BENCH_QUICK=1`` or
``--quick``: reduced sizes, under three minutes; the JSON says which), or tiny (``--tiny``:
SQLite and memory only, seconds; what the test runs so the harness cannot rot). The JSON
goes to ``BENCH_OUT`` (``--out``, default bench/results.json); the section of
docs/benchmarks.md between ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` is replaced
(``--docs``; ``--no-docs`` leaves it). A section that fails is reported as failed (in the
JSON and the table) and the others still run; the exit code is then 1. A target not met
is not a failure: it is a figure.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent

from bench import (
    availability_history,
    big_day,
    command_rate,
    many_restaurants,
    replay_rates,
)
from bench.common import progress
from bench.figures import (
    Figure,
    commit_label,
    load_average,
    machine_label,
    markdown_section,
    now_iso,
    refresh_docs,
    write_json,
)
from bench.report import print_figures
from seatledger.application.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results.json"
DEFAULT_DOCS = ROOT / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Sizes:
    mode: str
    commands: int
    rounds: int
    big_day: int
    probes: int
    restarts: int
    restaurants: int
    restaurant_rounds: int
    rows: int
    queries: int
    events: int
    repeat: int
    planner_bookings: int
    naive_every: int
    library_events: int
    library_repeat: int


FULL = Sizes("full", 300, 3, 5000, 100, 5, 1000, 3, 1_000_000, 1000, 100_000, 3, 400, 4, 10_000, 3)
QUICK = Sizes("quick", 100, 2, 2000, 30, 3, 200, 2, 200_000, 300, 10_000, 1, 150, 10, 2000, 1)
TINY = Sizes("tiny", 8, 1, 60, 3, 1, 12, 1, 0, 0, 0, 0, 12, 12, 0, 0)

#: What quick mode measures differently from the issue's sizes (said in the JSON and docs).
QUICK_NOTES = (
    "quick mode: a 2,000-booking day instead of 5,000 (filling it through the API is most"
    " of the big-day section's time); 200,000 member rows of history instead of 1,000,000;"
    " 200 restaurants instead of 1,000; a 10,000-event log instead of 100,000 (the audit's"
    " figure is specified over at least 100,000); fewer commands and repeats per side.",
)


@dataclass(frozen=True)
class Section:
    name: str
    postgres: bool
    run: Callable[[Sizes], list[Figure]]


@functools.cache
def shared_log(events: int) -> tuple[StoredEvent, ...]:
    log, seconds = replay_rates.load_log(events, seed=1)
    progress(f"generated a {len(log):,}-event log in {seconds:.1f} s")
    return tuple(log)


SECTIONS: tuple[Section, ...] = (
    Section(
        "commands-postgres",
        True,
        lambda s: command_rate.measure_postgres(s.commands, s.rounds),
    ),
    Section("commands-sqlite", False, lambda s: command_rate.measure_sqlite(s.commands, s.rounds)),
    Section("big-day", False, lambda s: big_day.measure(s.big_day, s.probes, s.restarts)),
    Section(
        "many-restaurants",
        False,
        lambda s: many_restaurants.measure(s.restaurants, s.restaurant_rounds),
    ),
    Section("availability", True, lambda s: availability_history.measure(s.rows, s.queries)),
    Section(
        "catch-up",
        True,
        lambda s: [replay_rates.catch_up_figure(list(shared_log(s.events)), s.repeat)],
    ),
    Section(
        "audit",
        True,
        lambda s: [replay_rates.audit_figure(list(shared_log(s.events)), s.repeat)],
    ),
    Section(
        "planner",
        False,
        lambda s: [replay_rates.planner_figure(s.planner_bookings, s.naive_every)],
    ),
    Section(
        "catch-up-library",
        True,
        lambda s: [replay_rates.library_catch_up_figure(s.library_events, s.library_repeat)],
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
        help="reduced sizes, under three minutes (also BENCH_QUICK=1)",
    )
    parser.add_argument("--tiny", action="store_true", help="SQLite/memory only, seconds")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(os.environ.get("BENCH_OUT") or DEFAULT_OUT),
        help="the JSON file (BENCH_OUT; default bench/results.json)",
    )
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="file to refresh")
    parser.add_argument("--no-docs", action="store_true", help="leave the docs alone")
    parser.add_argument(
        "--only", default="", help=f"comma-separated sections of {[s.name for s in SECTIONS]}"
    )


def run(
    sizes: Sizes,
    *,
    out: Path,
    docs: Path | None,
    only: set[str] | None = None,
    command: str = "make bench",
) -> dict[str, Any]:
    """Run the sections, write the JSON and refresh the docs; returns the JSON's content."""
    began = time.perf_counter()
    postgres = sizes.mode != "tiny"
    conninfo = Settings().postgres_conninfo() if postgres else None
    started_load, machine = load_average(), machine_label(conninfo)
    figures: list[Figure] = []
    errors: list[dict[str, str]] = []
    for section in SECTIONS:
        if (only and section.name not in only) or (section.postgres and not postgres):
            continue
        progress(f"{section.name} ...")
        section_began = time.perf_counter()
        try:
            found = section.run(sizes)
        except Exception as exc:  # a broken section is reported, the others still run
            progress(f"{section.name} FAILED: {exc!r}")
            errors.append(
                {
                    "section": section.name,
                    "error": f"{type(exc).__name__}: {exc}"[:300],
                    "traceback": traceback.format_exc()[-2000:],
                }
            )
            continue
        progress(f"{section.name}: {time.perf_counter() - section_began:.1f} s")
        figures.extend(found)
    machine["load_average"] = {"start": started_load, "end": load_average()}
    payload: dict[str, Any] = {
        "run": {
            "command": command,
            "mode": sizes.mode,
            "timestamp": now_iso(),
            "seconds": round(time.perf_counter() - began, 1),
            **commit_label(ROOT),
        },
        "machine": machine,
        "sizes": asdict(sizes),
        "notes": list(QUICK_NOTES) if sizes.mode == "quick" else [],
        "figures": [figure.as_dict() for figure in figures],
        "errors": errors,
    }
    write_json(out, payload)
    if docs is not None:
        refresh_docs(docs, markdown_section(payload))
    print_figures(f"make bench ({sizes.mode})", figures)
    return payload


def main(args: argparse.Namespace) -> int:
    sizes = TINY if args.tiny else QUICK if args.quick else FULL
    command = {
        "tiny": "python -m bench suite --tiny",
        "quick": "BENCH_QUICK=1 make bench",
        "full": "make bench",
    }[sizes.mode]
    only = {name.strip() for name in args.only.split(",") if name.strip()} or None
    unknown = (only or set()) - {section.name for section in SECTIONS}
    if unknown:
        raise SystemExit(f"unknown sections: {sorted(unknown)}")
    payload = run(
        sizes,
        out=args.out,
        docs=None if args.no_docs else args.docs,
        only=only,
        command=command if only is None else f"{command} (--only {args.only})",
    )
    progress(f"wrote {args.out}" + ("" if args.no_docs else f", refreshed {args.docs}"))
    return 1 if payload["errors"] else 0

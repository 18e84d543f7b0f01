"""Helpers shared by the benchmarks: machine facts, scratch schemas, timing summaries, output.

A benchmark prints a human table (rich) and one JSON line on stdout, progress on stderr, and
writes nothing else: figures go into ``docs/benchmarks.md`` by hand, with their caveats.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from seatledger.application.settings import Settings

#: Every scratch schema a benchmark creates starts with this (and is dropped at the end).
SCHEMA_PREFIX = "bench_"

out = Console(highlight=False)
if not out.is_terminal:
    out = Console(highlight=False, width=120)  # piped into a file: do not wrap the tables
err = Console(stderr=True, highlight=False)


def progress(message: str) -> None:
    err.print(f"[dim]{datetime.now(UTC):%H:%M:%S}[/dim] {message}")


@dataclass(frozen=True)
class Machine:
    nproc: int
    python: str
    postgres: str | None
    platform: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "nproc": self.nproc,
            "python": self.python,
            "postgres": self.postgres,
            "platform": self.platform,
        }


def machine(conninfo: str | None = None) -> Machine:
    postgres: str | None = None
    if conninfo is not None:
        with psycopg.connect(conninfo) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            postgres = str(row[0]) if row else None
    return Machine(
        nproc=os.cpu_count() or 1,
        python=platform.python_version(),
        postgres=postgres,
        platform=platform.platform(),
    )


def load_average() -> tuple[float, float, float]:
    """The 1/5/15-minute load averages: other work on the machine skews every figure."""
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def postgres_settings(schema: str, **overrides: Any) -> Settings:
    """PostgreSQL settings for a scratch schema (connection from ``SEATLEDGER_*``)."""
    return Settings(persistence="postgres", postgres_schema=schema, **overrides)


def scratch_schema_names(benchmark: str, *suffixes: str) -> list[str]:
    token = uuid.uuid4().hex[:8]
    return [f"{SCHEMA_PREFIX}{benchmark}_{token}_{suffix}" for suffix in suffixes]


@contextmanager
def scratch_schemas(conninfo: str, names: Sequence[str]) -> Iterator[list[str]]:
    """Create fresh, empty schemas (failing if one exists) and drop them afterwards."""
    for name in names:
        if not name.startswith(SCHEMA_PREFIX):
            raise ValueError(f"scratch schema {name!r} must start with {SCHEMA_PREFIX!r}")
    created: list[str] = []
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for name in names:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
                created.append(name)
        yield list(names)
    finally:
        if created:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                for name in created:
                    conn.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                    )


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds`` (``time.perf_counter``)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    out.print(table)


def print_json_line(payload: dict[str, Any]) -> None:
    """The machine-readable result: exactly one line on stdout."""
    sys.stdout.flush()
    print(json.dumps(payload, sort_keys=True, separators=(",", ":")), flush=True)

"""Availability queries over a deep history beside a shallow one (issue 12 item 5).

Two scratch schemas on PostgreSQL, each with the same restaurant (the 100-table grid floor,
created through the service) and its members read model filled directly with SQL
(``generate_series``: one 19:00-20:35 assignment per active table per day, going back from
2029-12-31): ``--rows`` rows (default 1,000,000: 10,101 days) in one, 10,000 (101 days) in
the other; then ``ANALYZE``. The service runs with ``projection_mode=off`` (nothing else
writes the rows).

Queries: ``service.table_availability`` (the public query, its database function path) for a
random active table on a random day of that schema's own history, half of them for a window
that overlaps the day's row (busy) and half for a free afternoon window; the two schemas
alternate query by query, after 20 untimed queries each. Reported: p50 and p99, deep vs
shallow.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from bench.figures import Figure, percentile
from bench.fixtures import Floor, open_service, pg_settings, postgres_schema
from bench.report import print_figures
from seatledger.application.service import AssignmentService
from seatledger.domain.values import Window

FLOOR = Floor(zones=4)
#: The last day of both histories: a million rows reach back 10,101 days (to 2002), and
#: queries accept instants from 2000 on.
LAST = date(2029, 12, 31)
SHALLOW = 10_000
RESTAURANT = "hist"
WARM_UP = 20

_FILL = """
INSERT INTO {members} (restaurant_id, booking_id, table_id, assignment_id, service_date,
                       start_at, end_at, merge_group_id, idempotency_key, source,
                       notification_id)
SELECT %(restaurant)s, 'h' || g, (%(tables)s::text[])[(g %% %(count)s) + 1], 'a' || g,
       %(last)s::date - (g / %(count)s)::int,
       ((%(last)s::date - (g / %(count)s)::int) + time '19:00') AT TIME ZONE 'UTC',
       ((%(last)s::date - (g / %(count)s)::int) + time '20:35') AT TIME ZONE 'UTC',
       NULL, NULL, 'manual', g + 1
FROM generate_series(0, %(rows)s - 1) AS g
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=1_000_000, help="deep history (1000000)")
    parser.add_argument("--queries", type=int, default=1000, help="timed per schema (1000)")


def fill(schema: str, rows: int) -> tuple[float, int]:
    """The member rows, straight into the read model; seconds taken, whole days of history
    (every table busy at 19:00 on each)."""
    tables = [t.table_id for t in FLOOR.tables]
    conninfo = pg_settings(schema).postgres_conninfo()
    members = sql.Identifier(schema, "seatledger_members")
    began = time.perf_counter()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            sql.SQL(_FILL).format(members=members),
            {
                "restaurant": RESTAURANT,
                "tables": tables,
                "count": len(tables),
                "last": LAST,
                "rows": rows,
            },
        )
        conn.execute(sql.SQL("ANALYZE {}").format(members))
    return time.perf_counter() - began, rows // len(tables)  # whole days only


class Querier:
    def __init__(self, service: AssignmentService, days: int, seed: int) -> None:
        self.service, self.days = service, days
        self.rng = random.Random(seed)
        self.tables = [t.table_id for t in FLOOR.tables]
        self.times: list[float] = []

    def query(self, timed: bool = True) -> None:
        day = LAST - timedelta(days=self.rng.randrange(self.days))
        busy = self.rng.random() < 0.5
        hour = 19 if busy else 14
        start = datetime(day.year, day.month, day.day, hour, 30, tzinfo=UTC)
        window = Window(start=start, end=start + timedelta(minutes=90))
        table = self.rng.choice(self.tables)
        began = time.perf_counter()
        answer = self.service.table_availability(RESTAURANT, table, window)
        seconds = time.perf_counter() - began
        if answer.available == busy:
            raise AssertionError(f"{table} on {day}: expected busy={busy}, got {answer}")
        if timed:
            self.times.append(seconds * 1000)


def measure(rows: int, queries: int) -> list[Figure]:
    command = f"python -m bench availability-history --rows {rows:_} --queries {queries}"
    with postgres_schema("avail_deep") as deep, postgres_schema("avail_shallow") as shallow:
        facts: dict[str, float] = {}
        services = []
        try:
            for name, schema, count in (("deep", deep, rows), ("shallow", shallow, SHALLOW)):
                service = open_service(pg_settings(schema, projection_mode="off"))
                services.append(service)
                service.create_restaurant(FLOOR.create(RESTAURANT))
                seconds, days = fill(schema, count)
                facts[f"{name}_rows"], facts[f"{name}_days"] = count, days
                facts[f"{name}_fill_seconds"] = round(seconds, 1)
            deep_q = Querier(services[0], int(facts["deep_days"]), 1)
            shallow_q = Querier(services[1], int(facts["shallow_days"]), 1)
            for _ in range(WARM_UP):
                deep_q.query(timed=False)
                shallow_q.query(timed=False)
            for _ in range(queries):
                deep_q.query()
                shallow_q.query()
        finally:
            for service in services:
                service.close()
    label = f"{rows:,} member rows vs {SHALLOW:,}"
    return [
        Figure(
            f"availability_{name}",
            f"availability {name}, {label} (PostgreSQL)",
            percentile(deep_q.times, share),
            "ms",
            percentile(shallow_q.times, share),
            f"{name} with {SHALLOW:,} rows of history",
            "<= 1.5",
            command,
            details=facts if name == "p50" else {},
        )
        for name, share in (("p50", 0.5), ("p99", 0.99))
    ]


def main(args: argparse.Namespace) -> int:
    print_figures("availability over history", measure(args.rows, args.queries))
    return 0

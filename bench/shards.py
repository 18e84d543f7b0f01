"""Scale-out across shards: the same writers on 1, 2 and 4 shards, beside one plain store.

``--writers`` processes (default 4), each on a restaurant of its own, register bookings for
``--seconds`` (default 8) through a :class:`ShardedService` whose shards are separate
databases on the local server (created here and dropped afterwards); restaurants are placed
round-robin, so with N shards each shard's events table takes writers/N of them. The baseline,
in the same run, is the same writers on one database through a plain ``AssignmentService``
(no router, no fence): the first sharded row against it is the routing's own cost.

Reported per configuration: commands per second (all writers), the share of the writers'
server backends found waiting on a relation lock (the events table's insert lock: sampled
from ``pg_stat_activity`` every 10 ms while the writers run), CPU per command in the writer
processes and in their server backends (``/proc/<pid>/stat`` of the backends seen), and the
mean latency. Projections are off (no worker runs): only the command path is measured.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import threading
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from datetime import time as clock_time
from typing import Any

import psycopg
from psycopg import sql

from bench.common import load_average, machine, print_json_line, print_table, progress
from seatledger.application.commands import RegisterBooking
from seatledger.application.samples import SMALL_FLOOR
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.shards.router import ShardedService

FIRST_DAY = date(2026, 11, 24)
APP = "sl-bench-shards"
SHARD_COUNTS = (1, 2, 4)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--writers", type=int, default=4, help="writer processes (default 4)")
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="seconds each configuration runs (default 8)"
    )


def writer(
    settings: Settings, sharded: bool, n: int, *, seconds: float, start: Any, results: Any
) -> None:
    """One writer process: its restaurant, then register bookings until the time is up."""
    service: Any = ShardedService(settings) if sharded else AssignmentService(settings)
    restaurant = f"bench-w{n}"
    try:
        service.create_restaurant(SMALL_FLOOR.create(restaurant))
        start.wait()
        cpu, began, count = time.process_time(), time.monotonic(), 0
        while time.monotonic() - began < seconds:
            service.register_booking(
                RegisterBooking(
                    restaurant_id=restaurant,
                    booking_id=f"b{count:06d}",
                    party_size=2,
                    service_date=FIRST_DAY + timedelta(days=count % 60),
                    start_time=clock_time(12 + count % 8, 0),
                )
            )
            count += 1
        results.put((count, time.monotonic() - began, time.process_time() - cpu))
    finally:
        service.close()


class Sampler(threading.Thread):
    """Samples the writers' backends: wait events, and their CPU from /proc."""

    def __init__(self, conninfo: str) -> None:
        super().__init__(daemon=True)
        self.conninfo = conninfo
        self.stop = threading.Event()
        self.waits: Counter[str] = Counter()
        self.samples = 0
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}

    def run(self) -> None:
        query = (
            "SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity"
            " WHERE application_name LIKE %s"
        )
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            tick = 0
            while not self.stop.wait(0.01):
                rows = conn.execute(query, (APP + "%",)).fetchall()
                for pid, state, kind, event in rows:
                    if tick % 10 == 0:
                        self._cpu(int(pid))
                    if state != "active":
                        continue
                    self.samples += 1
                    self.waits[f"{kind}:{event}" if kind else "running"] += 1
                tick += 1
            for pid in list(self.first):
                self._cpu(pid)

    def _cpu(self, pid: int) -> None:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        self.first.setdefault(pid, ticks)
        self.last[pid] = ticks

    def cpu_seconds(self) -> float:
        ticks = sum(self.last[pid] - self.first[pid] for pid in self.first)
        return ticks / os.sysconf("SC_CLK_TCK")

    def share(self, key: str) -> float:
        return self.waits[key] / self.samples if self.samples else 0.0


def run(label: str, conninfo: str, shards: int, writers: int, seconds: float) -> dict[str, Any]:
    token = uuid.uuid4().hex[:8]
    names = [f"bench_shards_{token}_{i}" for i in range(max(shards, 1))]
    base = Settings()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        host = f"postgresql://{base.postgres_user}@{base.postgres_host}:{base.postgres_port}"
        common: dict[str, Any] = {
            "application_name": APP,
            "projection_mode": "off",
            "process_role": "writer",
        }
        if shards:
            settings = Settings(
                shards={f"s{i}": f"{host}/{name}" for i, name in enumerate(names)},
                shard_map={f"bench-w{n}": f"s{n % shards}" for n in range(writers)},
                shard_control="s0",
                **common,
            )
            ShardedService(settings).close()  # migrate every shard and seed the map once
        else:
            settings = Settings(database_url=f"{host}/{names[0]}", **common)
            AssignmentService(settings).close()
        context = multiprocessing.get_context("spawn")
        start, results = context.Barrier(writers + 1), context.Queue()
        processes = [
            context.Process(
                target=writer,
                args=(settings, bool(shards), n),
                kwargs={"seconds": seconds, "start": start, "results": results},
            )
            for n in range(writers)
        ]
        for process in processes:
            process.start()
        sampler = Sampler(conninfo)
        start.wait()
        sampler.start()
        outcomes = [results.get(timeout=seconds + 120) for _ in processes]
        sampler.stop.set()
        sampler.join()
        for process in processes:
            process.join()
        commands = sum(o[0] for o in outcomes)
        elapsed = max(o[1] for o in outcomes)
        client_cpu = sum(o[2] for o in outcomes)
        return {
            "configuration": label,
            "shards": shards,
            "writers": writers,
            "commands": commands,
            "commands_per_second": round(commands / elapsed, 1),
            "relation_lock_wait_share": round(sampler.share("Lock:relation"), 3),
            "active_backend_samples": sampler.samples,
            "top_waits": dict(sampler.waits.most_common(4)),
            "client_cpu_ms_per_command": round(1000 * client_cpu / commands, 2),
            "server_cpu_ms_per_command": round(1000 * sampler.cpu_seconds() / commands, 2),
            "mean_latency_ms": round(1000 * elapsed * writers / commands, 2),
        }
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for name in names:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def main(args: argparse.Namespace) -> int:
    conninfo = Settings().postgres_conninfo()
    facts = machine(conninfo)
    rows = []
    configurations = [("1 store, no router (baseline)", 0)] + [
        (f"{n} shard{'s' if n > 1 else ''}", n) for n in SHARD_COUNTS
    ]
    for label, shards in configurations:
        progress(f"{label}: {args.writers} writers for {args.seconds:g} s")
        rows.append(run(label, conninfo, shards, args.writers, args.seconds))
    baseline = rows[0]["commands_per_second"]
    print_table(
        f"shards: {args.writers} writer processes, {args.seconds:g} s each, register_booking",
        [
            "configuration",
            "commands/s",
            "vs baseline",
            "relation-lock waits",
            "client CPU ms/cmd",
            "server CPU ms/cmd",
            "mean latency ms",
        ],
        [
            (
                r["configuration"],
                r["commands_per_second"],
                f"{r['commands_per_second'] / baseline:.2f}x",
                f"{100 * r['relation_lock_wait_share']:.0f} %",
                r["client_cpu_ms_per_command"],
                r["server_cpu_ms_per_command"],
                r["mean_latency_ms"],
            )
            for r in rows
        ],
    )
    print_json_line(
        {
            "benchmark": "shards",
            "machine": facts.as_dict(),
            "load_average": load_average(),
            "results": rows,
        }
    )
    return 0

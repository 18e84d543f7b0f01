"""Auto-assign throughput on PostgreSQL, beside manual assignment in the same run.

Two restaurants get the same 100-table floor (bench.planner) and the same bookings in a fresh
scratch schema. In one, every booking is auto-assigned (quote: plan and hold; confirm: drift
check and allocation; each its own transaction). In the other, the same bookings are assigned
by hand to the tables the automated run chose (one transaction each), which is the baseline:
the ratio shows what planning and the hold-then-confirm protocol cost per command. The service
runs in its embedded mode (projections caught up in-process after each command), so both
sides include read-your-writes.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, date, datetime, timedelta

from bench.common import (
    load_average,
    machine,
    postgres_settings,
    print_json_line,
    print_table,
    progress,
    scratch_schema_names,
    scratch_schemas,
)
from bench.planner import PARTY_SIZES, PARTY_WEIGHTS, bench_floor
from seatledger.application.commands import (
    AssignTables,
    AutoAssign,
    CreateRestaurant,
    RegisterBooking,
)
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.domain.layout import FloorView

DAY = date(2026, 11, 24)


def restaurant(floor: FloorView, restaurant_id: str) -> CreateRestaurant:
    return CreateRestaurant(
        restaurant_id=restaurant_id,
        policy=floor.policy,
        zones=list(floor.zones.values()),
        tables=list(floor.tables.values()),
        adjacency=sorted(floor.edges),
        command_id=f"bench-{restaurant_id}",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bookings", type=int, default=400, help="bookings (default 400)")


def main(args: argparse.Namespace) -> int:
    conninfo = Settings().postgres_conninfo()
    rng = random.Random(args.seed)
    floor = bench_floor()
    slots = [datetime(2026, 11, 24, 12, 0) + timedelta(minutes=15 * i) for i in range(10)] + [
        datetime(2026, 11, 24, 17, 0) + timedelta(minutes=15 * i) for i in range(17)
    ]
    plan = [
        (f"b{i:04d}", rng.choices(PARTY_SIZES, weights=PARTY_WEIGHTS)[0], rng.choice(slots))
        for i in range(args.bookings)
    ]
    (schema,) = scratch_schema_names("auto_assign", "store")
    with scratch_schemas(conninfo, [schema]):
        settings = postgres_settings(schema, projection_mode="in_process")
        with AssignmentService(settings) as service:
            for restaurant_id in ("auto", "manual"):
                service.create_restaurant(restaurant(floor, restaurant_id))
                for booking_id, party, start in plan:
                    service.register_booking(
                        RegisterBooking(
                            restaurant_id=restaurant_id,
                            booking_id=booking_id,
                            party_size=party,
                            service_date=DAY,
                            start_time=start.time(),
                            command_id=f"register-{restaurant_id}-{booking_id}",
                        )
                    )
            progress(f"auto-assigning {len(plan)} bookings")
            chosen: dict[str, tuple[list[str], bool]] = {}
            began = time.perf_counter()
            for booking_id, _, _ in plan:
                result = service.auto_assign(
                    AutoAssign(restaurant_id="auto", booking_id=booking_id)
                )
                if result.assignment is not None:
                    relaxed = "adjacency" in result.relaxations
                    chosen[booking_id] = (result.assignment.table_ids, relaxed)
            auto_seconds = time.perf_counter() - began
            progress(f"assigning the same {len(chosen)} table sets by hand")
            began = time.perf_counter()
            for booking_id, (tables, relaxed) in chosen.items():
                service.assign_tables(
                    AssignTables(
                        restaurant_id="manual",
                        booking_id=booking_id,
                        table_ids=tables,
                        require_adjacency=False if relaxed else None,
                    )
                )
            manual_seconds = time.perf_counter() - began
            stats = machine(conninfo)
    auto_rate = len(plan) / auto_seconds
    manual_rate = len(chosen) / manual_seconds
    result_json = {
        "benchmark": "auto-assign",
        "bookings": len(plan),
        "seated": len(chosen),
        "auto_assign_per_second": round(auto_rate, 1),
        "manual_assign_per_second": round(manual_rate, 1),
        "auto_over_manual_time_per_command": round(manual_rate / auto_rate, 2),
        "machine": stats.as_dict(),
        "load_average": load_average(),
        "date": datetime.now(UTC).date().isoformat(),
    }
    print_table(
        f"auto-assign on PostgreSQL: {len(plan)} bookings, {len(floor.tables)} tables",
        ["", "commands", "seconds", "per second"],
        [
            ["auto_assign", len(plan), round(auto_seconds, 2), round(auto_rate, 1)],
            [
                "assign_tables (baseline)",
                len(chosen),
                round(manual_seconds, 2),
                round(manual_rate, 1),
            ],
        ],
    )
    print_json_line(result_json)
    return 0

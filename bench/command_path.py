"""What the command ledger costs on the command path, on PostgreSQL: round trips, time and
storage per command, beside the same commands with the ledger's part left out.

Two scratch schemas get the same 100-table floor (bench.planner) and the same bookings, and
run the same phases of commands: register, auto-assign (half the bookings), quote then
confirm (the other half), unassign, assign by hand, an unassign with nothing to remove (a
no-op), and re-sends. In one schema the service runs as shipped; in the other the ledger's
save hook is left out (the baseline: what the code did before the ledger, less its old
re-send recognition). Per phase it counts the calls to the event store (reads: an
aggregate's events; writes: one pipelined insert of everything a save holds) and to the
read models (transactions: projection pages and read-your-writes), and the time. At the end
it compares the size of the two events tables (with their indexes): the difference per
ledger entry is what one entry costs on disk.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from bench.auto_assign import restaurant
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
from seatledger.application import ledger as ledger_module
from seatledger.application.answers import Answers
from seatledger.application.commands import (
    AssignTables,
    AutoAssign,
    Command,
    ConfirmHold,
    QuoteBooking,
    RegisterBooking,
    UnassignTables,
)
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.unit_of_work import UnitOfWork
from seatledger.domain.ledger import CommandRecorded, RunAnswered

DAY = date(2026, 11, 24)
LEDGER_TOPICS = (CommandRecorded.TOPIC, RunAnswered.TOPIC)
PHASES = (
    "register_booking",
    "auto_assign",
    "quote",
    "confirm_hold",
    "unassign_tables",
    "assign_tables",
    "unassign (no-op)",
    "auto_assign re-sent",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bookings", type=int, default=200, help="bookings (default 200)")
    parser.add_argument(
        "--store",
        choices=("postgres", "memory"),
        default="postgres",
        help="postgres (default), or memory: no database, so only the ledger's own work shows",
    )


class Counted:
    """Counts the calls to the event store and the read models of one service."""

    def __init__(self, service: AssignmentService) -> None:
        self.calls: Counter[str] = Counter()
        recorder: Any = service.recorder
        for name in ("select_events", "insert_events", "select_notifications"):
            setattr(recorder, name, self._counting(name, getattr(recorder, name)))
        read_models: Any = service.read_models
        for name in ("transaction", "read"):
            setattr(read_models, name, self._counting("read_models", getattr(read_models, name)))

    def _counting(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return call(*args, **kwargs)

        return counted


@dataclass
class Phase:
    commands: int
    seconds: float
    calls: Counter[str]

    def per_command(self, name: str) -> float:
        return round(self.calls[name] / self.commands, 2) if self.commands else 0.0


class _NoHook:
    def before_save(self, work: UnitOfWork, value: object) -> None:
        pass

    def after_conflict(self) -> None:
        pass

    def saved(self) -> None:
        pass


@contextmanager
def ledger_left_out() -> Iterator[None]:
    """The baseline: commands run without their ledger entries (nothing else changes)."""
    command_run = ledger_module.CommandLedger.run
    step, lookup = ledger_module.RunLedger.step, ledger_module.RunLedger.lookup

    def run(
        self: Any, command: Command, act: Callable[[UnitOfWork], Any], answers: Answers[Any, Any]
    ) -> Any:
        return answers.first(self._store.run(command, act))

    setattr(ledger_module.CommandLedger, "run", run)  # noqa: B010 - a bench-only patch
    setattr(ledger_module.RunLedger, "step", lambda self, decide: _NoHook())  # noqa: B010
    setattr(ledger_module.RunLedger, "lookup", lambda self: None)  # noqa: B010
    try:
        yield
    finally:
        setattr(ledger_module.CommandLedger, "run", command_run)  # noqa: B010
        setattr(ledger_module.RunLedger, "step", step)  # noqa: B010
        setattr(ledger_module.RunLedger, "lookup", lookup)  # noqa: B010


def run_side(settings: Settings, plan: list[tuple[str, int, datetime]]) -> dict[str, Phase]:
    """Every phase on one store; returns each phase's count, time and calls."""
    floor = bench_floor()
    phases: dict[str, Phase] = {}
    with AssignmentService(settings) as service:
        service.create_restaurant(restaurant(floor, "r1"))
        counted = Counted(service)
        half = len(plan) // 2
        auto = [AutoAssign(restaurant_id="r1", booking_id=b) for b, _, _ in plan[:half]]
        quoted: dict[str, str] = {}
        seated: dict[str, list[str]] = {}

        def phase(name: str, commands: list[Any], send: Callable[[Any], Any]) -> None:
            counted.calls.clear()
            began = time.perf_counter()
            for command in commands:
                send(command)
            seconds = time.perf_counter() - began
            phases[name] = Phase(len(commands), seconds, Counter(counted.calls))

        def quote(command: QuoteBooking) -> None:
            result = service.quote(command)
            if result.hold is not None:
                quoted[command.booking_id] = result.hold.hold_id

        def confirm(command: ConfirmHold) -> None:
            seated[command.booking_id] = service.confirm_hold(command).table_ids

        registrations = [
            RegisterBooking(
                restaurant_id="r1",
                booking_id=b,
                party_size=party,
                service_date=DAY,
                start_time=start.time(),
            )
            for b, party, start in plan
        ]
        phase("register_booking", registrations, service.register_booking)
        phase("auto_assign", auto, service.auto_assign)
        quotes = [QuoteBooking(restaurant_id="r1", booking_id=b) for b, _, _ in plan[half:]]
        phase("quote", quotes, quote)
        confirms = [
            ConfirmHold(restaurant_id="r1", booking_id=b, hold_id=h) for b, h in quoted.items()
        ]
        phase("confirm_hold", confirms, confirm)
        unassigns = [UnassignTables(restaurant_id="r1", booking_id=b) for b in seated]
        phase("unassign_tables", unassigns, service.unassign_tables)
        assigns = [
            AssignTables(restaurant_id="r1", booking_id=b, table_ids=t, require_adjacency=False)
            for b, t in seated.items()
        ]
        phase("assign_tables", assigns, service.assign_tables)
        nothing = [
            UnassignTables(restaurant_id="r1", booking_id=b, table_ids=["no-such-table"])
            for b in seated
        ]
        phase("unassign (no-op)", nothing, service.unassign_tables)
        phase("auto_assign re-sent", auto, service.auto_assign)
    return phases


def side_settings(store: str, schema: str) -> Settings:
    if store == "memory":
        return Settings(persistence="memory")
    return postgres_settings(schema, projection_mode="in_process")


def median_phases(runs: list[dict[str, Phase]]) -> dict[str, Phase]:
    """Per phase, the run of median time (the calls are the same in every run)."""
    return {
        name: sorted((run[name] for run in runs), key=lambda phase: phase.seconds)[len(runs) // 2]
        for name in PHASES
    }


def events_table_bytes(conninfo: str, schema: str) -> tuple[int, int]:
    """The events table's size with its indexes, and how many ledger events it holds."""
    with psycopg.connect(conninfo) as conn:
        table = sql.Identifier(schema, "seatledger_events")
        size_row = conn.execute(
            sql.SQL("SELECT pg_total_relation_size({})").format(
                sql.Literal(f"{schema}.seatledger_events")
            )
        ).fetchone()
        count_row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE topic = ANY(%s)").format(table),
            (list(LEDGER_TOPICS),),
        ).fetchone()
    assert size_row is not None and count_row is not None
    return int(size_row[0]), int(count_row[0])


def ledger_state_bytes(conninfo: str, schema: str) -> dict[str, float]:
    """The average stored state of a ledger event, by the command it records (an answered
    run's second event as ``<command> answer``)."""
    with psycopg.connect(conninfo) as conn:
        table = sql.Identifier(schema, "seatledger_events")
        rows = conn.execute(
            sql.SQL(
                "SELECT coalesce(convert_from(state, 'UTF8')::jsonb->>'command', "
                "'AutoAssign answer'), avg(octet_length(state)) "
                "FROM {} WHERE topic = ANY(%s) GROUP BY 1 ORDER BY 1"
            ).format(table),
            (list(LEDGER_TOPICS),),
        ).fetchall()
    return {str(command): round(float(size)) for command, size in rows}


def main(args: argparse.Namespace) -> int:
    conninfo = Settings().postgres_conninfo()
    rng = random.Random(args.seed)
    slots = [datetime(2026, 11, 24, 12, 0) + timedelta(minutes=15 * i) for i in range(10)] + [
        datetime(2026, 11, 24, 17, 0) + timedelta(minutes=15 * i) for i in range(17)
    ]
    plan = [
        (f"b{i:04d}", rng.choices(PARTY_SIZES, weights=PARTY_WEIGHTS)[0], rng.choice(slots))
        for i in range(args.bookings)
    ]
    runs: dict[str, list[dict[str, Phase]]] = {"baseline": [], "ledger": []}
    ledger_bytes = baseline_bytes = entries = 0
    state_bytes: dict[str, float] = {}
    memory = args.store == "memory"
    for repeat in range(args.repeat):  # the sides alternate, so load drifts hit both
        with_ledger, without = scratch_schema_names("command_path", "ledger", "baseline")
        schemas = nullcontext() if memory else scratch_schemas(conninfo, [with_ledger, without])
        with schemas:
            progress(f"run {repeat + 1}/{args.repeat}: baseline (the ledger left out)")
            with ledger_left_out():
                runs["baseline"].append(run_side(side_settings(args.store, without), plan))
            progress(f"run {repeat + 1}/{args.repeat}: with the ledger")
            runs["ledger"].append(run_side(side_settings(args.store, with_ledger), plan))
            if not memory:
                ledger_bytes, entries = events_table_bytes(conninfo, with_ledger)
                baseline_bytes, _ = events_table_bytes(conninfo, without)
                state_bytes = ledger_state_bytes(conninfo, with_ledger)
    stats = machine(None if args.store == "memory" else conninfo)
    baseline, ledger = median_phases(runs["baseline"]), median_phases(runs["ledger"])
    per_entry = round((ledger_bytes - baseline_bytes) / entries) if entries else 0
    rows = []
    figures: dict[str, Any] = {}
    for name in PHASES:
        a, b = ledger[name], baseline[name]
        rows.append(
            [
                name,
                a.commands,
                f"{b.per_command('select_events')} / {a.per_command('select_events')}",
                f"{b.per_command('insert_events')} / {a.per_command('insert_events')}",
                f"{b.per_command('read_models')} / {a.per_command('read_models')}",
                f"{b.commands / b.seconds:.1f} / {a.commands / a.seconds:.1f}",
            ]
        )
        figures[name] = {
            "commands": a.commands,
            "baseline": {k: b.per_command(k) for k in ("select_events", "insert_events")}
            | {"per_second": round(b.commands / b.seconds, 1)},
            "ledger": {k: a.per_command(k) for k in ("select_events", "insert_events")}
            | {"per_second": round(a.commands / a.seconds, 1)},
        }
    print_table(
        f"command path on {args.store}, {len(plan)} bookings: baseline (no ledger) / ledger",
        ["phase", "commands", "event reads", "event writes", "read-model tx", "per second"],
        rows,
    )
    print_table(
        "storage",
        ["", "value"],
        [
            ["ledger events", entries],
            ["events table + indexes, baseline (bytes)", baseline_bytes],
            ["events table + indexes, ledger (bytes)", ledger_bytes],
            ["per ledger event, on disk (bytes)", per_entry],
            *[[f"entry of {command} (avg state bytes)", v] for command, v in state_bytes.items()],
        ],
    )
    print_json_line(
        {
            "benchmark": "command-path",
            "store": args.store,
            "bookings": len(plan),
            "phases": figures,
            "ledger_events": entries,
            "bytes_per_ledger_event": per_entry,
            "state_bytes": state_bytes,
            "machine": stats.as_dict(),
            "load_average": load_average(),
            "date": datetime.now(UTC).date().isoformat(),
        }
    )
    return 0

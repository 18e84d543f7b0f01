"""The ``seatledger`` command line.

Each subcommand is one ``add_<name>(subparsers)`` function that builds its parser and sets
``handler`` to a function ``(args) -> exit code``; registering it is one entry in
:data:`SUBCOMMANDS`. The global options (logging, the store) are accepted before and after
the command's name. ``main`` turns every failure into a short message on stderr and one of
the documented exit codes, never a traceback (``--log-level debug`` logs it)."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeAlias

import psycopg
from eventsourcing.persistence import PersistenceError
from rich.console import Console
from rich.table import Table

from seatledger.application import cli_options
from seatledger.application.audit.cli import add_audit, add_diff, add_floor, add_timeline
from seatledger.application.audit.rebuild import RebuildVerificationError, rebuild
from seatledger.application.cli_options import (
    UsageError,
    add_global_options,
    load_settings,
    option,
)
from seatledger.application.cli_outbox import add_outbox
from seatledger.application.demo import (
    DEFAULT_DB_PATH,
    DEFAULT_SEED,
    RESTAURANT_ID,
    DemoDatabaseError,
    DemoReport,
    run_demo,
)
from seatledger.application.health import DEFAULT_MAX_LAG, StoreStatus, print_status
from seatledger.application.publishers import PublisherUnavailableError, publisher_for
from seatledger.application.read_models import PROJECTIONS
from seatledger.application.schema import StoreSchema, migrate_store
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.shards.cli import (
    add_shard_option,
    add_shards,
    per_shard,
    status_per_shard,
)
from seatledger.application.shards.config import shard_settings
from seatledger.application.telemetry import JsonFormatter, Telemetry, TextFormatter
from seatledger.application.worker import (
    announce_relay,
    build_relay,
    open_relay_store,
    run_relay,
    run_worker,
)
from seatledger.domain.errors import SeatLedgerError
from seatledger.projections.migrations import LATEST, MIGRATIONS

#: Exit codes (defined with the options, where every subcommand module finds them).
EXIT_OK, EXIT_ERROR, EXIT_USAGE = (
    cli_options.EXIT_OK,
    cli_options.EXIT_ERROR,
    cli_options.EXIT_USAGE,
)
EXIT_INTERRUPTED = cli_options.EXIT_INTERRUPTED

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler = Callable[[argparse.Namespace], int]

# --- demo -----------------------------------------------------------------------------------


def add_demo(subparsers: Subparsers) -> None:
    """``seatledger demo``: the project's main job, a whole service day in a few seconds."""
    parser = subparsers.add_parser(
        "demo",
        help="simulate one busy service day and check it for double bookings",
        description=(
            "Simulate one service day (lunch and dinner) of the demo restaurant "
            f"{RESTAURANT_ID!r} through the service API: holds, confirms, manual seating, "
            "moves, cancellations, expiring holds, re-sent commands, conflicts and mid-service "
            "layout and policy changes that make open holds drift. Then read the floor back and "
            "count double bookings independently of the domain's own checks. "
            "The demo owns its SQLite file: an existing demo database (one holding the "
            f"{RESTAURANT_ID!r} restaurant) is deleted and recreated, with its -wal/-shm files; "
            "any other existing file is refused unless --overwrite is given. "
            "The file is --db PATH (or --database-url sqlite:///PATH). "
            "Exit code 1 if a double booking was found."
        ),
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        metavar="N",
        help=f"random seed; the same seed gives the same day and report (default: {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (sorted keys) instead of tables",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="delete PATH even if it is not a demo database",
    )
    # the simulated day escalates drift on purpose: its log lines are not news
    parser.set_defaults(handler=demo, default_log_level="critical")


def demo(args: argparse.Namespace) -> int:
    """Run the day; a double booking fails the run so scripts and CI can rely on the code."""
    path = demo_path(args)
    try:
        report = run_demo(path, args.seed, overwrite=args.overwrite)
    except DemoDatabaseError as err:
        raise UsageError(err.message, err.hint) from None
    if args.json:
        print(report.to_json())
    else:
        print_demo_report(report, Console(), db=path)
    return EXIT_OK if report.double_bookings == 0 else EXIT_ERROR


def demo_path(args: argparse.Namespace) -> Path:
    """The demo's own SQLite file: --db, a sqlite:/// --database-url, or the default (never
    the store the environment names). A bad ``SEATLEDGER_*`` setting stops it here."""
    settings = load_settings(args, "demo")
    if option(args, "database_url") is None:
        return Path(option(args, "db", DEFAULT_DB_PATH))
    if settings.persistence != "sqlite":
        raise UsageError(
            "the demo runs on its own SQLite file",
            "give --db PATH or --database-url sqlite:///PATH",
        )
    return settings.sqlite_path


def print_demo_report(report: DemoReport, console: Console, *, db: Path) -> None:
    """The human-readable summary: counts, auto-assign outcomes, the read-side checks,
    rejections by code, drift by kind."""
    summary = Table(title=f"{report.restaurant_id} on {report.service_date} (seed {report.seed})")
    summary.add_column("what")
    summary.add_column("count", justify="right")
    seated = report.seated_by_source
    rows = [
        ("zones / tables", f"{report.zones} / {report.tables}"),
        ("bookings (walk-ins)", f"{report.bookings} ({report.walk_ins})"),
        ("commands", report.commands),
        ("succeeded", report.succeeded),
        ("rejected", report.rejected),
        (
            "seated by auto-assign / hold / by hand",
            " / ".join(str(seated.get(source, 0)) for source in ("auto", "hold", "manual")),
        ),
        ("holds placed", report.holds_placed),
        ("holds replaced", report.holds_replaced),
        ("holds confirmed (hosts and auto-assign)", report.holds_confirmed),
        ("holds released", report.holds_released),
        ("holds expired (sweeper)", report.holds_expired),
        ("direct assignments", report.direct_assignments),
        ("moves", report.moves),
        ("unassigns", report.unassigns),
        ("idempotent replays", report.replays),
        ("cancellations (walk-ins turned away)", f"{report.cancellations} ({report.turned_away})"),
        ("no-shows", report.no_shows),
        ("completions", report.completions),
        ("layout / policy changes", report.layout_changes),
        ("never seated", report.unseated),
        ("double-booking scans", report.double_booking_scans),
    ]
    for name, value in rows:
        summary.add_row(name, str(value))
    summary.add_row("double bookings", _flag(report.double_bookings, 0))
    summary.add_row("seconds", f"{report.seconds:.2f}")
    console.print(summary)
    console.print(_auto_assign_table(report))
    console.print(_read_side_table(report))
    console.print(_counts("rejected by code", "code", report.rejected_by_code))
    console.print(_counts("policy drift by kind", "kind", report.drift_by_kind))
    console.print(_counts("bookings at close", "status", report.final_status))
    console.print(f"event store: {db}")


def _auto_assign_table(report: DemoReport) -> Table:
    auto = report.auto_assign
    table = Table(title="auto-assign")
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = [
        ("attempted", str(auto.attempted)),
        ("quoted ahead", str(auto.early_quotes)),
        ("assigned", str(auto.succeeded)),
        ("  of which after a drift", str(auto.drift_recovered)),
        ("drift not recovered", str(auto.drift_failed)),
        ("failed", _breakdown(auto.failed_by_code)),
        ("no candidate", _breakdown(auto.no_candidate_by_reason)),
        ("replayed (re-sent)", str(auto.replayed)),
        ("already assigned", str(auto.already_assigned)),
        ("holds left after a failure", _flag(auto.holds_left_after_failure, 0)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _read_side_table(report: DemoReport) -> Table:
    """Each outbox or members count next to what it must equal."""
    table = Table(title="read side, projections caught up")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("expected", justify="right")
    rows = [
        ("capacity.assignment.sync", report.sync_messages, report.table_set_changing_commands),
        ("capacity.hold.confirmed", report.hold_confirmed_messages, report.holds_confirmed),
        (
            "capacity.policy.drift",
            report.drift_messages,
            sum(report.drift_by_kind.values()) + report.auto_assign.drift_recovered,
        ),
        ("member rows", report.members_rows, report.assigned_at_close),
        ("assigned tables without a member row", report.members_with_empty_id, 0),
    ]
    for name, count, expected in rows:
        table.add_row(name, _flag(count, expected), str(expected))
    table.add_row('member ids "" in command results', str(report.results_with_empty_id), "")
    return table


def _breakdown(counts: dict[str, int]) -> str:
    """``3 (A 1, B 2)``: the total, then the counts it is made of."""
    parts = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
    total = sum(counts.values())
    return f"{total} ({parts})" if parts else str(total)


def _flag(count: int, expected: int) -> str:
    """A count in green when it is what it must be, else in red."""
    style = "bold green" if count == expected else "bold red"
    return f"[{style}]{count}[/]"


def _counts(title: str, key: str, counts: dict[str, int]) -> Table:
    """A two-column table of counts; an empty one says so rather than vanishing."""
    table = Table(title=title)
    table.add_column(key)
    table.add_column("count", justify="right")
    for name, count in sorted(counts.items()):
        table.add_row(name, str(count))
    if not counts:
        table.add_row("(none)", "0")
    return table


# --- production processes and operations --------------------------------------------------


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the process finishes what it holds and exits 0."""
    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def add_migrate(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="create the store's schema, event table and read models",
        description=(
            "Create whatever is missing (settings from SEATLEDGER_*): the PostgreSQL schema or the "
            "SQLite file, the event table and the pending read-model migrations. Idempotent; "
            "concurrent migrators are serialised by an advisory lock. --status only reads."
        ),
    )
    parser.add_argument(
        "--status", action="store_true", help="only show what exists and what is pending"
    )
    parser.set_defaults(handler=migrate_command, default_log_level="info")


def migrate_command(args: argparse.Namespace) -> int:
    settings = load_settings(args, "migrate")
    if settings.shards:  # every shard, one after the other
        for name in settings.shards:
            shard = shard_settings(settings, name)
            print(f"shard {name}: {shard.describe_store()}")
            _migrate(args, shard)
        return EXIT_OK
    return _migrate(args, settings)


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    if settings.persistence == "memory":
        raise UsageError(
            "the memory store lives inside one process: there is nothing to migrate",
            "give --db PATH or --database-url",
        )
    if args.status:
        state = StoreSchema(settings).inspect()
        store = settings.describe_store()
        print(f"store        {'present' if state.store else 'missing':8s}  {store}")
        print(f"event table  {'present' if state.event_store else 'missing':8s}")
        for migration in MIGRATIONS:
            done = "applied" if migration.version in state.applied else "pending"
            print(f"{migration.version:4d}  {done:8s}  {migration.name}")
        return EXIT_OK
    report = migrate_store(settings)
    if report.created_store:
        print(f"created the store: {settings.describe_store()}")
    if report.created_event_store:
        print("created the event table")
    for migration in report.applied:
        print(f"applied {migration.version}: {migration.name}")
    if not report.changed:
        print(f"up to date (version {LATEST})")
    return EXIT_OK


def add_worker(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="keep the members and outbox projections current",
        description=(
            "Run the projections until SIGTERM or SIGINT (settings from SEATLEDGER_*). "
            "PostgreSQL: LISTEN/NOTIFY wake-ups with polling as a safety net; SQLite: polling."
        ),
    )
    parser.add_argument("--once", action="store_true", help="catch up once, then exit")
    add_shard_option(parser)
    parser.set_defaults(handler=worker_command, default_log_level="info")


def worker_command(args: argparse.Namespace) -> int:
    settings = load_settings(args, "worker")
    stop = _stop_on_signals()
    if settings.shards:  # one thread per shard, or --shard NAME
        return per_shard(settings, args.shard, lambda shard: _worker(args, shard, stop))
    return _worker(args, settings, stop)


def _worker(args: argparse.Namespace, settings: Settings, stop: threading.Event) -> int:
    if not args.once:
        run_worker(settings, stop=stop)
        return EXIT_OK
    failed = threading.Event()

    def give_up() -> None:
        failed.set()
        stop.set()

    run_worker(settings, stop=stop, on_idle=stop.set, on_failure=give_up, wait=False)
    if failed.is_set():
        _print_error(
            "error: a projection failed (see the log, and seatledger status)",
            "hint: a long-running worker retries with back-off; --once gives up",
        )
        return EXIT_ERROR
    return EXIT_OK


def add_relay(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "relay",
        help="publish pending outbox messages",
        description=(
            "Hand pending outbox messages to the publisher until SIGTERM or SIGINT: "
            "SEATLEDGER_PUBLISHER or --publisher; the default, 'log', only logs them and "
            "delivers nowhere. Failures are retried with capped exponential back-off and "
            "dead-lettered after SEATLEDGER_RELAY_MAX_ATTEMPTS attempts (see seatledger outbox)."
        ),
    )
    parser.add_argument("--once", action="store_true", help="relay one batch, then exit")
    parser.add_argument(
        "--publisher",
        metavar="URL",
        help="'log', nats://HOST:PORT (JetStream; needs seatledger[nats]) or https://... "
        "(a webhook, signed with SEATLEDGER_WEBHOOK_SECRET); beats SEATLEDGER_PUBLISHER",
    )
    add_shard_option(parser)
    parser.set_defaults(handler=relay_command, default_log_level="info")


def relay_command(args: argparse.Namespace) -> int:
    overrides = {} if args.publisher is None else {"publisher": args.publisher}
    settings = load_settings(args, "relay", **overrides)
    stop = threading.Event() if args.once else _stop_on_signals()
    if settings.shards:  # one relay per shard, or --shard NAME
        return per_shard(settings, args.shard, lambda shard: _relay(args, shard, stop))
    return _relay(args, settings, stop)


def _relay(args: argparse.Namespace, settings: Settings, stop: threading.Event) -> int:
    telemetry = Telemetry.configured(otel=settings.otel_enabled)
    try:
        publisher = publisher_for(settings, telemetry)
    except PublisherUnavailableError as err:
        raise UsageError(err.message, err.hint) from None
    if args.once:
        with open_relay_store(settings) as db:  # as the long-running relay does, no waiting
            relay = build_relay(settings, db, publisher, telemetry)
            announce_relay(relay, settings, telemetry)
            try:
                stats = relay.run_once()
            finally:
                relay.close()
        print(json.dumps(stats.__dict__, sort_keys=True))
        return EXIT_OK
    run_relay(settings, stop=stop, publisher=publisher, telemetry=telemetry)
    return EXIT_OK


def add_status(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "status",
        help="projection positions, lag and failures, outbox counts; a health check",
        description=(
            "Show where each projection is in the event log (lag: the notifications it handles "
            "after its position), any event a projection stopped before, and the outbox by type "
            "and delivery status. Reads only. Exit code 0 if healthy, 1 if not (a projection "
            "stopped at an event, lag above --max-lag, dead messages above --max-dead) or if the "
            "store cannot be read."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--max-lag",
        type=int,
        default=DEFAULT_MAX_LAG,
        metavar="N",
        help="unhealthy if a projection lags more than N notifications "
        f"(default {DEFAULT_MAX_LAG})",
    )
    parser.add_argument(
        "--max-dead",
        type=int,
        default=None,
        metavar="N",
        help="unhealthy if more than N outbox messages are dead (default: not checked)",
    )
    add_shard_option(parser)
    parser.set_defaults(handler=status_command)


def status_command(args: argparse.Namespace) -> int:
    # read-only: a store that is missing anything is an error naming `seatledger migrate`
    settings = load_settings(args, "status", projection_mode="off", migrate_on_start=False)
    if settings.shards:  # every shard, or --shard NAME
        return status_per_shard(settings, args)
    with AssignmentService(settings) as service:
        status = StoreStatus.read(service)
    problems = status.problems(max_lag=args.max_lag, max_dead=args.max_dead)
    if args.json:
        print(json.dumps(status.as_dict(problems), sort_keys=True))
    else:
        print_status(status, Console())
    if problems:
        _print_error(*(f"unhealthy: {problem}" for problem in problems))
        return EXIT_ERROR
    return EXIT_OK


def add_rebuild(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "rebuild",
        help="rebuild the read models from the event log",
        description=(
            "Rebuild the members and outbox read models beside the live ones (a private scratch "
            "database), then swap each in, in one transaction that is verified before it "
            "commits: readers never see a half-built read model, a running worker waits for "
            "the swap. Outbox messages keep their delivery state; only messages the log now "
            "produces and the outbox lacked are added, as pending: nothing is sent again. "
            "See docs/operations.md, 'Rebuilding the read models'."
        ),
    )
    parser.add_argument("--projection", choices=[p.name for p in PROJECTIONS], help="only this one")
    parser.set_defaults(handler=rebuild_command, default_log_level="info")


def rebuild_command(args: argparse.Namespace) -> int:
    settings = load_settings(args, "rebuild", projection_mode="off")
    with AssignmentService(settings) as service:
        names = None if args.projection is None else [args.projection]
        try:
            reports = rebuild(service, names)
        except RebuildVerificationError as err:
            _print_error(f"error: {err}", "hint: nothing was swapped; run seatledger audit")
            return EXIT_ERROR
    for report in reports:
        print(
            f"{report.name}: at position {report.position}, {report.rows} rows "
            f"(+{report.inserted} ~{report.updated} -{report.deleted}"
            + (
                f", {report.kept_delivery_state} kept their delivery state"
                if report.name == "outbox"
                else ""
            )
            + "), verified"
        )
    return EXIT_OK


def add_serve(subparsers: Subparsers) -> None:
    """``seatledger serve``: the HTTP service (needs the ``http`` extra, imported only here)."""
    parser = subparsers.add_parser(
        "serve",
        help="serve every command and query over HTTP (needs seatledger[http])",
        description=(
            "Run the HTTP service until SIGTERM or SIGINT (settings from SEATLEDGER_*): every "
            "command and query under /restaurants/{id}, /healthz, /readyz and /openapi.json. "
            "Requests carry 'Authorization: Bearer <key>'; the keys file (JSON, SHA-256 of each "
            "key, bound to restaurants and a role) is re-read when it changes. With "
            "SEATLEDGER_SHARDS, every request goes to its restaurant's shard. See "
            "docs/operations.md, 'HTTP service'."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    parser.add_argument("--keys", type=Path, metavar="FILE", help="the API keys file (JSON)")
    parser.add_argument(
        "--print-openapi",
        action="store_true",
        help="print the OpenAPI document (as in docs/openapi.json) and exit",
    )

    def serve(args: argparse.Namespace) -> int:
        try:
            from seatledger.application.http import server  # noqa: PLC0415 - optional extra
            from seatledger.application.http.auth import KeysFileError  # noqa: PLC0415
        except ImportError as exc:
            _print_error(f"error: {exc}", "hint: pip install 'seatledger[http]'")
            return EXIT_USAGE
        if args.print_openapi:
            print(server.openapi_json(), end="")
            return EXIT_OK
        if args.keys is None:
            _print_error("error: --keys FILE is required", "hint: see docs/operations.md")
            return EXIT_USAGE
        level = logging.getLevelName(logging.getLogger("seatledger").getEffectiveLevel())
        settings = load_settings(args, "http")
        try:
            server.serve(
                settings,
                host=args.host,
                port=args.port,
                keys_file=args.keys,
                log_level=level.lower(),
            )
        except KeysFileError as err:
            _print_error(f"error: {err}", "hint: see the keys file format in docs/operations.md")
            return EXIT_USAGE
        return EXIT_OK

    parser.set_defaults(handler=serve, default_log_level="info")


# --- the command line -----------------------------------------------------------------------

#: One entry per subcommand.
SUBCOMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    add_demo,
    add_migrate,
    add_worker,
    add_relay,
    add_status,
    add_outbox,
    add_rebuild,
    add_serve,
    add_audit,
    add_floor,
    add_timeline,
    add_diff,
    add_shards,
)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; each subcommand adds itself (see :data:`SUBCOMMANDS`)."""
    parser = argparse.ArgumentParser(
        prog="seatledger",
        description="Event-sourced table assignment for restaurant booking platforms.",
        epilog=(
            "Settings come from SEATLEDGER_* variables, ./.env (or SEATLEDGER_ENV_FILE) and "
            "SEATLEDGER_SECRETS_DIR; --db and --database-url beat them. "
            f"Exit codes: {EXIT_OK} ok, {EXIT_ERROR} a failure (a seatledger error, the store "
            f"failing, a failed check), {EXIT_USAGE} bad usage or an invalid setting, "
            f"{EXIT_INTERRUPTED} interrupted."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    add_global_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(subparsers)
    for subparser in subparsers.choices.values():
        add_global_options(subparser)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("seatledger")
    except importlib.metadata.PackageNotFoundError:  # running from a bare source tree
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``seatledger`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if option(args, "db") is not None and option(args, "database_url") is not None:
        _print_error("error: --db and --database-url both name the store; give one")
        return EXIT_USAGE
    handler: Handler = args.handler
    logger = logging.getLogger("seatledger")
    previous_level = logger.level
    level = option(args, "log_level") or getattr(args, "default_log_level", "error")
    log_handler = _log_to_stderr(logger, level, option(args, "log_format", "text"))
    try:
        return handler(args)
    except UsageError as err:
        _print_error(f"error: {err.message}", *([f"hint: {err.hint}"] if err.hint else []))
        return EXIT_USAGE
    except SeatLedgerError as err:
        lines = [f"error: [{err.code}] {err.message}"]
        if err.details:
            lines.append(f"details: {json.dumps(err.details, default=str, sort_keys=True)}")
        lines.append(f"hint: {err.hint}")
        _print_error(*lines)
        return EXIT_ERROR
    except KeyboardInterrupt:
        _print_error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout's reader went away (`| head`): the store is fine
        _silence_stdout()
        return EXIT_ERROR
    except (psycopg.Error, sqlite3.Error, OSError, PersistenceError) as exc:
        logger.debug("the failure's traceback", exc_info=True)
        _print_error(
            f"error: the store failed: {_first_line(_driver_error(exc))}",
            "hint: check the store (--database-url, SEATLEDGER_DATABASE_URL) and that it is up",
        )
        return EXIT_ERROR
    except Exception as exc:
        logger.debug("the failure's traceback", exc_info=True)
        _print_error(
            f"error: unexpected failure: {_first_line(exc)}",
            "hint: a bug; --log-level debug shows the traceback",
        )
        return EXIT_ERROR
    finally:
        logger.removeHandler(log_handler)
        logger.setLevel(previous_level)


def _driver_error(exc: BaseException) -> BaseException:
    """The driver's own error behind the library's wrapper (it names what failed)."""
    cause = exc.__cause__
    if isinstance(exc, PersistenceError) and isinstance(cause, psycopg.Error | sqlite3.Error):
        return cause
    return exc


def _first_line(exc: BaseException) -> str:
    """The exception's type and the first line of its message (psycopg's run to several)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _log_to_stderr(logger: logging.Logger, level: str, log_format: str) -> logging.Handler:
    """Seatledger's log lines go to stderr (stdout stays clean for --json)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logger.setLevel(level.upper())
    logger.addHandler(handler)
    return handler


def _silence_stdout() -> None:
    """Point stdout at the null device, so the interpreter's final flush into the closed
    pipe raises nothing more (the Python documentation's recipe for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _print_error(*lines: str) -> None:
    """Plain print, not rich: messages carry brackets (``[CODE]``) rich would eat as markup."""
    for line in lines:
        print(line, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

"""The audit and time-travel subcommands: ``audit``, ``floor``, ``timeline``, ``diff``.

Each is an ``add_<name>(subparsers)`` function in the style of
:mod:`seatledger.application.cli` (which registers them); tables go to stdout through rich,
``--json`` prints one JSON object instead. The store is opened read-only in spirit: no
projection runs, no migration is applied, nothing is published.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TypeAlias

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from seatledger.application.audit.auditor import Audit
from seatledger.application.audit.digest import CheckpointError
from seatledger.application.audit.parallel import PARALLEL_MIN_EVENTS
from seatledger.application.audit.render import (
    print_audit,
    print_diff,
    print_floor,
    print_timeline,
)
from seatledger.application.audit.replay import Until
from seatledger.application.cli_options import UsageError, load_settings
from seatledger.application.service import AssignmentService

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

#: The audit's exit codes: 0 only when everything matched; 1 a difference, a violation, a
#: checkpoint mismatch (or any failure, as for every command).
AUDIT_OK, AUDIT_DIFFERENT = 0, 1


def _service(args: argparse.Namespace) -> AssignmentService:
    """The store as the settings name it, with nothing running on it: no projections, no
    migrations (the audit and time travel only read)."""
    settings = load_settings(args, "audit", projection_mode="off", migrate_on_start=False)
    return AssignmentService(settings)


def _console() -> Console:
    """stdout; piped into a file it is not wrapped at 80 columns (the rows are wide)."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def parse_instant(text: str, what: str = "instant") -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{what} {text!r} is not an ISO 8601 instant", "e.g. 2026-11-24T19:42:00Z"
        ) from None
    if moment.tzinfo is None:
        raise UsageError(f"{what} {text!r} has no timezone", "add Z or an offset, e.g. +01:00")
    return moment


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"service date {text!r} is not YYYY-MM-DD") from None


# --- progress -------------------------------------------------------------------------------


class RateColumn(ProgressColumn):
    """Events per second (rich's own speed column counts bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} events/s", style="progress.data.speed")


@contextmanager
def progress_bar(console: Console, *, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A bar with rate and ETA on a terminal; None (no output at all) when not enabled or
    not a terminal (``--json``, pipes, CI logs)."""
    if not enabled or not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("replaying the log"),
        BarColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("replay", total=None)

        def update(position: int, last: int) -> None:
            bar.update(task, completed=position, total=max(last, 1))

        yield update


# --- audit ----------------------------------------------------------------------------------


def add_audit(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="replay the log; compare the read models; check invariants and tampering",
        description=(
            "Replay the event log (all of it, or --until a position or instant) into scratch "
            "read models (a private in-memory database: the live tables are only read, nothing "
            "is published) and compare them with the live members and outbox rows, row by row, "
            "at the live tracking positions. The same replay checks the domain's invariants at "
            "every event and chains a digest of the log; --checkpoint FILE writes that digest "
            "(when FILE does not exist) or verifies the log against it. Exit code 0 only when "
            "everything matched. See docs/operations.md, 'Audits'."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--until",
        metavar="POSITION|INSTANT",
        help="stop after this log position, or before the first event stored after this instant",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="write the log's chained digest to FILE, or verify the log against FILE if it exists",
    )
    parser.add_argument(
        "--page-size", type=int, default=1000, metavar="N", help="events per read (default 1000)"
    )
    parser.add_argument(
        "--max-differences",
        type=int,
        default=10,
        metavar="N",
        help="differences listed per kind and read model (default 10)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help=(
            "processes to replay in, on PostgreSQL (default: one per CPU, up to 4, for a log "
            f"of {PARALLEL_MIN_EVENTS:,} events or more; 1 elsewhere)"
        ),
    )
    parser.set_defaults(handler=audit_command)


def _until(text: str | None) -> Until:
    if text is None:
        return Until()
    if text.isdigit():
        return Until(position=int(text))
    return Until(instant=parse_instant(text, "--until"))


def audit_command(args: argparse.Namespace) -> int:
    if args.page_size < 1 or args.max_differences < 0:
        raise UsageError("--page-size must be positive and --max-differences not negative")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be positive")
    until = _until(args.until)
    with (
        _service(args) as service,
        progress_bar(Console(stderr=True), enabled=not args.json) as progress,
    ):
        audit = Audit(
            service,
            page_size=args.page_size,
            max_differences=args.max_differences,
            progress=progress,
            workers=args.workers,
        )
        try:
            report = audit.run(until, checkpoint=args.checkpoint)
        except CheckpointError as err:
            raise UsageError(
                str(err), "give a checkpoint file written by seatledger audit"
            ) from None
    if args.json:
        print(report.model_dump_json())
    else:
        print_audit(report, _console())
    return AUDIT_OK if report.ok else AUDIT_DIFFERENT


# --- time travel ----------------------------------------------------------------------------


def add_floor(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "floor",
        help="the floor of a restaurant-day at an instant or log position",
        description=(
            "Per table: the bookings assigned to it (window, source) and the live holds on it, "
            "as the event log stood at --at INSTANT or --position N."
        ),
    )
    parser.add_argument("restaurant_id", metavar="RESTAURANT")
    parser.add_argument("service_date", metavar="DATE", help="the service date, YYYY-MM-DD")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--at", metavar="INSTANT", help="e.g. 2026-11-24T19:42:00Z")
    where.add_argument("--position", type=int, metavar="N", help="a log position")
    parser.add_argument("--json", action="store_true", help="print one JSON object")

    def floor(args: argparse.Namespace) -> int:
        at = None if args.at is None else parse_instant(args.at, "--at")
        with _service(args) as service:
            answer = service.floor_at(
                args.restaurant_id, parse_date(args.service_date), at=at, position=args.position
            )
        if args.json:
            print(answer.model_dump_json())
        else:
            print_floor(answer, _console())
        return AUDIT_OK

    parser.set_defaults(handler=floor)


def add_timeline(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "timeline",
        help="every event about a booking: who, when, why",
        description=(
            "Every event about one booking, in order: when, command id, actor, source, "
            "idempotency key, tables before and after, holds, drift rejections."
        ),
    )
    parser.add_argument("restaurant_id", metavar="RESTAURANT")
    parser.add_argument("booking_id", metavar="BOOKING")
    parser.add_argument("--json", action="store_true", help="print one JSON object")

    def timeline(args: argparse.Namespace) -> int:
        with _service(args) as service:
            answer = service.booking_timeline(args.restaurant_id, args.booking_id)
        if args.json:
            print(answer.model_dump_json())
        else:
            print_timeline(answer, _console())
        return AUDIT_OK

    parser.set_defaults(handler=timeline)


def add_diff(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "diff",
        help="what changed on a restaurant-day's floor between two instants",
        description="Assignments and live holds added, removed or changed between START and END.",
    )
    parser.add_argument("restaurant_id", metavar="RESTAURANT")
    parser.add_argument("service_date", metavar="DATE", help="the service date, YYYY-MM-DD")
    parser.add_argument("start", metavar="START", help="an instant, e.g. 2026-11-24T19:00:00Z")
    parser.add_argument("end", metavar="END", help="a later instant")
    parser.add_argument("--json", action="store_true", help="print one JSON object")

    def diff(args: argparse.Namespace) -> int:
        start, end = parse_instant(args.start, "START"), parse_instant(args.end, "END")
        with _service(args) as service:
            answer = service.floor_diff(
                args.restaurant_id, parse_date(args.service_date), start, end
            )
        if args.json:
            print(answer.model_dump_json())
        else:
            print_diff(answer, _console())
        return AUDIT_OK

    parser.set_defaults(handler=diff)

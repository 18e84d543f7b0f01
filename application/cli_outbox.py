"""``seatledger outbox``: dead letters as an operation (list, show, redrive, discard).

Works on any store the global options or settings name (SQLite, PostgreSQL schema); the rows
are :mod:`seatledger.projections.deliveries`'. Re-driving and discarding change only ``dead``
rows (``redrive --logged``: only rows the logging publisher marked done), so a running relay
is never raced: it holds no dead row."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TypeAlias

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from seatledger.application.cli_options import (
    EXIT_ERROR,
    EXIT_OK,
    UsageError,
    add_global_options,
    load_settings,
)
from seatledger.application.read_models import open_read_models
from seatledger.projections.db import ReadModelDB
from seatledger.projections.deliveries import (
    STATUSES,
    OutboxEntry,
    Selection,
    discard,
    get_entry,
    list_entries,
    redrive,
    redrive_logged,
)
from seatledger.projections.migrations import migrate

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_outbox(subparsers: Subparsers) -> None:
    """``seatledger outbox list|show|redrive|discard``."""
    parser = subparsers.add_parser(
        "outbox",
        help="list, inspect, re-drive or discard outbox messages (dead letters)",
        description=(
            "Outbox messages by delivery status, one message with its last error, and dead "
            "letters re-driven to pending (after fixing the cause) or discarded for good."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="messages by status (default: dead letters)")
    listing.add_argument(
        "--status",
        action="append",
        choices=(*STATUSES, "all"),
        help="repeatable; default dead; 'all' for every status",
    )
    _add_filters(listing)
    listing.add_argument("--limit", type=int, default=50, metavar="N", help="default 50")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=_with_db(_list))

    show = actions.add_parser("show", help="one message: every column, last error, payload")
    show.add_argument("message_id", metavar="MESSAGE_ID")
    show.add_argument("--json", action="store_true", help="one JSON object")
    show.set_defaults(handler=_with_db(_show))

    for name, what in (
        ("redrive", "dead letters back to pending (attempts reset), sent again by the relay"),
        ("discard", "dead letters given up for good (kept as discarded, never sent)"),
    ):
        action = actions.add_parser(name, help=what, description=f"{what[0].upper()}{what[1:]}.")
        action.add_argument("message_ids", nargs="*", metavar="MESSAGE_ID")
        action.add_argument(
            "--all-dead", action="store_true", help="every dead letter the filters select"
        )
        if name == "redrive":
            action.add_argument(
                "--logged",
                action="store_true",
                help="instead: messages the logging publisher marked done (delivered nowhere)",
            )
        _add_filters(action)
        action.set_defaults(handler=_with_db(_redrive if name == "redrive" else _discard))
    for action_parser in actions.choices.values():  # global options after the action too
        add_global_options(action_parser)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", metavar="TYPE", help="e.g. capacity.assignment.sync")
    parser.add_argument("--restaurant", metavar="ID", help="one restaurant's messages")
    parser.add_argument("--booking", metavar="ID", help="one booking's messages")


def _with_db(
    action: Callable[[argparse.Namespace, ReadModelDB], int],
) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        settings = load_settings(args, "outbox", projection_mode="off")
        with open_read_models(settings) as db:
            if settings.migrate_on_start:
                migrate(db)
            return action(args, db)

    return handler


def _selection(args: argparse.Namespace, statuses: tuple[str, ...] = ()) -> Selection:
    return Selection(
        statuses=statuses,
        type=args.type,
        restaurant_id=args.restaurant,
        booking_id=args.booking,
        message_ids=tuple(getattr(args, "message_ids", ()) or ()),
    )


def _list(args: argparse.Namespace, db: ReadModelDB) -> int:
    wanted = tuple(args.status or ["dead"])
    statuses = () if "all" in wanted else wanted
    entries = list_entries(db, _selection(args, statuses), limit=args.limit)
    if args.json:
        for entry in entries:
            print(json.dumps(entry.to_dict(), sort_keys=True))
        return EXIT_OK
    table = Table(title=f"outbox: {', '.join(wanted)} ({len(entries)} shown)")
    for column in ("message id", "type", "restaurant", "booking", "status", "attempts"):
        table.add_column(column)
    table.add_column("next attempt / published")
    table.add_column("last error")
    for entry in entries:
        table.add_row(
            entry.message_id,
            entry.type,
            escape(entry.restaurant_id),
            escape(entry.booking_id),
            entry.status,
            str(entry.attempts),
            entry.published_at or entry.next_attempt_at or "",
            escape((entry.last_error or "")[:80]),
        )
    Console().print(table)
    return EXIT_OK


def _show(args: argparse.Namespace, db: ReadModelDB) -> int:
    entry = get_entry(db, args.message_id)
    if entry is None:
        print(f"error: no outbox message {args.message_id}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps(entry.to_dict(), sort_keys=True))
        return EXIT_OK
    for name, value in entry.to_dict().items():
        if name != "payload":
            print(f"{name:16s} {'' if value is None else value}")
    print("payload")
    print(json.dumps(entry.payload, indent=2, sort_keys=True))
    return EXIT_OK


def _redrive(args: argparse.Namespace, db: ReadModelDB) -> int:
    if args.logged:
        return _report(args, db, "re-driven", redrive_logged(db, _selection(args)))
    return _change(args, db, "re-driven", redrive)


def _discard(args: argparse.Namespace, db: ReadModelDB) -> int:
    return _change(args, db, "discarded", discard)


def _change(
    args: argparse.Namespace,
    db: ReadModelDB,
    verb: str,
    change: Callable[[ReadModelDB, Selection], list[str]],
) -> int:
    if bool(args.message_ids) == bool(args.all_dead):
        raise UsageError(f"name the messages to {args.action}, or give --all-dead (not both)")
    return _report(args, db, verb, change(db, _selection(args)))


def _report(args: argparse.Namespace, db: ReadModelDB, verb: str, changed: list[str]) -> int:
    """What changed; each named message left alone, and why (exit 1 if any)."""
    print(f"{verb}: {len(changed)}")
    for message_id in changed:
        print(f"  {message_id}")
    left = [m for m in args.message_ids if m not in changed]
    for message_id in left:
        entry: OutboxEntry | None = get_entry(db, message_id)
        why = "not found" if entry is None else f"is {entry.status}, left alone"
        print(f"error: {message_id} {why}", file=sys.stderr)
    return EXIT_ERROR if left else EXIT_OK

"""The command line's shard parts: ``seatledger shards show|move|drop-copy``, ``--shard`` for
``worker``, ``relay`` and ``status``, and running one of them over every shard.

With ``SEATLEDGER_SHARDS`` set, ``worker`` and ``relay`` run one thread per shard in one
process (each exactly the single-store loop on that shard's database), or only the shard
``--shard NAME`` names (one process per shard); ``status`` reports every shard.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeAlias

from rich.console import Console
from rich.table import Table

from seatledger.application.cli_options import EXIT_ERROR, EXIT_OK, UsageError, load_settings
from seatledger.application.health import StoreStatus, print_status
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.shards.config import shard_settings
from seatledger.application.shards.map import MapStore
from seatledger.application.shards.move import RestaurantMove
from seatledger.application.shards.router import ShardedService

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_shard_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shard",
        metavar="NAME",
        help="with SEATLEDGER_SHARDS: only this shard (default: every shard, a thread each)",
    )


def selected(settings: Settings, name: str | None) -> list[str]:
    if name is None:
        return list(settings.shards)
    if name not in settings.shards:
        raise UsageError(
            f"no shard named {name!r}", f"SEATLEDGER_SHARDS names {sorted(settings.shards)}"
        )
    return [name]


def per_shard(settings: Settings, name: str | None, run: Callable[[Settings], int]) -> int:
    """``run`` on each selected shard's settings, in a thread each; the worst exit code."""
    names = selected(settings, name)
    if len(names) == 1:
        return run(shard_settings(settings, names[0]))
    codes: dict[str, int] = {}
    errors: list[BaseException] = []

    def one(shard: str) -> None:
        try:
            codes[shard] = run(shard_settings(settings, shard))
        except BaseException as exc:  # re-raised below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,), name=f"shard-{n}") for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return max(codes.values(), default=EXIT_OK)


def status_per_shard(settings: Settings, args: argparse.Namespace) -> int:
    """``seatledger status`` over the selected shards: a report each, unhealthy if any is."""
    report: dict[str, Any] = {}
    unhealthy = []
    console = Console()
    for name in selected(settings, args.shard):
        with AssignmentService(shard_settings(settings, name)) as service:
            status = StoreStatus.read(service)
        problems = status.problems(max_lag=args.max_lag, max_dead=args.max_dead)
        unhealthy += [f"shard {name}: {problem}" for problem in problems]
        report[name] = status.as_dict(problems)
        if not args.json:
            console.print(f"[bold]shard {name}[/]")
            print_status(status, console)
    if args.json:
        print(json.dumps({"shards": report, "healthy": not unhealthy}, sort_keys=True))
    for problem in unhealthy:
        print(f"unhealthy: {problem}", file=sys.stderr)
    return EXIT_ERROR if unhealthy else EXIT_OK


# --- seatledger shards ------------------------------------------------------------------------


def add_shards(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "shards",
        help="the shard map; move a restaurant between shards; drop a moved restaurant's copy",
        description=(
            "Needs SEATLEDGER_SHARDS. show: the stored map (its version, the default rule, "
            "the placed restaurants, the history). move RESTAURANT --to SHARD: copy, verify "
            "digests, switch (its commands get RESTAURANT_MOVING only during the switch). "
            "finish RESTAURANT: complete a move that failed after its switch. "
            "drop-copy RESTAURANT --shard SHARD: delete the copy a move left behind."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="the stored map")
    show.add_argument("--json", action="store_true")
    move = actions.add_parser("move", help="move a restaurant to another shard")
    move.add_argument("restaurant_id", metavar="RESTAURANT")
    move.add_argument("--to", required=True, metavar="SHARD", dest="target")
    finish = actions.add_parser(
        "finish", help="finish a move that failed after its switch (idempotent)"
    )
    finish.add_argument("restaurant_id", metavar="RESTAURANT")
    drop = actions.add_parser("drop-copy", help="delete the copy a move left on a shard")
    drop.add_argument("restaurant_id", metavar="RESTAURANT")
    drop.add_argument("--shard", required=True, metavar="SHARD")
    parser.set_defaults(handler=shards_command, default_log_level="warning")


def shards_command(args: argparse.Namespace) -> int:
    settings = load_settings(args, "shards")
    if not settings.shards:
        raise UsageError("no shards: SEATLEDGER_SHARDS is empty", "see docs/operations.md")
    if args.action == "show":
        store = MapStore(settings)
        current = store.latest()
        if args.json:
            print(json.dumps({**asdict(current), "history": store.history()}, sort_keys=True))
            return EXIT_OK
        table = Table(title=f"shard map version {current.version}")
        table.add_column("restaurant")
        table.add_column("shard")
        for restaurant, shard in sorted(current.assignments.items()):
            table.add_row(restaurant, shard)
        table.add_row("(others)", f"{current.default} over {', '.join(current.hash_shards)}")
        Console().print(table)
        return EXIT_OK
    with ShardedService(settings) as router:
        if args.action == "move":
            report: Any = RestaurantMove(router).move(args.restaurant_id, args.target)
        elif args.action == "finish":
            released = RestaurantMove(router).finish(args.restaurant_id)
            report = {"restaurant_id": args.restaurant_id, "messages_released": released}
            print(json.dumps(report, sort_keys=True))
            return EXIT_OK
        else:
            report = RestaurantMove(router).drop_copy(args.restaurant_id, args.shard)
    print(json.dumps(asdict(report), sort_keys=True))
    return EXIT_OK

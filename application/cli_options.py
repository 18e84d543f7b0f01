"""The command line's global options (logging, the store) and the settings they make.

Every command takes them before or after its name: ``main`` adds them to the main parser and
to each subparser."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from seatledger.application.demo import DEFAULT_DB_PATH
from seatledger.application.settings import Settings, describe_invalid_settings

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

#: Exit codes: 0 ok; 1 a failure (a seatledger error, the store failing, a failed check, an
#: unexpected error); 2 bad usage (options, an invalid setting); 130 interrupted.
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad usage found after parsing (an invalid setting, a store a command cannot use)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """Options every command takes, before or after its name (the main parser and each
    subparser get them). No defaults: a subparser copies every value it holds over the main
    parser's, so a default there would undo ``seatledger --log-level debug status``.
    Read them with :func:`option`."""
    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,
        choices=LOG_LEVELS,
        help="log level of seatledger's log lines on stderr (default: info for worker, relay, "
        "migrate and rebuild; critical for demo; error otherwise)",
    )
    group.add_argument(
        "--log-format",
        default=argparse.SUPPRESS,
        choices=("text", "json"),
        help="text lines (default), or one JSON object per line with the telemetry fields",
    )
    group.add_argument(
        "--db",
        default=argparse.SUPPRESS,
        type=Path,
        metavar="PATH",
        help="a SQLite event store file (demo: the file to (re)create, default "
        f"./{DEFAULT_DB_PATH}); beats the SEATLEDGER_* store settings",
    )
    group.add_argument(
        "--database-url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="the store as one URL: postgresql://user@host:port/db?sslmode=..., "
        "sqlite:///PATH or memory://; beats the SEATLEDGER_* store settings",
    )


def option(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    """A global option's value, or ``default`` when it was not given."""
    return getattr(args, name, default)


def load_settings(args: argparse.Namespace, role: str, **overrides: Any) -> Settings:
    """The settings (``SEATLEDGER_*``, ``.env``, secrets) with the command line's store and
    this process's role; an invalid setting is a :class:`UsageError`: one line naming it."""
    values: dict[str, Any] = {"process_role": role, **overrides}
    names: dict[str, str] = {}
    if option(args, "db") is not None:
        values |= {"persistence": "sqlite", "sqlite_path": option(args, "db")}
        names |= {"sqlite_path": "--db"}
    if option(args, "database_url") is not None:
        values["database_url"] = option(args, "database_url")
        names["database_url"] = "--database-url"
    try:
        return Settings(**values)
    except (ValidationError, SettingsError) as exc:
        raise UsageError(describe_invalid_settings(exc, names=names)) from None

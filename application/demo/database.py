"""The SQLite file the demo owns: it deletes a previous demo database, and nothing else."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from seatledger.application.demo.config import RESTAURANT_ID
from seatledger.domain.layout import layout_id

_SQLITE_SIBLINGS = ("-wal", "-shm", "-journal", "-lock")  # -lock: the writer gate


class DemoDatabaseError(Exception):
    """The demo will not touch this path (it is not a demo database, or not a file)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def is_demo_database(path: Path) -> bool:
    """A SQLite event store holding the demo restaurant's layout aggregate.

    Read-only: a file that is not a demo database is never written to by this check.
    """
    marker = layout_id(RESTAURANT_ID)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        row = conn.execute(
            "SELECT 1 FROM stored_events WHERE originator_id IN (?, ?) LIMIT 1",
            (marker.hex, str(marker)),
        ).fetchone()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return row is not None


def prepare_database(path: Path, *, overwrite: bool = False) -> None:
    """Delete a previous demo database (and its -wal/-shm/-lock files) so the day starts empty.

    Anything else at ``path`` is refused unless ``overwrite`` is set: the demo must never
    destroy a real event store because of a typo in ``--db``.
    """
    if path.is_dir():
        raise DemoDatabaseError(
            f"{path} is a directory",
            "Pass --db a file path, e.g. --db seatledger-demo.db.",
        )
    if path.exists() and not overwrite and not is_demo_database(path):
        raise DemoDatabaseError(
            f"{path} exists and is not a seatledger demo database",
            "Choose another --db path, or pass --overwrite to delete it.",
        )
    for candidate in (path, *(path.with_name(path.name + s) for s in _SQLITE_SIBLINGS)):
        try:
            candidate.unlink(missing_ok=True)
        except OSError as exc:
            raise DemoDatabaseError(
                f"cannot delete {candidate}: {exc.strerror or exc}",
                "Check the file's permissions, or pass another --db path.",
            ) from exc

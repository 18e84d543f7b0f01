"""A projection that cannot apply an event stops right before it and says so.

A page that fails is applied again one event per transaction, so the projection's position
stops exactly before the event that cannot be decoded or written (:class:`EventNotAppliedError`).
The failure is kept in ``seatledger_projection_failures``, one row per projection, for
``seatledger status`` to show (position, event, type, reason) from any process; it counts
while the event is still ahead of the projection's position, and is deleted when the
projection gets past it. The log says it once per back-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from seatledger.projections.db import ReadModelDB, Tx

TABLE = "seatledger_projection_failures"
#: How much of a failure's message is kept (a reason, not a dump).
REASON_LIMIT = 300


class EventNotAppliedError(Exception):
    """A projection could not decode or write the event after ``position``."""

    def __init__(
        self, projection: str, position: int, notification_id: int, topic: str, cause: Exception
    ) -> None:
        super().__init__(
            f"{projection} cannot apply event {notification_id} ({topic}) after position "
            f"{position}: {reason(cause)}"
        )
        self.projection = projection
        self.position = position
        self.notification_id = notification_id
        self.topic = topic
        self.cause = cause


def reason(exc: BaseException) -> str:
    """The failure in one printable line: its type and the first line of its message, with
    control characters (the NUL that caused it, say) shown escaped."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    printable = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text
    )
    return printable[:REASON_LIMIT]


@dataclass(frozen=True)
class ProjectionFailure:
    projection: str
    #: The last notification the projection applied.
    position: int
    #: The notification it cannot apply, and its event type.
    notification_id: int
    topic: str
    reason: str
    #: Attempts that failed on it so far (by the process that recorded the last one).
    failures: int
    first_failed_at: str
    last_failed_at: str

    @classmethod
    def of(cls, stopped: EventNotAppliedError, failures: int) -> ProjectionFailure:
        now = _now()
        return cls(
            stopped.projection,
            stopped.position,
            stopped.notification_id,
            stopped.topic,
            reason(stopped.cause),
            failures,
            now,
            now,
        )


_COLUMNS = (
    "projection",
    "position",
    "notification_id",
    "topic",
    "reason",
    "failures",
    "first_failed_at",
    "last_failed_at",
)


def record_failure(db: ReadModelDB, failure: ProjectionFailure) -> None:
    """Keep the failure (a repeat of the same event keeps its first time)."""
    with db.transaction() as tx:
        tx.execute(
            f"INSERT INTO {TABLE} ({', '.join(_COLUMNS)})"
            f" VALUES ({', '.join(':' + column for column in _COLUMNS)})"
            " ON CONFLICT (projection) DO UPDATE SET position = excluded.position,"
            " topic = excluded.topic, reason = excluded.reason, failures = excluded.failures,"
            " last_failed_at = excluded.last_failed_at,"
            " first_failed_at = CASE WHEN"
            f" {TABLE}.notification_id = excluded.notification_id"
            f" THEN {TABLE}.first_failed_at ELSE excluded.first_failed_at END,"
            " notification_id = excluded.notification_id",
            {column: getattr(failure, column) for column in _COLUMNS},
        )


def clear_failure(db: ReadModelDB, projection: str) -> None:
    with db.transaction() as tx:
        tx.execute(f"DELETE FROM {TABLE} WHERE projection = :name", {"name": projection})


def load_failures(tx: Tx) -> dict[str, ProjectionFailure]:
    rows = tx.execute(f"SELECT {', '.join(_COLUMNS)} FROM {TABLE}")
    return {
        str(row[0]): ProjectionFailure(
            str(row[0]),
            int(row[1]),
            int(row[2]),
            str(row[3]),
            str(row[4]),
            int(row[5]),
            str(row[6]),
            str(row[7]),
        )
        for row in rows
    }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

"""What ``seatledger status`` reports, and when it calls the store unhealthy.

Read-only: it opens the store without migrating (a store missing anything is the typed
error naming ``seatledger migrate``), reads positions, lag, recorded projection failures and
outbox counts, and writes nothing. Lag counts the notifications a projection handles: a
caught-up worker shows 0, whatever else the log holds.

Unhealthy (the command exits 1), with the default thresholds:

* a projection stopped before an event it cannot apply (always);
* a projection more than ``max_lag`` notifications behind (default 1000);
* more than ``max_dead`` dead outbox messages (only when given).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from seatledger.application.service import AssignmentService
from seatledger.projections.deliveries import STATUSES, delivered_nowhere
from seatledger.projections.failures import ProjectionFailure, load_failures
from seatledger.projections.outbox import outbox_counts

DEFAULT_MAX_LAG = 1000


@dataclass(frozen=True)
class ProjectionStatus:
    position: int
    lag: int
    #: The event it stopped before, while that event is still ahead of its position.
    stopped: ProjectionFailure | None = None


@dataclass(frozen=True)
class StoreStatus:
    events: int
    projections: dict[str, ProjectionStatus]
    #: type -> delivery status -> count
    outbox: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the configured publisher, whether it delivers anywhere, and messages marked done that
    #: the logging publisher delivered nowhere
    publisher: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, service: AssignmentService) -> StoreStatus:
        with service.read_models.read() as tx:
            failures = load_failures(tx)
        projections = {}
        for runner in service.projection_runners:
            position = runner.position()
            failure = failures.get(runner.name)
            if failure is not None and failure.notification_id <= position:
                failure = None  # the projection got past it since
            projections[runner.name] = ProjectionStatus(
                position, runner.source.count_after(position, runner.projection.topics), failure
            )
        kind = service.settings.publisher_kind
        publisher = {
            "configured": kind,
            "delivers": kind != "log",
            "done_but_delivered_nowhere": delivered_nowhere(service.read_models),
        }
        return cls(
            service.event_source.max_id(),
            projections,
            outbox_counts(service.read_models),
            publisher,
        )

    def dead(self) -> int:
        return sum(counts.get("dead", 0) for counts in self.outbox.values())

    def problems(self, *, max_lag: int = DEFAULT_MAX_LAG, max_dead: int | None = None) -> list[str]:
        """Why the store is unhealthy, one line each (none: healthy)."""
        found = []
        for name, status in self.projections.items():
            if status.stopped is not None:
                stopped = status.stopped
                found.append(
                    f"{name} stopped at position {stopped.position}: event "
                    f"{stopped.notification_id} ({stopped.topic}) cannot be applied: "
                    f"{stopped.reason}"
                )
            if status.lag > max_lag:
                found.append(f"{name} lags {status.lag} notifications (more than {max_lag})")
        if max_dead is not None and self.dead() > max_dead:
            found.append(f"{self.dead()} dead outbox messages (more than {max_dead})")
        return found

    def as_dict(self, problems: list[str]) -> dict[str, Any]:
        return {
            "events": self.events,
            "projections": {name: asdict(status) for name, status in self.projections.items()},
            "outbox": self.outbox,
            "publisher": self.publisher,
            "healthy": not problems,
            "problems": problems,
        }


def print_status(status: StoreStatus, console: Console) -> None:
    table = Table(title=f"seatledger status ({status.events} events)")
    table.add_column("projection")
    table.add_column("position", justify="right")
    table.add_column("lag", justify="right")
    table.add_column("stopped before")
    for name, where in status.projections.items():
        stopped = where.stopped
        before = Text()  # plain text: a reason may hold brackets rich would read as markup
        if stopped is not None:
            before.append(f"{stopped.notification_id} {stopped.topic}: {stopped.reason}")
        table.add_row(name, str(where.position), str(where.lag), before)
    console.print(table)
    states = STATUSES
    delivery = Table(title="outbox")
    delivery.add_column("type")
    for state in states:
        delivery.add_column(state, justify="right")
    for message_type, counts in sorted(status.outbox.items()):
        delivery.add_row(message_type, *(str(counts.get(state, 0)) for state in states))
    console.print(delivery)
    if not status.publisher.get("delivers", True):
        console.print(
            "publisher: log [bold red]delivers nowhere[/]: the relay only logs messages "
            "(set SEATLEDGER_PUBLISHER to a broker)"
        )
    elif status.publisher:
        console.print(f"publisher: {status.publisher['configured']}")
    nowhere = status.publisher.get("done_but_delivered_nowhere", 0)
    if nowhere:
        console.print(
            f"[bold red]{nowhere} message(s) marked done were delivered nowhere[/] (the "
            "logging publisher); re-send them with: seatledger outbox redrive --logged"
        )

"""The production processes: the projection worker and the outbox relay.

Both run until ``stop`` is set (the CLI sets it on SIGTERM and SIGINT) and then finish the
page or message batch in hand, so a clean stop never leaves half a page: that is the
projection's transaction anyway, and a hard kill just rolls it back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from eventsourcing.postgres import PostgresApplicationRecorder

from seatledger.application.read_models import open_read_models
from seatledger.application.schema import prepare_store
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import Telemetry
from seatledger.domain.errors import InvalidInputError
from seatledger.projections.db import ReadModelDB
from seatledger.projections.relay import LoggingPublisher, Publisher, Relay
from seatledger.projections.runner import ListenWakeups, PollingWakeups, Wakeups, serve


def run_worker(
    settings: Settings,
    *,
    stop: threading.Event,
    telemetry: Telemetry | None = None,
    on_idle: Callable[[], None] | None = None,
    on_ready: Callable[[AssignmentService, Wakeups], None] | None = None,
) -> None:
    """Keep the members and outbox projections current until ``stop`` is set."""
    if settings.persistence == "memory":
        raise InvalidInputError(
            "a worker process cannot reach an in-memory store",
            details={"errors": [{"field": "persistence", "error": "use sqlite or postgres"}]},
        )
    telemetry = telemetry or Telemetry()
    service = AssignmentService(
        settings.model_copy(update={"projection_mode": "off"}), telemetry=telemetry
    )
    wakeups: Wakeups
    if isinstance(service.recorder, PostgresApplicationRecorder):
        wakeups = ListenWakeups(
            settings.postgres_conninfo(), service.recorder.channel_name, telemetry
        )
    else:
        wakeups = PollingWakeups()
    telemetry.emit(
        "worker.started",
        persistence=settings.persistence,
        projections=[runner.name for runner in service.projection_runners],
        page_size=settings.projection_page_size,
    )
    if on_ready is not None:
        on_ready(service, wakeups)
    try:
        serve(
            service.projection_runners,
            stop=stop,
            wakeups=wakeups,
            telemetry=telemetry,
            poll_interval=settings.projection_poll_seconds,
            on_idle=on_idle,
        )
    finally:
        if isinstance(wakeups, ListenWakeups):
            wakeups.close()
        service.close()
        telemetry.emit("worker.stopped")


def build_relay(
    settings: Settings, db: ReadModelDB, publisher: Publisher, telemetry: Telemetry
) -> Relay:
    return Relay(
        db,
        publisher,
        telemetry,
        batch_size=settings.relay_batch_size,
        max_attempts=settings.relay_max_attempts,
        base_delay=settings.relay_base_delay_seconds,
        max_delay=settings.relay_max_delay_seconds,
        lease_seconds=settings.relay_lease_seconds,
    )


def run_relay(
    settings: Settings,
    *,
    stop: threading.Event,
    publisher: Publisher | None = None,
    telemetry: Telemetry | None = None,
) -> None:
    """Publish pending outbox messages until ``stop`` is set."""
    telemetry = telemetry or Telemetry()
    prepare_store(settings)
    db = open_read_models(settings)
    try:
        relay = build_relay(settings, db, publisher or LoggingPublisher(), telemetry)
        telemetry.emit("relay.started", persistence=settings.persistence)
        relay.serve(stop, idle_wait=settings.relay_idle_seconds)
    finally:
        db.close()
        telemetry.emit("relay.stopped")

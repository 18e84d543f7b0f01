"""The production processes: the projection worker and the outbox relay.

Both run until ``stop`` is set (the CLI sets it on SIGTERM and SIGINT) and then finish the
page or message batch in hand, so a clean stop never leaves half a page: that is the
projection's transaction anyway, and a hard kill just rolls it back.

Neither gives up on the store. At start, a store that is unreachable (or not migrated yet,
while a deployment's ``seatledger migrate`` runs) is waited for: ``worker.waiting`` or
``relay.waiting`` is logged once per attempt with the reason and the pause before the next
(capped back-off, :func:`~seatledger.projections.runner.failure_backoff`). During an outage
the loops log ``projection.failed`` or ``outbox.relay_failed`` the same way, and carry on
where they were once the store answers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from eventsourcing.postgres import PostgresApplicationRecorder

from seatledger.application.errors import STORAGE_ERRORS, InfrastructureCode
from seatledger.application.publishers import publisher_for
from seatledger.application.read_models import open_read_models
from seatledger.application.schema import prepare_store
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import Telemetry
from seatledger.domain.errors import InvalidInputError, SeatLedgerError
from seatledger.projections.db import ReadModelDB
from seatledger.projections.loops import ListenWakeups, PollingWakeups, Wakeups, serve
from seatledger.projections.relay import Publisher, Relay, SimplePublisher
from seatledger.projections.runner import failure_backoff

T = TypeVar("T")


def wait_for_store(
    open_store: Callable[[], T], *, stop: threading.Event, telemetry: Telemetry, process: str
) -> T | None:
    """``open_store()``, retried with capped back-off while the store is unavailable;
    None if ``stop`` was set first. Anything but an unavailable store is raised."""
    failures = 0
    while not stop.is_set():
        try:
            opened = open_store()
        except SeatLedgerError as err:
            if err.code != InfrastructureCode.STORAGE_UNAVAILABLE:
                raise
            reason, error = str(err.details.get("reason", "unreachable")), err.message
        except STORAGE_ERRORS as exc:
            reason, error = "unreachable", f"{type(exc).__name__}: {exc}".strip()
        else:
            if failures:
                telemetry.emit(f"{process}.store_available", after_attempts=failures)
            return opened
        failures += 1
        pause = failure_backoff(failures)
        telemetry.emit(
            f"{process}.waiting",
            level=logging.WARNING,
            message=f"{process} waiting for the store ({reason}); next attempt in {pause:g} s",
            reason=reason,
            error=error,
            attempt=failures,
            retry_in_seconds=pause,
        )
        stop.wait(pause)
    return None


def run_worker(
    settings: Settings,
    *,
    stop: threading.Event,
    telemetry: Telemetry | None = None,
    on_idle: Callable[[], None] | None = None,
    on_ready: Callable[[AssignmentService, Wakeups], None] | None = None,
    on_failure: Callable[[], None] | None = None,
    wait: bool = True,
) -> None:
    """Keep the members and outbox projections current until ``stop`` is set. ``wait``:
    wait for an unavailable store at start (else its error is raised: ``worker --once``)."""
    if settings.persistence == "memory":
        raise InvalidInputError(
            "a worker process cannot reach an in-memory store",
            details={"errors": [{"field": "persistence", "error": "use sqlite or postgres"}]},
        )
    telemetry = telemetry or Telemetry.configured(otel=settings.otel_enabled)

    def open_service() -> AssignmentService:
        return AssignmentService(
            settings.model_copy(update={"projection_mode": "off"}), telemetry=telemetry
        )

    if not wait:
        service = open_service()
    else:
        waited = wait_for_store(open_service, stop=stop, telemetry=telemetry, process="worker")
        if waited is None:
            telemetry.emit("worker.stopped")
            return
        service = waited
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
            on_failure=on_failure,
        )
    finally:
        if isinstance(wakeups, ListenWakeups):
            wakeups.close()
        service.close()
        telemetry.emit("worker.stopped")


def build_relay(
    settings: Settings,
    db: ReadModelDB,
    publisher: Publisher | SimplePublisher,
    telemetry: Telemetry,
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


def open_relay_store(settings: Settings) -> ReadModelDB:
    """The relay's read models, after the start's migration (or check)."""
    prepare_store(settings)
    return open_read_models(settings)


def run_relay(
    settings: Settings,
    *,
    stop: threading.Event,
    publisher: Publisher | SimplePublisher | None = None,
    telemetry: Telemetry | None = None,
) -> None:
    """Publish pending outbox messages until ``stop`` is set (waiting for the store first),
    through ``publisher`` or the one the settings name."""
    telemetry = telemetry or Telemetry.configured(otel=settings.otel_enabled)
    publisher = publisher or publisher_for(settings, telemetry)
    db = wait_for_store(
        lambda: open_relay_store(settings), stop=stop, telemetry=telemetry, process="relay"
    )
    if db is None:
        telemetry.emit("relay.stopped")
        return
    relay: Relay | None = None
    try:
        relay = build_relay(settings, db, publisher, telemetry)
        telemetry.watch_outbox(db)
        announce_relay(relay, settings, telemetry)
        relay.serve(stop, idle_wait=settings.relay_idle_seconds)
    finally:
        try:
            if relay is not None:
                relay.close()
        finally:
            db.close()
            telemetry.emit("relay.stopped")


def announce_relay(relay: Relay, settings: Settings, telemetry: Telemetry) -> None:
    """``relay.started``, and a warning when the publisher delivers nowhere."""
    info = relay.info
    telemetry.emit(
        "relay.started",
        persistence=settings.persistence,
        publisher=info.name,
        target=info.target,
        delivers=info.delivers,
    )
    if not info.delivers:
        telemetry.emit(
            "relay.delivers_nowhere",
            level=logging.WARNING,
            message=(
                f"the {info.name!r} publisher delivers nowhere: messages are marked done "
                "after a log line; name a broker with --publisher or SEATLEDGER_PUBLISHER"
            ),
            publisher=info.name,
        )

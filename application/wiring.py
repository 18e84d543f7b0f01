"""Wiring a service to its storage: the event store, the read side, and what keeps it current.

Owns what must exist before the library opens the event store (the SQLite folder, the
PostgreSQL schema), how a store that cannot be opened is reported, read-model migrations at
start, the projection runners, the in-process background projections (``projection_mode``
``in_process``) and the availability queries. Which database holds the read models is
:mod:`seatledger.application.read_models`.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import psycopg
from eventsourcing.persistence import ApplicationRecorder, Mapper, Recording

from seatledger.application.errors import InfrastructureCode, InfrastructureError
from seatledger.application.read_models import open_read_models, projection_runners
from seatledger.application.settings import Settings
from seatledger.application.telemetry import Telemetry
from seatledger.projections.availability import AvailabilityQueries, EventStoreAnswer
from seatledger.projections.db import ReadModelDB
from seatledger.projections.migrations import migrate
from seatledger.projections.runner import BackgroundProjections, PageRunner
from seatledger.projections.source import EventSource


def prepare_storage(settings: Settings) -> None:
    """Create what the event store needs before the library opens it."""
    if settings.persistence == "sqlite":
        settings.sqlite_path.expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    elif settings.persistence == "postgres":
        with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    psycopg.sql.Identifier(settings.postgres_schema)
                )
            )


def store_description(settings: Settings) -> str:
    """Where the event store is, for error messages (never the password)."""
    if settings.persistence == "sqlite":
        return f"sqlite {settings.sqlite_path}"
    if settings.persistence == "postgres":
        return (
            f"postgres {settings.postgres_host}:{settings.postgres_port}/"
            f"{settings.postgres_dbname} schema {settings.postgres_schema}"
        )
    return "memory"


def store_unavailable(settings: Settings, exc: Exception) -> InfrastructureError:
    """A store that cannot be opened, reported once, at construction, as a typed error."""
    store = store_description(settings)
    return InfrastructureError(
        InfrastructureCode.STORAGE_UNAVAILABLE,
        f"cannot open the event store ({store}): {type(exc).__name__}",
        details={
            "operation": "open",
            "persistence": settings.persistence,
            "store": store,
            "error": str(exc),
        },
    )


class ReadSide:
    """The read models of one service, the runners that project the event log into them,
    and (in-process mode) the background thread that keeps them current."""

    def __init__(
        self,
        settings: Settings,
        telemetry: Telemetry,
        recorder: ApplicationRecorder,
        mapper: Mapper[UUID],
        from_events: EventStoreAnswer,
    ) -> None:
        self.read_models: ReadModelDB = open_read_models(settings)
        if settings.migrate_on_start:
            try:
                migrate(self.read_models)
            except BaseException:
                self.read_models.close()  # the service is not built: nobody else will
                raise
        self.event_source = EventSource(recorder, mapper)
        self.projection_runners: list[PageRunner] = projection_runners(
            self.read_models, self.event_source, telemetry, settings
        )
        self.availability = AvailabilityQueries(
            self.read_models,
            telemetry,
            from_events,
            statement_timeout_ms=settings.availability_statement_timeout_ms,
        )
        self._background: BackgroundProjections | None = None
        if settings.effective_projection_mode == "in_process":
            self._background = BackgroundProjections(
                self.projection_runners, telemetry, poll_interval=settings.projection_poll_seconds
            )
            self._background.start()

    def saved(self, recordings: Sequence[Recording[UUID]]) -> None:
        """After a save: in-process projections catch up at once (read-your-writes)."""
        if self._background is not None:
            self._background.catch_up({r.notification.topic for r in recordings})

    def close(self) -> None:
        background, self._background = self._background, None
        if background is not None:
            background.stop()
        self.read_models.close()

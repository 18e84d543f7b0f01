"""Wiring of the read side: which database holds the read models for these settings, and
the projection runners over the service's event store."""

from __future__ import annotations

from seatledger.application.settings import Settings
from seatledger.projections.db import PostgresReadModels, ReadModelDB, SQLiteReadModels
from seatledger.projections.members import MembersProjection
from seatledger.projections.outbox import OutboxProjection
from seatledger.projections.projection import Projection
from seatledger.projections.runner import PageRunner, Reporter
from seatledger.projections.source import EventSource

#: Every read model, in the order runners catch them up.
PROJECTIONS: tuple[Projection, ...] = (MembersProjection(), OutboxProjection())


def open_read_models(settings: Settings) -> ReadModelDB:
    """SQLite: the same file as the events. Memory: a private in-memory SQLite database.
    PostgreSQL: the event store's schema."""
    if settings.persistence == "postgres":
        return PostgresReadModels(
            settings.postgres_conninfo(),
            settings.postgres_schema,
            min_size=1,
            max_size=settings.read_model_pool_size,
            timeout=settings.postgres_connect_timeout,
        )
    if settings.persistence == "sqlite":
        return SQLiteReadModels(settings.sqlite_path)
    return SQLiteReadModels(":memory:")


def projection_runners(
    db: ReadModelDB, source: EventSource, telemetry: Reporter, settings: Settings
) -> list[PageRunner]:
    return [
        PageRunner(db, projection, source, telemetry, page_size=settings.projection_page_size)
        for projection in PROJECTIONS
    ]

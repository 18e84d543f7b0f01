"""Wiring a service to its storage: the event store, the read side, and what keeps it current.

Owns the order of opening (look at the schema, migrate under the migrators' lock or refuse a
store that is not migrated, then open), how a store that cannot be opened is reported, the
projection runners, the in-process background projections (``projection_mode``
``in_process``) and the availability queries. What a migration creates is
:mod:`seatledger.application.schema`; which database holds the read models is
:mod:`seatledger.application.read_models`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper, Notification, Recording

from seatledger.application.errors import InfrastructureCode, InfrastructureError
from seatledger.application.read_models import open_read_models, projection_runners
from seatledger.application.schema import MigrationReport, Migrator, StoreSchema, not_migrated
from seatledger.application.settings import Settings
from seatledger.application.sqlite_store import WriterGate
from seatledger.application.telemetry import Telemetry, current_traceparent
from seatledger.application.unit_of_work import AggregateStore, Origin, SaveHook, UnitOfWork
from seatledger.domain.aggregate import DomainEvent
from seatledger.projections.availability import AvailabilityQueries, EventStoreAnswer
from seatledger.projections.db import ReadModelDB
from seatledger.projections.loops import BackgroundProjections
from seatledger.projections.runner import PageRunner
from seatledger.projections.source import EventSource

R = TypeVar("R")


@contextmanager
def opening(settings: Settings) -> Iterator[Migrator | None]:
    """Around opening the store: a migrated store is opened as it is (no DDL, no lock); a
    store missing anything is migrated under the migrators' lock if ``migrate_on_start``, and
    refused with a typed error naming ``seatledger migrate`` if not. The memory store's read
    models are private to the process, so it is always migrated."""
    schema = StoreSchema(settings)
    state = schema.inspect()
    if state.ready:
        yield None
        return
    if not settings.migrate_on_start and settings.persistence != "memory":
        raise not_migrated(settings, state)
    with schema.migrating() as migrator:
        yield migrator


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
        *,
        migrator: Migrator | None = None,
    ) -> None:
        self.read_models: ReadModelDB = open_read_models(settings)
        #: Held around each command's unit of work (SQLite: one writer at a time).
        self.writer_gate: AbstractContextManager[Any] = nullcontext()
        if settings.persistence == "sqlite":
            self.writer_gate = WriterGate.for_database(settings.sqlite_path)
        self.migration = MigrationReport()
        if migrator is not None:
            try:
                self.migration = migrator.apply(recorder, self.read_models)
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

    def saved(self, recordings: Sequence[Recording[UUID]]) -> bool:
        """After a save: in-process projections catch up at once (read-your-writes); True
        if they did (what the save wrote is visible in the read models)."""
        if self._background is None:
            return False
        if not recordings:
            return self._background.catch_up(())
        # the saved events, decoded already, with the ids the recorder gave them: the
        # catch-up neither decodes them again nor, with no other writer in between, reads them
        self.event_source.saved(as_stored(recordings))
        return self._background.catch_up(
            {r.notification.topic for r in recordings},
            upto=max(r.notification.id for r in recordings),
        )

    @property
    def members_runner(self) -> PageRunner | None:
        """The runner of the members projection (read-your-writes waits for its position)."""
        return next((r for r in self.projection_runners if r.name == "members"), None)

    def close(self) -> None:
        background, self._background = self._background, None
        if background is not None:
            background.stop()
        self.read_models.close()
        if isinstance(self.writer_gate, WriterGate):
            self.writer_gate.close()


def as_stored(recordings: Sequence[Recording[UUID]]) -> list[tuple[Notification, DomainEvent]]:
    """The saved events as decoding their notifications gives them: the mapper stores a
    traced command's ``traceparent`` beside the event's fields (the command's span, this
    thread's context, as during the save), so it is set here too; anything that is not a
    day-model event (none is saved today) is left to be decoded from the log."""
    traceparent = current_traceparent()
    saved: list[tuple[Notification, DomainEvent]] = []
    for recording in recordings:
        event = recording.domain_event
        if not isinstance(event, DomainEvent):
            continue
        if event.traceparent is None and traceparent is not None:
            event = event.model_copy(update={"traceparent": traceparent})
        saved.append((recording.notification, event))
    return saved


class GatedStore(AggregateStore):
    """The aggregate store with each unit of work (all its attempts) inside the read side's
    writer gate (see :mod:`seatledger.application.sqlite_store`)."""

    def __init__(self, *args: Any, gate: AbstractContextManager[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = gate

    def run(
        self, origin: Origin, act: Callable[[UnitOfWork], R], hook: SaveHook[R] | None = None
    ) -> R:
        with self._gate:
            return super().run(origin, act, hook)

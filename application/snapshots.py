"""Snapshots of service days: a big day loads from its latest snapshot and the events after it.

The library's parts do the storing and the loading: its snapshot store (a table of its own,
``<name>_snapshots`` on PostgreSQL, ``stored_snapshots`` on SQLite, never in the notification
log that projections and audits read) and its repository, which starts a day from the latest
snapshot. What is ours:

* **when:** after a save whose events cross a multiple of ``snapshot_interval`` (the day's
  version), the saved day itself is stored as a snapshot, in the same thread, right after the
  save (the library's ``snapshotting_intervals`` would replay the day again to take it);
* **what:** :class:`~seatledger.domain.service_day.snapshot.DaySnapshot`, stored by the
  mapper as JSON under a topic that names its schema version;
* **stale snapshots:** a snapshot of another schema version (an upcast since, or a change to
  the day's state) decodes as :class:`StaleSnapshot`, and the repository rebuilds the day from
  all its events instead (docs/operations.md, *Snapshots*).

A snapshot that cannot be written (a twin process wrote the same version, the store is away)
costs nothing but the snapshot: the command's events are saved already.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    Repository,
    project_aggregate,
)
from eventsourcing.persistence import Recording

from seatledger.application.telemetry import Telemetry
from seatledger.domain.service_day import ServiceDay
from seatledger.domain.service_day.snapshot import DaySnapshot


@dataclass(frozen=True)
class StaleSnapshot:
    """A stored snapshot of another schema version: never used, the day is replayed."""

    originator_id: UUID
    originator_version: int
    topic: str


@contextmanager
def no_collection() -> Iterator[None]:
    """Loading a big day makes tens of thousands of objects at once; the cyclic collector
    would walk the heap several times meanwhile (it doubled the decode time). Nothing made
    while loading is garbage until the load ends, and a load is bounded (a snapshot and at
    most ``snapshot_interval`` events, or one day's events)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def fold(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's ``project_aggregate`` without its per-event ``isinstance`` check against
    a runtime protocol, which cost more than applying the event (a third of a big day's
    replay): every event we store has ``mutate``."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class SnapshotRepository(Repository[UUID]):
    """The library's repository, but a stale latest snapshot is ignored (the library would
    start from it and skip the events before it), and events are applied by :func:`fold`."""

    def get(self, aggregate_id: UUID, **kwargs: Any) -> Any:
        if kwargs.get("projector_func", project_aggregate) is project_aggregate:
            kwargs["projector_func"] = fold
        return super().get(aggregate_id, **kwargs)

    def _reconstruct_aggregate(
        self, aggregate_id: UUID, version: int | None, projector_func: Any
    ) -> Any:
        start: list[Any] = []
        with no_collection():  # the snapshot's values, the day's indexes and the events after
            if self.snapshot_store is not None:
                found = next(
                    iter(self.snapshot_store.get(aggregate_id, desc=True, limit=1, lte=version)),
                    None,
                )
                if found is not None and not isinstance(found, StaleSnapshot):
                    start = [found]
            events = self.event_store.get(
                aggregate_id, gt=start[0].originator_version if start else None, lte=version
            )
            aggregate = projector_func(None, chain(start, events))
        if aggregate is None:
            raise AggregateNotFoundError(
                f"Aggregate {aggregate_id!r} version {version!r} not found."
            )
        return aggregate


class SnapshottingApplication(Application[UUID]):
    """Takes a snapshot of each saved service day whose save crossed a multiple of
    :attr:`snapshot_interval` (0: never)."""

    snapshot_interval: int = 0
    telemetry: Telemetry

    def construct_repository(self) -> Repository[UUID]:
        library = super().construct_repository()
        repository = SnapshotRepository(
            event_store=self.events,
            snapshot_store=self.snapshots,
            fastforward=library.fastforward,
            fastforward_skipping=library.fastforward_skipping,
            deepcopy_from_cache=library.deepcopy_from_cache,
        )
        repository.cache = library.cache
        return repository

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        recordings = super().save(*objs, **kwargs)
        if self.snapshots is not None and self.snapshot_interval > 0:
            for obj in objs:
                if isinstance(obj, ServiceDay):
                    self._snapshot_if_due(obj, recordings)
        return recordings

    def _snapshot_if_due(self, day: ServiceDay, recordings: list[Recording[UUID]]) -> None:
        versions = [
            r.domain_event.originator_version
            for r in recordings
            if r.domain_event.originator_id == day.id
        ]
        if not versions or day.version != max(versions):
            return
        interval = self.snapshot_interval
        if (min(versions) - 1) // interval == day.version // interval:
            return
        assert self.snapshots is not None
        try:
            self.snapshots.put([cast(Any, DaySnapshot.take(day))])
        except Exception as exc:
            self.telemetry.emit(
                "snapshot.failed",
                level=logging.WARNING,
                day_id=str(day.id),
                version=day.version,
                error=f"{type(exc).__name__}: {exc}",
            )


def load_latest_snapshot(app: Application[UUID], aggregate_id: UUID) -> object | None:
    """The latest stored snapshot of an aggregate as decoded (tests, tools)."""
    if app.snapshots is None:
        return None
    return next(iter(app.snapshots.get(aggregate_id, desc=True, limit=1)), None)


__all__ = [
    "SnapshotRepository",
    "SnapshottingApplication",
    "StaleSnapshot",
    "load_latest_snapshot",
]

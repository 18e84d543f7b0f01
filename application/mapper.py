"""Stores pydantic domain events (eventsourcing 9.5.6 ships no pydantic support).

State is the event's ``model_dump(mode="json")`` as canonical JSON (sorted keys, no spaces),
under the event's stable ``TOPIC``; ``class_version`` is stored when above 1 and older states
are upcast step by step with the event class's ``upcast_vN_vN+1`` methods before validation.

A traced command's events also store its ``traceparent`` (the span of the command saving
them, :func:`~seatledger.application.telemetry.current_traceparent`); an untraced event's
state is exactly the domain's, byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    Cipher,
    Compressor,
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
)

from seatledger.application.snapshots import StaleSnapshot
from seatledger.application.telemetry import current_traceparent
from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.directory import BookingIndex, HoldIndex
from seatledger.domain.layout import FloorLayout
from seatledger.domain.ledger import CommandEntry
from seatledger.domain.service_day import ServiceDay
from seatledger.domain.service_day.snapshot import SNAPSHOT_TOPIC_PREFIX, DaySnapshot
from seatledger.domain.values import canonical_json

AGGREGATES = (FloorLayout, ServiceDay, BookingIndex, HoldIndex, CommandEntry)


def event_registry(
    aggregates: Iterable[type[Any]] = AGGREGATES,
    aliases: Mapping[str, type[DomainEvent]] | None = None,
) -> dict[str, type[DomainEvent]]:
    """Topic -> event class, from the aggregates' ``EVENTS`` lists (plus renamed topics)."""
    registry: dict[str, type[DomainEvent]] = {}
    for aggregate in aggregates:
        for event_class in aggregate.EVENTS:
            topic = event_class.TOPIC
            if not topic:
                raise TypeError(f"{event_class.__qualname__} has no TOPIC")
            if registry.get(topic, event_class) is not event_class:
                raise TypeError(f"topic {topic!r} is registered twice")
            registry[topic] = event_class
    registry.update(aliases or {})
    return registry


class PydanticMapper(Mapper[UUID]):
    def __init__(
        self,
        registry: Mapping[str, type[DomainEvent]] | None = None,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        super().__init__(transcoder=JSONTranscoder(), compressor=compressor, cipher=cipher)
        self.registry = dict(registry or event_registry())

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        if isinstance(domain_event, DaySnapshot):
            return self._stored(domain_event, DaySnapshot.TOPIC, domain_event.pack())
        event = cast(DomainEvent, domain_event)
        event_class = type(event)
        state = event.model_dump(mode="json", exclude={"originator_id", "originator_version"})
        traceparent = event.traceparent or current_traceparent()
        if traceparent is not None:
            state["traceparent"] = traceparent
        if event_class.class_version > 1:
            state["class_version"] = event_class.class_version
        return self._stored(event, event_class.TOPIC, canonical_json(state))

    def _stored(
        self, event: DomainEvent | DaySnapshot, topic: str, text: str | bytes
    ) -> StoredEvent:
        data = text.encode() if isinstance(text, str) else text
        if self.compressor:
            data = self.compressor.compress(data)
        if self.cipher:
            data = self.cipher.encrypt(data)
        return StoredEvent(
            originator_id=event.originator_id,
            originator_version=event.originator_version,
            topic=topic,
            state=data,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        if stored_event.topic.startswith(SNAPSHOT_TOPIC_PREFIX):
            return self._snapshot(stored_event)
        event_class = self.registry.get(stored_event.topic)
        if event_class is None:
            raise MapperDeserialisationError(f"unknown event topic {stored_event.topic!r}")
        data = stored_event.state
        try:
            if self.cipher:
                data = self.cipher.decrypt(data)
            if self.compressor:
                data = self.compressor.decompress(data)
            state = json.loads(data)
            if not isinstance(state, dict):
                raise TypeError(f"state is a JSON {type(state).__name__}, not an object")
            version = int(state.pop("class_version", 1))
            while version < event_class.class_version:
                upcast = getattr(event_class, f"upcast_v{version}_v{version + 1}")
                upcast(state)
                version += 1
            originator_id = stored_event.originator_id
            return event_class.model_validate(
                {
                    **state,
                    "originator_id": originator_id
                    if isinstance(originator_id, UUID)
                    else UUID(originator_id),
                    "originator_version": stored_event.originator_version,
                }
            )
        except Exception as exc:
            # undecodable bytes, a non-object, a missing upcast or a state the event model
            # rejects: all are "this stored event cannot be read", the library's one error
            raise MapperDeserialisationError(
                f"cannot decode stored event {stored_event.topic!r} "
                f"{stored_event.originator_id}@{stored_event.originator_version}: {exc}"
            ) from exc

    def _snapshot(self, stored: StoredEvent) -> DomainEventProtocol[UUID]:
        """A snapshot of the current schema, or a :class:`StaleSnapshot` (not decoded)."""
        originator_id = (
            stored.originator_id
            if isinstance(stored.originator_id, UUID)
            else UUID(stored.originator_id)
        )
        if stored.topic != DaySnapshot.TOPIC:
            stale = StaleSnapshot(originator_id, stored.originator_version, stored.topic)
            return cast(DomainEventProtocol[UUID], stale)
        data = stored.state
        try:
            if self.cipher:
                data = self.cipher.decrypt(data)
            if self.compressor:
                data = self.compressor.decompress(data)
            snapshot = DaySnapshot.unpack(data)
        except Exception as exc:
            raise MapperDeserialisationError(
                f"cannot decode snapshot {stored.originator_id}@{stored.originator_version}: {exc}"
            ) from exc
        return cast(DomainEventProtocol[UUID], snapshot)

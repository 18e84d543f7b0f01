"""A minimal event-sourced aggregate base that keeps the domain pure.

It satisfies the protocols the ``eventsourcing`` library's repository and event store use
(``id``, ``version``, ``collect_events`` on aggregates; ``originator_id``, ``originator_version``
and ``mutate`` on events) without the library's metaclasses, so events are plain pydantic models,
time comes in as data (no clock reads), and nothing here touches I/O.

Rules: a command method validates first, then triggers events; ``apply`` never validates,
because it re-runs on every replay.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, Field

from seatledger.domain.values import Frozen


class EventSequenceError(Exception):
    """An event was applied to the wrong aggregate or out of order (a storage bug, not input)."""


@dataclass(frozen=True)
class Stamp:
    """Who acted, when, and under which command id: every event carries these."""

    now: datetime
    command_id: str
    actor_id: str


class DomainEvent(Frozen):
    """Base of every stored event.

    ``TOPIC`` is the stable name under which the event is stored; renaming or moving the class
    must never change it. ``class_version`` goes up with every schema change, together with an
    ``upcast_vN_vN+1`` static method that rewrites the stored state of the older version.
    """

    TOPIC: ClassVar[str] = ""
    class_version: ClassVar[int] = 1

    originator_id: UUID
    originator_version: int = Field(ge=1)
    timestamp: AwareDatetime
    command_id: str
    actor_id: str
    #: Observability, not domain data: the W3C traceparent of the traced command that caused
    #: the event, stored beside its state by the application's mapper (never when None) and
    #: copied to the event's outbox messages. The domain never sets or reads it; it is left
    #: out of ``model_dump`` so states and comparisons stay as the domain made them.
    traceparent: str | None = Field(
        default=None, exclude=True, pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
    )

    def mutate(self, aggregate: Any) -> Any:
        if aggregate is None or self.originator_id != aggregate.id:
            raise EventSequenceError(f"{self.TOPIC} does not belong to {aggregate!r}")
        if self.originator_version != aggregate.version + 1:
            raise EventSequenceError(
                f"{self.TOPIC} v{self.originator_version} after v{aggregate.version}"
            )
        self.apply(aggregate)
        aggregate.version = self.originator_version
        return aggregate

    def apply(self, aggregate: Any) -> None:
        """Evolve the aggregate's state. Never validate or compute anything not in the event."""
        raise NotImplementedError


class CreationEvent(DomainEvent):
    """The first event of an aggregate: it constructs the aggregate instead of mutating one."""

    def mutate(self, aggregate: Any) -> Any:
        if aggregate is not None or self.originator_version != 1:
            raise EventSequenceError(f"{self.TOPIC} must be the first event of its aggregate")
        created = self.create()
        created.version = 1
        return created

    def create(self) -> Aggregate:
        raise NotImplementedError

    def apply(self, aggregate: Any) -> None:  # pragma: no cover - creation never applies
        raise EventSequenceError("creation events construct, they do not apply")


E = TypeVar("E", bound=DomainEvent)


class Aggregate:
    """Identity, version and pending events; subclasses add state and commands.

    ``EVENTS`` lists every event class of the aggregate: the mapper builds its topic registry
    from these lists, so there is no hidden global registry.
    """

    EVENTS: ClassVar[tuple[type[DomainEvent], ...]] = ()

    def __init__(self, aggregate_id: UUID) -> None:
        self._id = aggregate_id
        self._version = 0
        self._pending: list[DomainEvent] = []

    @property
    def id(self) -> UUID:
        return self._id

    @property
    def version(self) -> int:
        return self._version

    @version.setter
    def version(self, value: int) -> None:
        self._version = value

    @property
    def pending_events(self) -> tuple[DomainEvent, ...]:
        return tuple(self._pending)

    def collect_events(self) -> list[DomainEvent]:
        collected, self._pending = self._pending, []
        return collected

    def _trigger(self, event_type: type[E], stamp: Stamp, **fields: Any) -> E:
        event = event_type(
            originator_id=self.id,
            originator_version=self.version + 1,
            timestamp=stamp.now,
            command_id=stamp.command_id,
            actor_id=stamp.actor_id,
            **fields,
        )
        event.mutate(self)
        self._pending.append(event)
        return event

    @classmethod
    def _start(cls, event: CreationEvent) -> Self:
        created = event.mutate(None)
        assert isinstance(created, cls)
        created._pending.append(event)
        return created

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        """Copy containers, share the frozen values inside them (the repository's cache copies
        an aggregate for every command; a full deep copy of a service day would be slow)."""
        clone = copy.copy(self)
        clone._pending = list(self._pending)
        for name, value in vars(self).items():
            if isinstance(value, dict):
                setattr(clone, name, dict(value))
            elif isinstance(value, list):
                setattr(clone, name, list(value))
            elif isinstance(value, set):
                setattr(clone, name, set(value))
        return clone

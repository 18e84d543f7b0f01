"""A fast path for decoding stored events, with the mapper's exact results.

The application's mapper (``application/mapper.py``) decodes with ``json.loads``, upcasts the
dict and validates it with ``model_validate``: pydantic's Python-object path, about twice as
slow as its JSON path. The page runner and the audit decode every event they read, so here the
stored bytes go straight to pydantic's JSON validator (``validate_json``), through a per-class
*reader*: a subclass of the event class that also accepts the stored ``class_version`` key
(under an alias, into ``stored_version``). The notification's originator id and version are
appended to the object's bytes, last, so they win over any same-named key like the mapper's
``{**state, ...}``. The validated reader becomes the event itself: the extra field is dropped
and the instance's class set to the event class (same layout, same fields, same validators ran).

Whatever the fast path cannot take as it is goes to the mapper, which decides and raises as
always: an event stored in an older version (it needs the class's upcasts), a compressed or
encrypted store, an unknown topic, bytes that are not one JSON object, any validation error.
So the results are the mapper's, by construction and by test (``tests/test_decoding.py``).
Written here, not taken from a library: the library's mapper is the generic machinery this
path avoids.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from pydantic import Field, ValidationError, create_model

from seatledger.domain.aggregate import DomainEvent

#: The alias under which a reader takes the stored ``class_version``.
_VERSION = "stored_version"


@functools.cache
def _reader(event_class: type[DomainEvent]) -> type[DomainEvent]:
    """The event class, plus the stored ``class_version`` (default 1, as the mapper reads it)."""
    reader: type[DomainEvent] = create_model(  # type: ignore[call-overload]
        f"{event_class.__name__}Stored",
        __base__=event_class,
        __module__=__name__,
        **{_VERSION: (int, Field(default=1, alias="class_version"))},
    )
    return reader


class EventDecoder:
    """``decode(stored)`` equals ``mapper.to_domain_event(stored)``, faster where it can."""

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self.mapper = mapper
        registry: Mapping[str, type[DomainEvent]] | None = getattr(mapper, "registry", None)
        plain = mapper.cipher is None and mapper.compressor is None
        self._classes: dict[str, type[DomainEvent]] = dict(registry or {}) if plain else {}
        #: topic -> reader (the readers themselves are made once per class and process)
        self._readers: dict[str, type[DomainEvent]] = {}

    def decode(self, stored: StoredEvent) -> DomainEvent:
        fast = self._fast(stored)
        if fast is not None:
            return fast
        event = self.mapper.to_domain_event(stored)
        assert isinstance(event, DomainEvent)
        return event

    def _fast(self, stored: StoredEvent) -> DomainEvent | None:
        """The event by the JSON path, or None: the mapper decides (and raises)."""
        event_class = self._classes.get(stored.topic)
        state = stored.state
        if event_class is None or not state.startswith(b"{") or not state.endswith(b"}"):
            return None
        reader = self._readers.get(stored.topic)
        if reader is None:
            reader = self._readers[stored.topic] = _reader(event_class)
        originator_id = stored.originator_id
        tail = b',"originator_id":"%s","originator_version":%d}' % (
            # the 32 hex digits: pydantic reads them as the same UUID, and they cost less
            (originator_id.hex if isinstance(originator_id, UUID) else str(originator_id)).encode(),
            stored.originator_version,
        )
        data = state[:-1] + (tail[1:] if state == b"{}" else tail)
        try:
            event = reader.model_validate_json(data)
        except (ValidationError, ValueError, TypeError):
            return None  # the mapper raises its own error for it
        values: dict[str, Any] = event.__dict__
        if values.pop(_VERSION) != event_class.class_version:
            return None  # stored in an older version: the mapper upcasts it
        event.__pydantic_fields_set__.discard(_VERSION)
        object.__setattr__(event, "__class__", event_class)
        return event

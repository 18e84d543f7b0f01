"""A fast path for decoding stored events, with the mapper's exact results.

The application's mapper (``application/mapper.py``) decodes with ``json.loads``, upcasts the
dict and validates it with ``model_validate``: pydantic's Python-object path, about twice as
slow as its JSON path. The page runner and the audit decode every event they read, so here the
stored bytes go straight to pydantic's JSON validator (``validate_json``), through a per-class
*reader*: a subclass of the event class that also accepts the stored ``class_version`` key
(under an alias, into ``stored_version``) and takes the originator's id and version as
optional. The stored bytes are validated as they are (no new bytes, no UUID text to parse);
the notification's originator id and version are set afterwards, over any same-named stored
key, like the mapper's ``{**state, ...}``, and counted as set fields as the mapper's are. The
validated reader becomes the event itself: the extra field is dropped and the instance's class
set to the event class (same layout, same fields, same validators ran on the stored keys).

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
    """The event class, plus the stored ``class_version`` (default 1, as the mapper reads it),
    with the originator's id and version optional: the decoder sets them after validation."""
    reader: type[DomainEvent] = create_model(  # type: ignore[call-overload]
        f"{event_class.__name__}Stored",
        __base__=event_class,
        __module__=__name__,
        # redefined fields keep their place, so the event's __dict__ keeps the class's order
        originator_id=(UUID | None, None),
        originator_version=(int | None, None),
        **{_VERSION: (int, Field(default=1, alias="class_version"))},
    )
    return reader


class EventDecoder:
    """``decode(stored)`` equals ``mapper.to_domain_event(stored)``, faster where it can."""

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self.mapper = mapper
        registry: Mapping[str, type[DomainEvent]] | None = getattr(mapper, "registry", None)
        plain = mapper.cipher is None and mapper.compressor is None
        #: the classes the fast path takes: a validator or post-init hook of the class would
        #: see no originator yet (the events have none; a class that does goes to the mapper)
        self._classes: dict[str, type[DomainEvent]] = (
            {
                topic: event_class
                for topic, event_class in (registry or {}).items()
                if not event_class.__pydantic_decorators__.model_validators
                and not event_class.__pydantic_decorators__.field_validators
                and event_class.__pydantic_post_init__ is None
            }
            if plain
            else {}
        )
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
        originator_id = stored.originator_id
        if not isinstance(originator_id, UUID):
            try:
                originator_id = UUID(originator_id)
            except (ValueError, TypeError, AttributeError):
                return None
        originator_version = stored.originator_version
        if type(originator_version) is not int or originator_version < 1:
            return None  # the event class's own rule (ge=1) and type: the mapper says why
        reader = self._readers.get(stored.topic)
        if reader is None:
            reader = self._readers[stored.topic] = _reader(event_class)
        try:
            event: DomainEvent = reader.__pydantic_validator__.validate_json(state)
        except (ValidationError, ValueError, TypeError):
            return None  # the mapper raises its own error for it
        values: dict[str, Any] = event.__dict__
        if values.pop(_VERSION) != event_class.class_version:
            return None  # stored in an older version: the mapper upcasts it
        # set last, over any same-named stored key, as the mapper's {**state, ...} does
        values["originator_id"] = originator_id
        values["originator_version"] = originator_version
        fields_set = event.__pydantic_fields_set__
        fields_set.discard(_VERSION)
        fields_set.add("originator_id")
        fields_set.add("originator_version")
        object.__setattr__(event, "__class__", event_class)
        return event

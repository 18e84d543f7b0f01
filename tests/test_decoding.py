"""The fast decode path gives the mapper's results: the same events from the same stored bytes
(current versions, every older version through the upcasts, traced events), and the same error
for whatever the mapper cannot decode."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import uuid4

import pytest
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent
from pydantic import model_validator

from seatledger.application.mapper import PydanticMapper, event_registry
from seatledger.application.testing.workload import generate_log
from seatledger.domain.aggregate import DomainEvent
from seatledger.domain.service_day import DayEvent, HoldPlaced
from seatledger.domain.values import canonical_json
from seatledger.projections.decoding import EventDecoder

MAPPER = PydanticMapper()


@pytest.fixture(scope="module")
def log() -> list[StoredEvent]:
    return generate_log(1200, seed=3, restaurants=2)


def assert_same(stored: StoredEvent) -> DomainEvent:
    expected = MAPPER.to_domain_event(stored)
    assert isinstance(expected, DomainEvent)
    decoded = EventDecoder(MAPPER).decode(stored)
    assert type(decoded) is type(expected)
    assert decoded == expected
    assert decoded.model_fields_set == expected.model_fields_set
    assert list(vars(decoded)) == list(vars(expected))  # the same field order
    assert decoded.model_dump(mode="json") == expected.model_dump(mode="json")
    assert decoded.traceparent == expected.traceparent
    assert "stored_version" not in vars(decoded)
    return decoded


def restated(stored: StoredEvent, state: dict[str, object]) -> StoredEvent:
    return StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=canonical_json(state).encode(),
    )


def test_every_event_of_a_log_decodes_as_the_mapper_decodes_it(log: list[StoredEvent]) -> None:
    decoder = EventDecoder(MAPPER)
    topics = set()
    for stored in log:
        expected = MAPPER.to_domain_event(stored)
        assert isinstance(expected, DomainEvent)
        decoded = decoder.decode(stored)
        assert (type(decoded), decoded) == (type(expected), expected)
        assert decoded.model_fields_set == expected.model_fields_set
        assert decoder._fast(stored) is not None  # the JSON path took it, not the mapper
        topics.add(stored.topic)
    assert len(topics) >= 10  # ledger, directory, layout and day events alike


def test_events_stored_in_an_older_version_are_upcast_alike(log: list[StoredEvent]) -> None:
    """Day events as version 1 stored them (HoldPlaced: versions 1 and 2): the mapper's
    upcasts fill the day in (None) and HoldPlaced's later fields."""
    registry = event_registry()
    older = 0
    for stored in log:
        event_class = registry[stored.topic]
        if not issubclass(event_class, DayEvent):
            continue
        state = json.loads(stored.state)
        del state["restaurant_id"], state["service_date"]
        state.pop("class_version", None)
        versions = [2, None] if event_class is HoldPlaced else [None]
        for version in versions:
            if version is not None:
                state["class_version"] = version
            else:
                state.pop("class_version", None)
                state.pop("table_facts", None)
                state.pop("adjacency_required", None)
            decoded = assert_same(restated(stored, state))
            assert isinstance(decoded, DayEvent)
            assert decoded.restaurant_id is None
            older += 1
    assert older > 300


def test_a_traced_event_and_a_state_with_the_version_first_or_last(
    log: list[StoredEvent],
) -> None:
    stored = next(s for s in log if s.topic == HoldPlaced.TOPIC)
    state = json.loads(stored.state)
    state["traceparent"] = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    assert assert_same(restated(stored, state)).traceparent == state["traceparent"]
    version = state.pop("class_version")
    reordered = {"class_version": version, **state}
    data = json.dumps(reordered, separators=(",", ":")).encode()  # not canonical: first
    assert_same(
        StoredEvent(
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=data,
        )
    )


@pytest.mark.parametrize(
    "state",
    [
        b"not json",
        b"[1, 2]",
        b"{}",
        b'{"originator_id": "x"}',
        b'{"stored_version": 3}',
    ],
)
def test_what_the_mapper_cannot_decode_raises_its_error(
    log: list[StoredEvent], state: bytes
) -> None:
    stored = next(s for s in log if s.topic == HoldPlaced.TOPIC)
    broken = StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=state,
    )
    with pytest.raises(MapperDeserialisationError):
        MAPPER.to_domain_event(broken)
    with pytest.raises(MapperDeserialisationError):
        EventDecoder(MAPPER).decode(broken)


def test_an_extra_key_or_an_unknown_topic_is_the_mappers_error(log: list[StoredEvent]) -> None:
    stored = next(s for s in log if s.topic == HoldPlaced.TOPIC)
    state = {**json.loads(stored.state), "surprise": 1}
    with pytest.raises(MapperDeserialisationError):
        EventDecoder(MAPPER).decode(restated(stored, state))
    unknown = StoredEvent(
        originator_id=uuid4(), originator_version=1, topic="nobody.Knows", state=b"{}"
    )
    with pytest.raises(MapperDeserialisationError):
        EventDecoder(MAPPER).decode(unknown)


def test_the_stored_originator_wins_over_the_state(log: list[StoredEvent]) -> None:
    """As in the mapper (``{**state, "originator_id": ...}``): the stored event's own id and
    version, whatever its bytes say."""
    stored = next(s for s in log if s.topic == HoldPlaced.TOPIC)
    state = {**json.loads(stored.state), "originator_id": str(uuid4()), "originator_version": 999}
    decoded = assert_same(restated(stored, state))
    assert (decoded.originator_id, decoded.originator_version) == (
        stored.originator_id,
        stored.originator_version,
    )


def test_a_stored_originator_key_the_event_would_reject_is_overridden_alike(
    log: list[StoredEvent],
) -> None:
    """The mapper drops whatever the state says of the originator before validating."""
    stored = next(s for s in log if s.topic == HoldPlaced.TOPIC)
    state = {**json.loads(stored.state), "originator_id": "x", "originator_version": 0}
    assert_same(restated(stored, state))
    state = {**json.loads(stored.state), "originator_id": None}
    assert_same(restated(stored, state))


def test_an_originator_id_as_text_decodes_alike(log: list[StoredEvent]) -> None:
    stored = next(s for s in log if s.topic == HoldPlaced.TOPIC)
    as_text = StoredEvent(
        originator_id=str(stored.originator_id),
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=stored.state,
    )
    assert EventDecoder(MAPPER)._fast(as_text) is not None
    assert assert_same(as_text).originator_id == stored.originator_id


@pytest.mark.parametrize(("originator_id", "version"), [("not a uuid", 1), (None, 0)])
def test_a_stored_originator_the_event_rejects_is_the_mappers_error(
    log: list[StoredEvent], originator_id: str | None, version: int
) -> None:
    stored = next(s for s in log if s.topic == HoldPlaced.TOPIC)
    broken = StoredEvent(
        originator_id=originator_id or stored.originator_id,
        originator_version=version,
        topic=stored.topic,
        state=stored.state,
    )
    with pytest.raises(MapperDeserialisationError):
        MAPPER.to_domain_event(broken)
    with pytest.raises(MapperDeserialisationError):
        EventDecoder(MAPPER).decode(broken)


class _Noted(DomainEvent):
    """An event whose validator reads the originator: the mapper's result needs it."""

    TOPIC: ClassVar[str] = "tests.decoding.Noted"

    note: str = ""

    @model_validator(mode="before")
    @classmethod
    def _note_version(cls, data: Any) -> Any:
        return {**data, "note": f"v{data.get('originator_version')}"}


def test_an_event_class_with_a_validator_is_the_mappers(log: list[StoredEvent]) -> None:
    mapper = PydanticMapper(registry={**event_registry(), _Noted.TOPIC: _Noted})
    event = _Noted(
        originator_id=uuid4(),
        originator_version=3,
        timestamp=datetime(2026, 3, 1, tzinfo=UTC),
        command_id="c1",
        actor_id="a1",
    )
    stored = mapper.to_stored_event(event)
    decoder = EventDecoder(mapper)
    assert decoder._fast(stored) is None
    decoded = decoder.decode(stored)
    assert decoded == mapper.to_domain_event(stored)
    assert isinstance(decoded, _Noted) and decoded.note == "v3"

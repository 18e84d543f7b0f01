"""The fast canonical forms (JSON, UTC instant, derived ids, outbox and member rows) equal the
plain implementations they replaced, byte for byte: stored rows and published messages depend
on them. The plain ones live here only, as the reference."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.testing.workload import generate_log
from seatledger.domain.service_day import ServiceDayOpened
from seatledger.domain.values import (
    SEATLEDGER_NAMESPACE,
    canonical_json,
    derive_id,
    derive_id_text,
    utc_instant,
)
from seatledger.projections import members, outbox
from seatledger.projections.decoding import EventDecoder
from seatledger.projections.outbox import OUTBOX_COLUMNS, OutboxMessage
from seatledger.projections.projection import CHANGE_TOPICS, DayInfo, table_change

# --- the references: the implementations before the fast ones --------------------------------


def reference_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def reference_instant(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetimes have no canonical instant")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reference_id(*parts: str) -> UUID:
    return uuid5(SEATLEDGER_NAMESPACE, "\x1f".join(parts))


def reference_values(message: OutboxMessage) -> tuple[Any, ...]:
    return tuple(
        message.payload_json if name == "payload" else getattr(message, name)
        for name in OUTBOX_COLUMNS
    )


def outcome(function: Callable[..., Any], *args: Any) -> tuple[object, ...]:
    """What a call gives: its result, or its exception's type and text."""
    try:
        return ("returned", function(*args))
    except Exception as exc:  # the exception is the outcome being compared
        return ("raised", type(exc), str(exc))


# --- strategies -------------------------------------------------------------------------------

#: Characters the two JSON writers could disagree on, mixed into arbitrary text.
TRICKY = list('\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f\x80\u00e9\u2028\u2029"\\/\ud800\udfff\U0001f600')
texts = st.text(st.one_of(st.characters(exclude_categories=()), st.sampled_from(TRICKY)))


class Colour(enum.Enum):
    RED = "red"


class Shade(enum.StrEnum):
    DARK = "dark"


class Level(enum.IntEnum):
    HIGH = 2


class Name(str):
    pass


class Count(int):
    pass


@dataclasses.dataclass(frozen=True)
class Point:
    x: int


#: Values ``json`` refuses or renders by its own rules, which orjson would render otherwise.
odd_leaves = st.one_of(
    st.builds(uuid4),
    st.sampled_from([Colour.RED, Shade.DARK, Level.HIGH, Point(1), date(2024, 5, 1)]),
    st.builds(Name, texts),
    st.builds(Count, st.integers()),
    st.datetimes(timezones=st.just(UTC)),
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.floats(width=32),
    texts,
)
any_key = st.one_of(texts, st.integers(), st.booleans(), st.none(), st.floats())
json_like = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(texts, inner, max_size=5),
    ),
    max_leaves=30,
)
anything = st.recursive(
    st.one_of(leaves, odd_leaves),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(texts, inner, max_size=4),
        st.dictionaries(any_key, inner, max_size=3),
    ),
    max_leaves=20,
)


# --- canonical JSON ---------------------------------------------------------------------------


@hypothesis_settings(max_examples=1000, deadline=None)
@given(json_like)
def test_canonical_json_is_json_dumps_for_json_values(value: Any) -> None:
    assert outcome(canonical_json, value) == outcome(reference_json, value)


@hypothesis_settings(max_examples=500, deadline=None)
@given(anything)
def test_canonical_json_renders_or_refuses_anything_as_json_dumps_does(value: Any) -> None:
    assert outcome(canonical_json, value) == outcome(reference_json, value)


@pytest.mark.parametrize(
    "value",
    [
        {"details": {"ratio": 1e-7, "big": 1e16, "nan": float("nan"), "inf": float("-inf")}},
        {"n": 2**64, "m": -(2**63) - 1, "k": 2**64 - 1},
        {"lone": "\ud800", "pair": "\U0001f600"},
        {"\u2028": ["\x7f", "\x00"], "b": Colour.RED},
        {"id": UUID(int=7)},
        {1: "int key", "a": 2},
        {Name("k"): 1},
        {"at": datetime(2024, 5, 1, tzinfo=UTC)},
    ],
    ids=lambda value: repr(value)[:40],
)
def test_canonical_json_edges(value: Any) -> None:
    assert outcome(canonical_json, value) == outcome(reference_json, value)


@pytest.mark.parametrize("depth", [1, 200, 249, 250, 251, 252, 253, 254, 255, 256, 300, 500])
def test_canonical_json_of_deep_nesting(depth: int) -> None:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    assert canonical_json(value) == reference_json(value)


def test_canonical_json_of_a_cycle_fails_as_json_dumps_does() -> None:
    looped: list[Any] = []
    looped.append({"again": looped})
    assert outcome(canonical_json, looped) == outcome(reference_json, looped)
    assert outcome(canonical_json, looped)[0] == "raised"


# --- UTC instants -----------------------------------------------------------------------------

offsets = st.builds(
    timezone,
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
    ),
)


@hypothesis_settings(max_examples=1000, deadline=None)
@given(st.datetimes(timezones=st.one_of(st.just(UTC), offsets, st.timezones())))
def test_utc_instant_is_strftime(moment: datetime) -> None:
    assert outcome(utc_instant, moment) == outcome(reference_instant, moment)


@given(st.datetimes(timezones=st.none()))
def test_utc_instant_refuses_naive_datetimes(moment: datetime) -> None:
    assert outcome(utc_instant, moment) == outcome(reference_instant, moment)
    assert outcome(utc_instant, moment)[0] == "raised"


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=UTC),  # strftime leaves years before 1000 unpadded here
        datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1000, 1, 1, tzinfo=timezone(timedelta(hours=-1))),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),  # overflows in astimezone
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ],
    ids=str,
)
def test_utc_instant_edges(moment: datetime) -> None:
    assert outcome(utc_instant, moment) == outcome(reference_instant, moment)


# --- derived ids ------------------------------------------------------------------------------


@hypothesis_settings(max_examples=1000, deadline=None)
@given(st.lists(texts, min_size=1, max_size=5))
def test_derived_ids_are_uuid5(parts: list[str]) -> None:
    expected = outcome(reference_id, *parts)
    assert outcome(derive_id, *parts) == expected
    if expected[0] == "returned":
        assert derive_id_text(*parts) == str(expected[1])
    else:  # a lone surrogate cannot be encoded: refused alike
        assert outcome(derive_id_text, *parts) == expected


# --- rows -------------------------------------------------------------------------------------


def test_the_row_order_is_the_fields_order() -> None:
    assert tuple(f.name for f in fields(OutboxMessage)) == OUTBOX_COLUMNS


@given(
    st.builds(
        OutboxMessage,
        payload=st.dictionaries(texts, json_like, max_size=4),
        traceparent=st.one_of(st.none(), texts),
    )
)
def test_outbox_values_are_the_columns_in_order(message: OutboxMessage) -> None:
    assert outcome(message.values) == outcome(reference_values, message)


@pytest.fixture(scope="module")
def projected() -> list[tuple[Any, int, DayInfo]]:
    """The change and drift events of a small generated log, decoded, with their day."""
    log = generate_log(1500, seed=3, restaurants=2)
    topics = frozenset((*CHANGE_TOPICS, *outbox.OutboxProjection.topics))
    with AssignmentService(Settings(persistence="memory")) as service:
        decoder = EventDecoder(service.mapper)
        days: dict[UUID, DayInfo] = {}
        out: list[tuple[Any, int, DayInfo]] = []
        for position, stored in enumerate(log, start=1):
            if stored.topic == ServiceDayOpened.TOPIC:
                opened = decoder.decode(stored)
                assert isinstance(opened, ServiceDayOpened)
                days[opened.originator_id] = DayInfo(opened.restaurant_id, opened.service_date)
            elif stored.topic in topics:
                event = decoder.decode(stored)
                out.append((event, position, days[event.originator_id]))
    assert len(out) > 100
    return out


def test_outbox_and_member_rows_equal_the_reference_forms(
    projected: list[tuple[Any, int, DayInfo]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def rows() -> tuple[list[tuple[Any, ...]], list[Any]]:
        messages = [m.values() for e, n, d in projected for m in outbox.messages_for(e, n, d)]
        member = [
            members._member_values(row)
            for e, n, d in projected
            if (change := table_change(e)) is not None
            for row in members.member_rows(change, d, n)
        ]
        return messages, member

    fast = rows()
    assert fast[0] and fast[1]
    monkeypatch.setattr(outbox, "canonical_json", reference_json)
    monkeypatch.setattr(outbox, "utc_instant", reference_instant)
    monkeypatch.setattr(outbox, "instant", reference_instant)
    monkeypatch.setattr(members, "instant", reference_instant)
    monkeypatch.setattr(outbox, "derive_id_text", lambda *parts: str(reference_id(*parts)))
    monkeypatch.setattr(OutboxMessage, "values", reference_values)
    assert rows() == fast

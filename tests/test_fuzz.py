"""Fuzzing every command and query through the public API (hypothesis), on memory and SQLite.

Each example takes a valid command (or query arguments) of one kind and spoils one field
(hostile text, wrong types, out-of-range numbers, dates and instants, naive instants, unknown
or missing arguments). Whatever happens, only ``SeatLedgerError`` escapes; a rejection of bad
input is ``INVALID_INPUT`` (never a retry-later or internal code); and nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from seatledger.application.commands import COMMAND_METHODS
from seatledger.application.errors import InfrastructureCode
from seatledger.application.inputs import text_problem
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.domain.errors import ErrorCode, SeatLedgerError
from tests.support import DAY, booking, floor, position

#: examples per fuzz test and backend (raise it for a soak: SEATLEDGER_FUZZ_EXAMPLES=5000)
EXAMPLES = int(os.environ.get("SEATLEDGER_FUZZ_EXAMPLES", "400"))

#: codes that would tell a client "retry later" or "our bug" for what is really bad input
NOT_FOR_BAD_INPUT = {
    InfrastructureCode.STORAGE_UNAVAILABLE,
    InfrastructureCode.INTERNAL_ERROR,
    InfrastructureCode.CONCURRENCY_CONFLICT,
    ErrorCode.TABLE_AVAILABILITY_QUERY_FAILED,
}

#: one valid payload per command kind (ids refer to the world built by ``world``)
VALID: dict[str, dict[str, Any]] = {
    "create_restaurant": {"restaurant_id": "r2", "zones": [{"zone_id": "z"}]},
    "define_zone": {"restaurant_id": "r1", "zone": {"zone_id": "z9", "name": "Z"}},
    "define_table": {
        "restaurant_id": "r1",
        "table": {"table_id": "T9", "zone_id": "main", "capacity": 2},
    },
    "link_tables": {"restaurant_id": "r1", "edges": [["M1", "M2"]]},
    "unlink_tables": {"restaurant_id": "r1", "edges": [["M5", "M6"]]},
    "change_policy": {"restaurant_id": "r1", "policy": {"timezone": "Europe/London"}},
    "register_booking": {
        "restaurant_id": "r1",
        "booking_id": "b9",
        "party_size": 2,
        "service_date": DAY.isoformat(),
        "start_time": "18:00",
    },
    "cancel_booking": {"restaurant_id": "r1", "booking_id": "b2"},
    "mark_no_show": {"restaurant_id": "r1", "booking_id": "b2"},
    "complete_booking": {"restaurant_id": "r1", "booking_id": "b2"},
    "place_hold": {"restaurant_id": "r1", "booking_id": "b1", "table_ids": ["M3"]},
    "extend_hold": {"restaurant_id": "r1", "hold_id": "h-unknown", "ttl_seconds": 120},
    "release_hold": {"restaurant_id": "r1", "hold_id": "h-unknown"},
    "expire_holds": {"restaurant_id": "r1", "service_date": DAY.isoformat()},
    "confirm_hold": {"restaurant_id": "r1", "booking_id": "b1", "hold_id": "h-unknown"},
    "assign_tables": {"restaurant_id": "r1", "booking_id": "b1", "table_ids": ["M1"]},
    "unassign_tables": {"restaurant_id": "r1", "booking_id": "b1", "table_ids": ["M1"]},
    "quote": {"restaurant_id": "r1", "booking_id": "b1"},
    "auto_assign": {"restaurant_id": "r1", "booking_id": "b1"},
}

hostile_text = st.one_of(
    st.text(alphabet=st.characters(codec=None, categories=["Cc", "Cs", "Zl", "Zp"]), min_size=1),
    st.text(min_size=0, max_size=3),
    st.text(min_size=201, max_size=260),
    st.builds(lambda a, b: f"{a}\x00{b}", st.text(max_size=5), st.text(max_size=5)),
    st.builds(lambda a, b: f"{a}\x1f{b}", st.text(max_size=5), st.text(max_size=5)),
)
hostile_value = st.one_of(
    hostile_text,
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(hostile_text, max_size=3),
    st.dictionaries(hostile_text, hostile_text, max_size=2),
    st.sampled_from(["9999-12-31", "0001-01-01", "1999-12-31", "2200-01-01", "25:61"]),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat),
)


def _paths(payload: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every field path of a payload, nested ones included."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(payload, list):
        for index, value in enumerate(payload):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


def _spoil(payload: Any, path: tuple[str | int, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(payload, dict):
        return {**payload, head: _spoil(payload.get(head), rest, value)}
    copy = list(payload)
    copy[int(head)] = _spoil(copy[int(head)], rest, value)
    return copy


@st.composite
def spoiled_commands(draw: st.DrawFn) -> tuple[str, dict[str, Any], bool]:
    """(method, payload, whether the spoiled value breaks the text contract on its own)."""
    method = draw(st.sampled_from(sorted(VALID)))
    payload = VALID[method]
    extra_fields = ("command_id", "actor_id", "actor_role", "idempotency_key", "ttl_seconds")
    path = draw(st.sampled_from([*list(_paths(payload)), *((f,) for f in extra_fields)]))
    value = draw(hostile_value)
    bad_text = isinstance(value, str) and text_problem(value) is not None
    return method, _spoil(payload, path, value), bad_text


@pytest.fixture(params=["memory", "sqlite"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AssignmentService]:
    settings_ = (
        Settings(persistence="memory")
        if request.param == "memory"
        else Settings(persistence="sqlite", sqlite_path=tmp_path / "fuzz.db")
    )
    with AssignmentService(settings_) as service:
        service.create_restaurant(floor())
        service.register_booking(booking("b1"))
        service.register_booking(booking("b2", start="20:00"))
        yield service


def test_every_command_kind_is_fuzzed() -> None:
    assert set(VALID) == set(COMMAND_METHODS.values())


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spoiled=spoiled_commands())
def test_spoiled_commands_get_typed_errors_and_write_nothing(
    world: AssignmentService, spoiled: tuple[str, dict[str, Any], bool]
) -> None:
    method, payload, bad_text = spoiled
    before = position(world)
    try:
        getattr(world, method)(payload)
        assert not bad_text, f"{method} accepted hostile text: {payload!r}"
        event("accepted")
    except SeatLedgerError as err:
        event(str(err.code))
        assert err.code == ErrorCode.INVALID_INPUT or not bad_text, (method, err.to_dict())
        assert err.code not in NOT_FOR_BAD_INPUT, (method, payload, err.to_dict())
        assert position(world) == before, (method, payload, err.to_dict())


# --- queries ----------------------------------------------------------------------------------

#: valid keyword arguments per query (the world's ids); ``is_table_available`` delegates
VALID_QUERIES: dict[str, dict[str, Any]] = {
    "get_restaurant": {"restaurant_id": "r1"},
    "get_booking": {"restaurant_id": "r1", "booking_id": "b1"},
    "get_hold": {"restaurant_id": "r1", "hold_id": "h-unknown"},
    "get_day": {"restaurant_id": "r1", "service_date": DAY.isoformat()},
    "members": {"restaurant_id": "r1", "booking_id": "b1"},
    "floor_at": {"restaurant_id": "r1", "service_date": DAY.isoformat(), "position": 10_000},
    "booking_timeline": {"restaurant_id": "r1", "booking_id": "b1"},
    "floor_diff": {
        "restaurant_id": "r1",
        "service_date": DAY.isoformat(),
        "start": "2100-01-01T00:00:00+00:00",
        "end": "2100-01-02T00:00:00+00:00",
    },
    "table_availability": {
        "restaurant_id": "r1",
        "table_id": "M1",
        "window": {"start": "2026-11-24T18:00:00+00:00", "end": "2026-11-24T23:00:00+00:00"},
        "exclude_booking_id": "b2",
    },
    "is_table_available": {
        "restaurant_id": "r1",
        "table_id": "M2",
        "window": {"start": "2026-11-24T18:00:00+00:00", "end": "2026-11-24T23:00:00+00:00"},
    },
    "load_day": {"restaurant_id": "r1", "service_date": DAY.isoformat()},
    "catch_up_projections": {},
}

NOT_QUERIES = {"close", "execute", "construct_env", "construct_mapper"}

instants = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 31, 23, 59),
    timezones=st.one_of(
        st.none(),
        st.just(UTC),
        st.builds(
            timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
        ),
    ),
)
hostile_argument: st.SearchStrategy[Any] = st.one_of(
    hostile_value,
    instants,
    instants.map(datetime.isoformat),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    st.builds(list, st.lists(st.integers(), max_size=2)),
)


@st.composite
def spoiled_queries(draw: st.DrawFn) -> tuple[str, list[Any], dict[str, Any], bool]:
    """(method, positional, keyword arguments, whether a spoiled value breaks the text
    contract on its own): one argument (or nested field) replaced, dropped or added."""
    method = draw(st.sampled_from(sorted(VALID_QUERIES)))
    kwargs = VALID_QUERIES[method]
    value = draw(hostile_argument)
    bad_text = isinstance(value, str) and text_problem(value) is not None
    how = draw(st.sampled_from(["replace", "drop", "unknown", "positional"]))
    paths = list(_paths(kwargs))
    if how == "replace" and paths:
        return method, [], _spoil(kwargs, draw(st.sampled_from(paths)), value), bad_text
    if how == "drop" and kwargs:
        dropped = draw(st.sampled_from(sorted(kwargs)))
        return method, [], {k: v for k, v in kwargs.items() if k != dropped}, False
    if how == "positional":  # one argument too many
        return method, [*kwargs.values(), value], {}, False
    return method, [], {**kwargs, "unknown_argument": value}, False


def test_every_query_is_fuzzed() -> None:
    public = {
        name
        for name, member in vars(AssignmentService).items()
        if callable(member) and not name.startswith("_")
    }
    assert public - set(COMMAND_METHODS.values()) - NOT_QUERIES == set(VALID_QUERIES)


def test_the_valid_queries_succeed(world: AssignmentService) -> None:
    for method, kwargs in VALID_QUERIES.items():
        if method != "get_hold":  # an unknown hold: HOLD_NOT_FOUND is its valid answer
            getattr(world, method)(**kwargs)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spoiled=spoiled_queries())
def test_spoiled_queries_get_typed_errors_and_write_nothing(
    world: AssignmentService, spoiled: tuple[str, list[Any], dict[str, Any], bool]
) -> None:
    method, args, kwargs, bad_text = spoiled
    before = position(world)
    try:
        getattr(world, method)(*args, **kwargs)
        assert not bad_text, f"{method} accepted hostile text: {args!r} {kwargs!r}"
        event("accepted")
    except SeatLedgerError as err:
        event(str(err.code))
        assert err.code == ErrorCode.INVALID_INPUT or not bad_text, (method, err.to_dict())
        assert err.code not in NOT_FOR_BAD_INPUT, (method, args, kwargs, err.to_dict())
    assert position(world) == before

"""The error contract: codes, their specs, the shape of every error, INVALID_INPUT, and a gate
that fails CI when a code of the spec is raised by no test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import time
from pathlib import Path
from typing import Any

import pytest

from seatledger.application import errors as application_errors
from seatledger.application.commands import (
    AssignTables,
    ConfirmHold,
    PlaceHold,
    RegisterBooking,
)
from seatledger.application.errors import (
    ALL_CODES,
    INFRASTRUCTURE_SPECS,
    ConcurrencyConflictError,
    InfrastructureCode,
    InfrastructureError,
    RestaurantMovingError,
    code_spec,
    http_status,
)
from seatledger.application.errors import HTTP_STATUS as APPLICATION_HTTP_STATUS
from seatledger.application.service import AssignmentService
from seatledger.application.testing import Scenario, ScenarioError
from seatledger.domain import errors as errors_module
from seatledger.domain.aggregate import Stamp
from seatledger.domain.directory import BookingIndex
from seatledger.domain.errors import (
    CODE_SPECS,
    ErrorCode,
    HoldError,
    InvalidInputError,
    NotFoundError,
    PolicyDriftError,
    SeatLedgerError,
)
from tests.support import DAY, EVENING, assign, booking, confirm, floor, hold, position

TESTS = Path(__file__).resolve().parent
DOMAIN_MD = TESTS.parent / "docs" / "domain.md"

# --- the code table ---------------------------------------------------------------------------

#: The HTTP status of every code is part of the contract: a change here is a breaking change.
#: (The statuses live at the API boundary, application/errors.py, not in the domain.)
HTTP_STATUS: dict[str, int] = {
    "INVALID_INPUT": 422,
    "RESTAURANT_NOT_FOUND": 404,
    "RESTAURANT_EXISTS": 409,
    "BOOKING_NOT_FOUND": 404,
    "BOOKING_EXISTS": 409,
    "HOLD_NOT_FOUND": 404,
    "TABLE_NOT_FOUND": 404,
    "ZONE_NOT_FOUND": 404,
    "SERVICE_OVERRUN": 422,
    "SERVICE_NOT_FOUND": 422,
    "HOLD_CONFLICT": 409,
    "HOLD_EXPIRED": 409,
    "HOLD_NOT_ACTIVE": 409,
    "HOLD_EMPTY": 422,
    "HOLD_METADATA_INCOMPLETE": 409,
    "HOLD_BOOKING_MISMATCH": 409,
    "HOLD_RESTAURANT_MISMATCH": 403,
    "HOLD_RATE_LIMITED": 429,
    "HOLD_FORBIDDEN": 403,
    "TABLES_REQUIRED": 422,
    "TABLE_INACTIVE": 409,
    "ZONE_MISMATCH": 422,
    "ZONE_LOCKED": 409,
    "TABLE_IMMUTABLE": 422,
    "ADJACENCY_INVALID": 422,
    "CAPACITY_INSUFFICIENT": 422,
    "SLACK_BUDGET_EXCEEDED": 422,
    "ASSIGNMENT_CONFLICT": 409,
    "BOOKING_CLOSED": 409,
    "IDEMPOTENCY_MISMATCH": 409,
    "COMMAND_ID_REUSED": 409,
    "CONCURRENCY_CONFLICT": 503,
    "POLICY_DRIFT": 409,
    "POLICY_REQUOTE_FAILED": 409,
    "TABLE_AVAILABILITY_QUERY_FAILED": 503,
    "STORAGE_UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
    "RESTAURANT_MOVING": 503,
}


def test_every_code_has_a_spec() -> None:
    assert set(CODE_SPECS) == set(ErrorCode)
    assert set(INFRASTRUCTURE_SPECS) == set(InfrastructureCode)
    assert set(ErrorCode).isdisjoint(set(InfrastructureCode))
    for code in ALL_CODES:
        spec = code_spec(code)
        assert spec.meaning.strip(), code
        assert spec.hint.strip(), code
        assert 400 <= http_status(code) < 600, code


def test_codes_are_their_own_names() -> None:
    for code in ALL_CODES:
        assert code.value == code.name
        assert str(code) == code.name


def test_http_statuses_are_stable() -> None:
    assert {str(code): http_status(code) for code in ALL_CODES} == HTTP_STATUS
    assert dict(APPLICATION_HTTP_STATUS) == HTTP_STATUS


FAMILIES = [
    cls
    for module in (errors_module, application_errors)
    for cls in vars(module).values()
    if isinstance(cls, type) and issubclass(cls, SeatLedgerError) and cls is not SeatLedgerError
]


def test_every_code_belongs_to_exactly_one_family() -> None:
    owners = {code: [cls.__name__ for cls in FAMILIES if code in cls.codes] for code in ALL_CODES}
    assert {code: names for code, names in owners.items() if len(names) != 1} == {}


def test_the_domain_knows_no_infrastructure_code_and_no_http_status() -> None:
    source = Path(errors_module.__file__).read_text(encoding="utf-8")
    for code in InfrastructureCode:
        assert code.value not in source
    assert "http_status" not in source


def test_a_family_refuses_a_foreign_code() -> None:
    with pytest.raises(ValueError, match="cannot carry"):
        HoldError(ErrorCode.TABLE_NOT_FOUND, "wrong family")
    with pytest.raises(ValueError, match="cannot carry"):
        NotFoundError(ErrorCode.HOLD_EXPIRED, "wrong family")
    with pytest.raises(ValueError, match="cannot carry"):
        InfrastructureError(InfrastructureCode.CONCURRENCY_CONFLICT, "wrong family")


def _error_of(
    code: ErrorCode | InfrastructureCode, message: str, details: dict[str, Any] | None = None
) -> SeatLedgerError:
    """An error carrying ``code``, built through the family that owns it."""
    if code is InfrastructureCode.CONCURRENCY_CONFLICT:
        return ConcurrencyConflictError(message, details=details)
    if code is InfrastructureCode.RESTAURANT_MOVING:
        return RestaurantMovingError(message, details=details)
    if isinstance(code, InfrastructureCode):
        return InfrastructureError(code, message, details=details)
    return SeatLedgerError(code, message, details=details)


@pytest.mark.parametrize("code", list(ALL_CODES), ids=str)
def test_every_error_has_code_message_details_and_hint(
    code: ErrorCode | InfrastructureCode,
) -> None:
    err = _error_of(code, f"something about {code}", {"x": 1})
    assert err.code is code
    assert err.message == f"something about {code}"
    assert err.details == {"x": 1}
    assert err.hint == code_spec(code).hint  # the default hint
    assert http_status(err) == HTTP_STATUS[code.value]
    assert err.to_dict() == {
        "code": code.value,
        "message": f"something about {code}",
        "details": {"x": 1},
        "hint": code_spec(code).hint,
    }
    assert str(err) == f"[{code}] something about {code}"
    assert _error_of(code, "no details").details == {}


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_a_hint_can_be_given(code: ErrorCode) -> None:
    assert SeatLedgerError(code, "m", hint="do this").hint == "do this"


def test_policy_drift_error_carries_its_kind() -> None:
    err = PolicyDriftError("zone", "moved", details={"tables": {"M1": {}}})
    assert (err.kind, err.code, err.details["kind"]) == ("zone", ErrorCode.POLICY_DRIFT, "zone")
    assert isinstance(err, SeatLedgerError)


# --- errors raised through the service have the whole shape -----------------------------------

Setup = Callable[[Scenario], Any]


def _raise_cases() -> dict[str, tuple[Setup, ErrorCode]]:
    def held(s: Scenario) -> str:
        result = s.service.place_hold(hold("b1", "M1"))
        return result.hold_id

    return {
        "booking": (
            lambda s: s.when(booking("b9", restaurant_id="nope")),
            ErrorCode.RESTAURANT_NOT_FOUND,
        ),
        "table": (lambda s: s.when(assign("b1", "Z1")), ErrorCode.TABLE_NOT_FOUND),
        "capacity": (lambda s: s.when(assign("b4", "M1")), ErrorCode.CAPACITY_INSUFFICIENT),
        "overrun": (lambda s: s.when(booking("b9", start="21:58")), ErrorCode.SERVICE_OVERRUN),
        "conflict": (
            lambda s: (s.given(assign("b1", "M1")), s.when(assign("b2", "M1"))),
            ErrorCode.ASSIGNMENT_CONFLICT,
        ),
        "mismatch": (
            lambda s: s.when(confirm("b2", held(s))),
            ErrorCode.HOLD_BOOKING_MISMATCH,
        ),
        "hold": (lambda s: s.when(confirm("b1", "nope")), ErrorCode.HOLD_NOT_FOUND),
        "input": (lambda s: s.when(lambda: s.service.assign_tables({})), ErrorCode.INVALID_INPUT),
    }


RAISE_CASES = _raise_cases()


@pytest.mark.parametrize("case", sorted(RAISE_CASES))
def test_errors_from_the_service_are_complete_and_serialisable(
    seatledger_scenario: Scenario, case: str
) -> None:
    s = seatledger_scenario.at(EVENING)
    s.given(floor(), booking("b1"), booking("b2"), booking("b4", party_size=4))
    setup, code = RAISE_CASES[case]
    setup(s)
    err = s.then_error(code)
    payload = err.to_dict()
    assert set(payload) == {"code", "message", "details", "hint"}
    assert payload["code"] == code.value
    assert isinstance(payload["message"], str) and payload["message"]
    assert isinstance(payload["details"], dict) and payload["details"]
    assert isinstance(payload["hint"], str) and payload["hint"]
    assert json.loads(json.dumps(payload)) == payload  # plain JSON all the way down
    assert http_status(err) == HTTP_STATUS[code.value]


# --- INVALID_INPUT --------------------------------------------------------------------------

VALID_BOOKING: dict[str, Any] = {
    "restaurant_id": "r1",
    "booking_id": "b9",
    "party_size": 2,
    "service_date": DAY.isoformat(),
    "start_time": "19:00",
}

BAD_INPUT: dict[str, tuple[dict[str, Any], list[str]]] = {
    "wrong type": ({"party_size": "many"}, ["party_size"]),
    "negative party size": ({"party_size": -2}, ["party_size"]),
    "zero party size": ({"party_size": 0}, ["party_size"]),
    "unknown field": ({"colour": "red"}, ["colour"]),
    "a datetime for the service date": ({"service_date": "2026-11-24T19:00:00"}, ["service_date"]),
    "a time with a zone": ({"start_time": "19:00:00+01:00"}, ["start_time"]),
    "a datetime for the start time": ({"start_time": "2026-11-24T19:00:00"}, ["start_time"]),
    "no booking id": ({"booking_id": ""}, ["booking_id"]),
    "several at once": (
        {"party_size": -1, "start_time": "25:00", "x": 1},
        ["party_size", "start_time", "x"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_malformed_registration_is_invalid_input_and_writes_nothing(
    seatledger_scenario: Scenario, case: str
) -> None:
    s = seatledger_scenario
    s.given(floor())
    overrides, fields = BAD_INPUT[case]
    command = {**VALID_BOOKING, **overrides}
    before = position(s.service)
    s.when(lambda: s.service.register_booking(command))
    err = s.then_error(ErrorCode.INVALID_INPUT, command="RegisterBooking")
    assert isinstance(err, InvalidInputError)
    assert sorted(e["field"] for e in err.details["errors"]) == sorted(fields)
    assert all(e["error"] and e["type"] for e in err.details["errors"])
    assert position(s.service) == before
    s.when(lambda: s.service.get_booking("r1", "b9")).then_error(ErrorCode.BOOKING_NOT_FOUND)


def test_the_valid_registration_used_above_is_valid(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor())
    assert s.when(lambda: s.service.register_booking(VALID_BOOKING)).result.booking_id == "b9"


@pytest.mark.parametrize(
    ("method", "command", "fields"),
    [
        (
            "place_hold",
            {"restaurant_id": "r1", "booking_id": "b1", "table_ids": "M1"},
            ["table_ids"],
        ),
        (
            "place_hold",
            {"restaurant_id": "r1", "booking_id": "b1", "table_ids": [""]},
            ["table_ids"],
        ),
        ("assign_tables", {"restaurant_id": "r1", "booking_id": "b1"}, ["table_ids"]),
        (
            "assign_tables",
            {"restaurant_id": "r1", "booking_id": "b1", "table_ids": ["M1"], "idempotency_key": ""},
            ["idempotency_key"],
        ),
        (
            "assign_tables",
            {"restaurant_id": "r1", "booking_id": "b1", "table_ids": [3]},
            ["table_ids.0"],
        ),
        ("confirm_hold", {"restaurant_id": "r1", "booking_id": "b1"}, ["hold_id"]),
        (
            "confirm_hold",
            {"restaurant_id": "r1", "booking_id": "b1", "hold_id": "h", "actor_role": "owner"},
            ["actor_role"],
        ),
        (
            "extend_hold",
            {"restaurant_id": "r1", "hold_id": "h", "ttl_seconds": -5},
            ["ttl_seconds"],
        ),
        ("expire_holds", {"restaurant_id": "r1", "service_date": "yesterday"}, ["service_date"]),
        ("cancel_booking", {"booking_id": "b1"}, ["restaurant_id"]),
    ],
)
def test_malformed_commands_are_invalid_input(
    seatledger_scenario: Scenario, method: str, command: dict[str, Any], fields: list[str]
) -> None:
    s = seatledger_scenario.at(EVENING)
    s.given(floor(), booking("b1"))
    s.when(lambda: getattr(s.service, method)(command))
    err = s.then_error(ErrorCode.INVALID_INPUT)
    assert [e["field"] for e in err.details["errors"]] == fields


def test_input_that_is_not_a_mapping_is_invalid_input(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor())

    def call(junk: Any) -> Callable[[], Any]:
        return lambda: s.service.assign_tables(junk)

    for junk in (None, ["r1", "b1"], "assign M1 please", 42):
        s.when(call(junk))
        s.then_error(ErrorCode.INVALID_INPUT, command="AssignTables")


def test_unvalidated_command_instances_are_revalidated(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor())
    sneaky = RegisterBooking.model_construct(
        restaurant_id="r1",
        booking_id="b9",
        party_size=-3,
        service_date=DAY,
        start_time=time(19),
        command_id="c-1",
        actor_id="host-1",
        actor_role="host",
        service=None,
    )
    s.when(lambda: s.service.register_booking(sneaky))
    err = s.then_error(ErrorCode.INVALID_INPUT)
    assert [e["field"] for e in err.details["errors"]] == ["party_size"]


def test_execute_refuses_what_is_not_a_command(service: AssignmentService) -> None:
    with Scenario(service) as s:
        s.when(lambda: service.execute(PlaceHold.model_fields))  # type: ignore[arg-type]
        err = s.then_error(ErrorCode.INVALID_INPUT)
        assert err.details["errors"][0]["error"] == "unknown command type"


def test_command_models_forbid_unknown_fields() -> None:
    for model in (AssignTables, ConfirmHold, PlaceHold, RegisterBooking):
        assert model.model_config.get("extra") == "forbid"


# --- the gate: every code of the spec is raised by some test ----------------------------------

CODE_SECTIONS = ("5", "6", "7", "9", "17")
CODE_TOKEN = re.compile(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`")


def spec_sections() -> dict[str, str]:
    """The numbered sections of docs/domain.md (the repository's own copy), by number."""
    text = DOMAIN_MD.read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    return {part.split(".", 1)[0].strip(): part for part in parts}


def spec_codes(numbers: tuple[str, ...] = CODE_SECTIONS) -> set[str]:
    """The codes named in the given sections of docs/domain.md (default: §5-§7, §9, §17)."""
    sections = spec_sections()
    missing = [n for n in numbers if n not in sections]
    assert missing == [], f"docs/domain.md has no section(s) {missing}: update CODE_SECTIONS"
    return {code for n in numbers for code in CODE_TOKEN.findall(sections[n])}


def test_the_spec_codes_are_error_codes() -> None:
    codes = spec_codes()
    assert len(codes) >= 30, f"parsed only {sorted(codes)} from {DOMAIN_MD}"
    assert codes - {code.value for code in ALL_CODES} == set()


def test_the_spec_error_index_lists_every_error_code() -> None:
    assert spec_codes(("17",)) == {code.value for code in ALL_CODES}


def test_every_spec_code_is_raised_by_some_test() -> None:
    codes, source = spec_codes(), DOMAIN_MD.relative_to(TESTS.parent)
    sources = {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted(TESTS.glob("*.py"))
        if path.name != Path(__file__).name  # this file lists every code on its own
    }
    untested = sorted(
        code
        for code in codes
        if not any(
            f"ErrorCode.{code}" in text
            or f"InfrastructureCode.{code}" in text
            or f'"{code}"' in text
            or f"'{code}'" in text
            for text in sources.values()
        )
    )
    assert untested == [], f"codes of {source} that no test in tests/ asserts: {untested}"


# --- the scenario helper's own error expectations ---------------------------------------------


def test_then_error_fails_when_the_command_succeeded_or_differs(
    seatledger_scenario: Scenario,
) -> None:
    s = seatledger_scenario
    s.given(floor())
    s.when(booking("b1"))
    with pytest.raises(ScenarioError, match="succeeded"):
        s.then_error(ErrorCode.BOOKING_EXISTS)
    s.when(booking("b1", party_size=3))
    with pytest.raises(ScenarioError, match="expected BOOKING_NOT_FOUND, got BOOKING_EXISTS"):
        s.then_error(ErrorCode.BOOKING_NOT_FOUND)
    with pytest.raises(ScenarioError, match="details"):
        s.then_error(ErrorCode.BOOKING_EXISTS, party_size=3)
    s.then_error(ErrorCode.BOOKING_EXISTS, party_size=2)


def test_then_error_fails_when_a_rejected_call_wrote_anything(
    seatledger_scenario: Scenario,
) -> None:
    s = seatledger_scenario
    s.given(floor())

    def writes_then_fails() -> None:
        s.service.register_booking(booking("b1"))
        raise InvalidInputError("boom")

    s.when(writes_then_fails)  # the day, the booking, its index and its ledger entry
    with pytest.raises(ScenarioError, match="wrote 4 event"):
        s.then_error(ErrorCode.INVALID_INPUT)


def test_then_no_events_sees_directory_events_too(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario
    s.given(floor(), booking("b1"))
    filed = BookingIndex.file(
        restaurant_id="r1",
        booking_id="stray",
        service_date=DAY,
        stamp=Stamp(s.now, "c-stray", "host-1"),
    )
    s.when(lambda: s.service.save(filed))
    assert s.events == []  # directory events are not listed by default ...
    with pytest.raises(ScenarioError, match="expected no events but a ledger entry, got 1"):
        s.then_no_events()  # ... but they are writes

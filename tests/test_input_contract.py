"""The input contract (docs/api.md, *Input contract*): bad text or dates are INVALID_INPUT,
checked before anything is stored, in every field of every command, nested values included."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from seatledger.application.inputs import MAX_TEXT_LENGTH, problems
from seatledger.application.service import AssignmentService
from seatledger.domain.errors import ErrorCode, SeatLedgerError
from seatledger.domain.values import Window, derive_id
from tests.support import DAY, booking, floor, position

BAD_TEXT = {
    "nul": "b\x00x",
    "unit separator": "x\x1fy",
    "newline": "a\nb",
    "delete": "a\x7f",
    "C1 control": "a\x85",
    "lone surrogate": "a\ud800",
    "line separator": "a\u2028",
    "too long": "x" * (MAX_TEXT_LENGTH + 1),
}


def _rejected(call: Any) -> SeatLedgerError:
    with pytest.raises(SeatLedgerError) as caught:
        call()
    assert caught.value.code == ErrorCode.INVALID_INPUT
    return caught.value


@pytest.mark.parametrize("bad", BAD_TEXT.values(), ids=BAD_TEXT.keys())
def test_bad_text_in_any_id_is_rejected_and_nothing_is_written(
    service: AssignmentService, bad: str
) -> None:
    service.create_restaurant(floor())
    service.register_booking(booking("b1"))
    before = position(service)
    registration = booking("b2").model_dump()
    attempts: list[Any] = [
        lambda: service.register_booking({**registration, "booking_id": bad}),
        lambda: service.register_booking({**registration, "restaurant_id": bad}),
        lambda: service.register_booking({**registration, "command_id": bad}),
        lambda: service.register_booking({**registration, "actor_id": bad}),
        lambda: service.assign_tables(
            {"restaurant_id": "r1", "booking_id": "b1", "table_ids": [bad]}
        ),
        lambda: service.assign_tables(
            {"restaurant_id": "r1", "booking_id": "b1", "table_ids": ["M1"], "idempotency_key": bad}
        ),
        lambda: service.define_table(
            {"restaurant_id": "r1", "table": {"table_id": bad, "zone_id": "main", "capacity": 2}}
        ),
        lambda: service.define_zone(
            {"restaurant_id": "r1", "zone": {"zone_id": "z9", "name": bad}}
        ),
    ]
    for attempt in attempts:
        _rejected(attempt)
    assert position(service) == before


def test_the_details_name_the_field_and_never_echo_the_value(service: AssignmentService) -> None:
    service.create_restaurant(floor())
    err = _rejected(
        lambda: service.define_table(
            {
                "restaurant_id": "r1",
                "table": {"table_id": "T\x00", "zone_id": "main", "capacity": 2},
            }
        )
    )
    text = str(err.to_dict())
    assert "table.table_id" in text and "U+0000" in text
    assert "\x00" not in text


@pytest.mark.parametrize("day", [date(1999, 12, 31), date(2200, 1, 1), date(9999, 12, 31)])
def test_dates_outside_the_range_are_rejected(service: AssignmentService, day: date) -> None:
    service.create_restaurant(floor())
    before = position(service)
    registration = {**booking("b1").model_dump(), "service_date": day.isoformat()}
    _rejected(lambda: service.register_booking(registration))
    _rejected(
        lambda: service.expire_holds({"restaurant_id": "r1", "service_date": day.isoformat()})
    )
    assert position(service) == before


def test_the_range_and_ordinary_text_are_accepted(service: AssignmentService) -> None:
    service.create_restaurant(floor())
    view = service.register_booking(
        booking("Ünïcødé 予約 ✓ \u200d", service_date=DAY, actor_id="a" * MAX_TEXT_LENGTH)
    )
    assert view.booking_id == "Ünïcødé 予約 ✓ \u200d"


def test_valid_ids_cannot_make_derived_ids_collide() -> None:
    """Derived ids join their parts with U+001F, which no valid id contains."""
    assert derive_id("booking-index", "x", "y\x1fq") == derive_id("booking-index", "x\x1fy", "q")
    assert list(problems({"restaurant_id": "x", "booking_id": "y\x1fq"}))
    assert list(problems({"restaurant_id": "x\x1fy", "booking_id": "q"}))


# --- queries (issue 9 item 8): validated like commands -------------------------------------

EVENING = {"start": "2026-11-24T18:00:00+00:00", "end": "2026-11-24T23:00:00+00:00"}


def _query_rejected(call: Any, *fields: str) -> SeatLedgerError:
    err = _rejected(call)
    assert err.details["query"], err.to_dict()
    named = " ".join(f"{e['field']}: {e['error']}" for e in err.details["errors"])
    for field in fields:
        assert field in named, (field, err.to_dict())
    return err


def test_bad_query_arguments_are_invalid_input_with_field_paths(
    service: AssignmentService,
) -> None:
    """Each of these used to escape untyped or as a retry-later / internal code."""
    service.create_restaurant(floor())
    service.register_booking(booking("b1"))
    before = position(service)
    loose: Any = service  # the calls below break the signatures on purpose
    naive = {"start": "2026-11-24T18:00:00", "end": "2026-11-24T19:00:00+00:00"}
    _query_rejected(lambda: loose.table_availability("r1", "M1", [1, 2]), "window")
    _query_rejected(lambda: loose.table_availability("r1", "M1", naive), "window.start")
    _query_rejected(lambda: loose.is_table_available("r1", "M1", "tonight"), "window")
    _query_rejected(lambda: loose.members("r1", []), "booking_id")
    _query_rejected(lambda: loose.get_booking("r1", "a\ud800"), "booking_id")
    _query_rejected(lambda: loose.get_restaurant("r\x00"), "restaurant_id", "U+0000")
    _query_rejected(lambda: loose.get_day("r1", date(9999, 12, 31)), "service_date")
    _query_rejected(lambda: loose.load_day(7, DAY), "restaurant_id")
    _query_rejected(lambda: loose.load_day("r1", "tuesday"), "service_date")
    _query_rejected(lambda: loose.get_hold("r1", "x" * (MAX_TEXT_LENGTH + 1)), "hold_id")
    _query_rejected(
        lambda: loose.table_availability("r1", "M1", EVENING, exclude_booking_id=""),
        "exclude_booking_id",
    )
    _query_rejected(lambda: loose.get_booking("r1"), "booking_id")
    _query_rejected(lambda: loose.catch_up_projections("now"))
    _query_rejected(lambda: loose.get_restaurant("r1", extra=1))
    assert position(service) == before


def test_a_window_built_without_validation_is_checked_again(service: AssignmentService) -> None:
    service.create_restaurant(floor())
    unchecked = Window.model_construct(
        start=datetime(2026, 11, 24, 18), end=datetime(2026, 11, 24, 19)
    )
    _query_rejected(lambda: service.table_availability("r1", "M1", unchecked), "window.start")


def test_valid_queries_take_plain_values_and_strings(service: AssignmentService) -> None:
    service.create_restaurant(floor())
    service.register_booking(booking("b1"))
    assert service.get_day("r1", DAY.isoformat()).bookings  # type: ignore[arg-type]
    assert service.table_availability("r1", "M1", EVENING).available  # type: ignore[arg-type]
    assert service.get_booking(restaurant_id="r1", booking_id="b1").booking_id == "b1"
    day = service.load_day("r1", DAY)
    assert day is not None and day.restaurant_id == "r1"

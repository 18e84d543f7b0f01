"""The input contract (docs/api.md, *Input contract*): bad text or dates are INVALID_INPUT,
checked before anything is stored, in every field of every command, nested values included."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from seatledger.application.inputs import MAX_TEXT_LENGTH, problems
from seatledger.application.service import AssignmentService
from seatledger.domain.errors import ErrorCode, SeatLedgerError
from seatledger.domain.values import derive_id
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

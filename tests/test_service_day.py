"""Service days: late-night bookings belong to the day before, and no window crosses the
boundary, so bookings that could share a table in time always share one aggregate."""

from __future__ import annotations

from datetime import date, time

import pytest

from seatledger.application.testing import Scenario
from seatledger.domain.errors import ErrorCode, WindowError
from seatledger.domain.policy import VenuePolicy, block_window
from tests.support import DAY, EVENING, assign, booking, floor

NEXT_DAY = date(2026, 11, 25)


def test_a_start_before_the_day_start_belongs_to_the_previous_service_day() -> None:
    late = block_window(VenuePolicy(), NEXT_DAY, time(0, 30), 2)
    assert late.service_date == DAY
    assert late.fallback
    assert block_window(VenuePolicy(), NEXT_DAY, time(5, 0), 2).service_date == NEXT_DAY


def test_a_window_may_not_cross_the_service_day_boundary() -> None:
    with pytest.raises(WindowError) as caught:
        block_window(VenuePolicy(), NEXT_DAY, time(4, 30), 2)
    assert caught.value.code == ErrorCode.SERVICE_OVERRUN
    assert caught.value.details["service_day_starts_at"] == "05:00"
    # a pre-buffer reaching back over the boundary is refused too
    with pytest.raises(WindowError):
        block_window(VenuePolicy(pre_buffer_minutes=30), NEXT_DAY, time(5, 10), 2)


def test_bookings_either_side_of_midnight_cannot_share_a_table(
    seatledger_scenario: Scenario,
) -> None:
    s = seatledger_scenario.at(EVENING)
    s.given(floor(), booking("late", 2, "23:30"), assign("late", "M1"))
    early = s.when(booking("early", 2, "00:00", service_date=NEXT_DAY)).result
    assert early.service_date == DAY  # filed with the evening it belongs to
    s.when(assign("early", "M1"))
    err = s.then_error(ErrorCode.ASSIGNMENT_CONFLICT)
    assert err.details["conflicts"][0]["booking_id"] == "late"
    assert s.service.get_booking("r1", "early").service_date == DAY

"""The harness itself: the plugin's scenario fixture runs on every backend."""

from __future__ import annotations

from seatledger.application.commands import ConfirmHold
from seatledger.application.testing import Scenario
from seatledger.domain.service_day import HoldConfirmed
from tests.support import booking, floor, hold


def test_hold_then_confirm(seatledger_scenario: Scenario) -> None:
    s = seatledger_scenario.at("2026-11-24T17:00:00+00:00")
    s.given(floor(), booking("b1", party_size=4))
    placed = s.when(hold("b1", "M1", "M2")).result
    s.after(seconds=30).when(
        ConfirmHold(restaurant_id="r1", booking_id="b1", hold_id=placed.hold_id)
    )
    (event,) = s.then_events(HoldConfirmed)
    assert isinstance(event, HoldConfirmed)
    assert event.change.tables == ("M1", "M2")
    assert s.result.status == "confirmed"

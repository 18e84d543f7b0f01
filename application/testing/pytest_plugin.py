"""pytest plugin (registered as ``seatledger``): fixtures for scenario tests.

Override ``seatledger_settings`` in your conftest to run the same tests on SQLite or
PostgreSQL; the default is the in-memory store.

    def test_hold_expires(seatledger_scenario):
        s = seatledger_scenario
        s.given(CreateRestaurant(...), RegisterBooking(...))
        ...
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from application.service import AssignmentService
from application.settings import Settings
from application.testing.scenario import Scenario


@pytest.fixture
def seatledger_settings() -> Settings:
    return Settings(persistence="memory")


@pytest.fixture
def seatledger_service(seatledger_settings: Settings) -> Iterator[AssignmentService]:
    service = AssignmentService(seatledger_settings)
    try:
        yield service
    finally:
        service.close()


@pytest.fixture
def seatledger_scenario(seatledger_service: AssignmentService) -> Iterator[Scenario]:
    with Scenario(seatledger_service) as scenario:
        yield scenario

"""pytest plugin (registered as ``seatledger``): fixtures for scenario tests.

Override ``seatledger_settings`` in your conftest to run the same tests on SQLite or
PostgreSQL; the default is the in-memory store.

    def test_hold_expires(seatledger_scenario):
        s = seatledger_scenario
        s.given(CreateRestaurant(...), RegisterBooking(...))
        ...

pytest loads this module in every run of every project that has seatledger installed, so
it imports nothing of seatledger (nor freezegun) until a test asks for one of its fixtures:
a host application's own packages or missing test extras can never break its test run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from seatledger.application.service import AssignmentService
    from seatledger.application.settings import Settings
    from seatledger.application.testing.scenario import Scenario


@pytest.fixture
def seatledger_settings() -> Settings:
    from seatledger.application.settings import Settings  # noqa: PLC0415 - see module doc

    return Settings(persistence="memory")


@pytest.fixture
def seatledger_service(seatledger_settings: Settings) -> Iterator[AssignmentService]:
    from seatledger.application.service import AssignmentService  # noqa: PLC0415

    service = AssignmentService(seatledger_settings)
    try:
        yield service
    finally:
        service.close()


@pytest.fixture
def seatledger_scenario(seatledger_service: AssignmentService) -> Iterator[Scenario]:
    from seatledger.application.testing.scenario import Scenario  # noqa: PLC0415

    with Scenario(seatledger_service) as scenario:
        yield scenario

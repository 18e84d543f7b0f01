"""Test support for seatledger users: the scenario helper (a whole service, time moving),
the day spec (one service-day aggregate, pure) and a pytest plugin.

Names load on first use (PEP 562): a module that only needs the day spec does not pull in
the service, its event store and its drivers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seatledger.application.lazy import lazy_exports

if TYPE_CHECKING:
    from seatledger.application.testing.day_facts import (
        DayCommand,
        Fact,
        assigned,
        closed,
        expired,
        floor_view,
        held,
        registered,
        released,
        sample_floor,
        step,
        unassigned,
    )
    from seatledger.application.testing.day_spec import DaySpec, DaySpecError
    from seatledger.application.testing.scenario import Scenario, ScenarioError

_FACTS = "seatledger.application.testing.day_facts"
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "DayCommand",
            "Fact",
            "assigned",
            "closed",
            "expired",
            "floor_view",
            "held",
            "registered",
            "released",
            "sample_floor",
            "step",
            "unassigned",
        ),
        _FACTS,
    ),
    "DaySpec": "seatledger.application.testing.day_spec",
    "DaySpecError": "seatledger.application.testing.day_spec",
    "Scenario": "seatledger.application.testing.scenario",
    "ScenarioError": "seatledger.application.testing.scenario",
}

__all__ = [
    "DayCommand",
    "DaySpec",
    "DaySpecError",
    "Fact",
    "Scenario",
    "ScenarioError",
    "assigned",
    "closed",
    "expired",
    "floor_view",
    "held",
    "registered",
    "released",
    "sample_floor",
    "step",
    "unassigned",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)

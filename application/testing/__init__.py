"""Test support for seatledger users: the scenario helper and a pytest plugin."""

from seatledger.application.testing.scenario import Scenario, ScenarioError

__all__ = ["Scenario", "ScenarioError"]

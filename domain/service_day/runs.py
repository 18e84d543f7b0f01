"""Automated runs (auto-assign): the command ids of a run's steps, and what a finished run left.

Every step of a run is a command of its own, under an id derived from the run's command id, so
re-sending the run replays its steps instead of repeating them. Stored events carry these ids:
the scheme must never change.
"""

from __future__ import annotations

from dataclasses import dataclass

from seatledger.domain.service_day.events import PolicyDriftDetected
from seatledger.domain.service_day.state import TableChange


@dataclass(frozen=True)
class RunSteps:
    """The command ids of the steps of the run ``run_id`` (attempts count from 1)."""

    run_id: str

    def quote(self, attempt: int) -> str:
        return f"{self.run_id}:quote:{attempt}"

    def confirm(self, attempt: int) -> str:
        return f"{self.run_id}:confirm:{attempt}"

    def release(self, attempt: int) -> str:
        return f"{self.run_id}:release:{attempt}"


@dataclass(frozen=True)
class FinishedRun:
    """A run that confirmed a hold: its last attempt, the change that confirm made, and the
    run's first drift rejection (None: it succeeded without drift)."""

    attempts: int
    change: TableChange
    first_drift: PolicyDriftDetected | None

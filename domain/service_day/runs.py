"""Automated runs (auto-assign): the command ids of a run's steps, and what a finished run left.

Every step of a run is a command of its own, under an id derived from the run's command id, so
a twin of the run sent at the same time converges on the same steps instead of repeating them.
Stored events carry these ids: the scheme must never change. A run interrupted after a step
gave its hold back (a lost race, a storage failure) continues, when re-sent, in a new *round*:
the same steps under fresh ids (a hold id is derived from the placing command's id, so a new
hold needs a new id). Round 1 has the original scheme, so runs stored before rounds existed
read as they always did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from seatledger.domain.service_day.events import PolicyDriftDetected
from seatledger.domain.service_day.state import TableChange

if TYPE_CHECKING:
    from seatledger.domain.service_day.aggregate import ServiceDay


@dataclass(frozen=True)
class RunSteps:
    """The command ids of the steps of round ``round`` of the run ``run_id`` (attempts count
    from 1). Round 1: ``<run>:quote:1``; round 2: ``<run>:quote:1:r2``. Read from its end an
    id names its run, step, attempt and round, so no two (run, round) pairs share an id."""

    run_id: str
    round: int = 1

    def quote(self, attempt: int) -> str:
        return self._step("quote", attempt)

    def confirm(self, attempt: int) -> str:
        return self._step("confirm", attempt)

    def release(self, attempt: int) -> str:
        return self._step("release", attempt)

    def next_round(self) -> RunSteps:
        return RunSteps(self.run_id, self.round + 1)

    def _step(self, step: str, attempt: int) -> str:
        base = f"{self.run_id}:{step}:{attempt}"
        return base if self.round == 1 else f"{base}:r{self.round}"


@dataclass(frozen=True)
class FinishedRun:
    """A run that confirmed a hold: its last attempt, the change that confirm made, and the
    run's first drift rejection (None: it succeeded without drift)."""

    attempts: int
    change: TableChange
    first_drift: PolicyDriftDetected | None


#: Attempts a run may make (``AutoAssign.max_attempts`` and the setting are at most this).
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class RunHistory:
    """What the day shows of a run's earlier sends: the last round with a step on record
    (0: none), the drift rejections of every round in order, and the confirm that seated
    the booking, if one did."""

    last_round: int
    drifts: tuple[PolicyDriftDetected, ...]
    finished: FinishedRun | None

    @property
    def seen(self) -> bool:
        return self.last_round > 0


def run_history(day: ServiceDay, run_id: str, booking_id: str) -> RunHistory:
    """The run's steps as the day's events show them, round by round (each round's ids are
    looked up directly: a run is never found by parsing other commands' ids)."""
    drifts: list[PolicyDriftDetected] = []
    finished: FinishedRun | None = None
    steps = RunSteps(run_id)
    last_round = 0
    while True:
        seen = False
        for attempt in range(1, MAX_ATTEMPTS + 1):
            confirm = steps.confirm(attempt)
            drift = day.command_drifts.get(confirm)
            if drift is not None:
                drifts.append(drift)
            change = day.command_changes.get(confirm)
            if change is not None and change.booking_id == booking_id:
                first = drifts[0] if drifts else None
                finished = FinishedRun(attempts=attempt, change=change, first_drift=first)
            seen = seen or any(
                step in day.seen_commands
                for step in (steps.quote(attempt), confirm, steps.release(attempt))
            )
        if not seen:
            return RunHistory(last_round=last_round, drifts=tuple(drifts), finished=finished)
        last_round = steps.round
        steps = steps.next_round()

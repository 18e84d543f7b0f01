"""Where an auto-assign run stands, and the answers it gives (:mod:`.auto_assign` runs it).

* :class:`Run` — the command, its budget of confirms, and the results and errors it answers;
* :class:`DriftBook` — the drift the run has met (earlier sends of it included);
* :class:`Progress` — its round of step ids, the hold it confirms next, its attempts so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from seatledger.application.commands import AutoAssign
from seatledger.application.results import (
    AssignmentResult,
    AutoAssignResult,
    QuoteResult,
    SkippedCandidate,
)
from seatledger.domain.errors import DriftKind, PolicyDriftError, PolicyRequoteFailedError
from seatledger.domain.planner import NoCandidateReason
from seatledger.domain.service_day import (
    AutomationContext,
    DriftRecovery,
    RunHistory,
    RunSteps,
    ServiceDay,
)


@dataclass
class DriftBook:
    """The drift a run has met: its first rejection, its last, and the hold that went stale
    last."""

    first: PolicyDriftError | None = None
    last: PolicyDriftError | None = None
    stale_hold_id: str = ""

    @classmethod
    def of(cls, day: ServiceDay, history: RunHistory) -> DriftBook:
        """The drift earlier sends of the run recorded (a re-sent run never records its
        first drift twice)."""
        book = cls()
        for recorded in history.drifts:
            drift = day.drift_of_command(recorded.command_id)
            assert drift is not None
            book.note(drift, recorded.hold_id)
        return book

    def context(self, attempt: int) -> AutomationContext:
        """What the confirm of ``attempt`` records about the run."""
        return AutomationContext(
            attempt=attempt,
            first_drift_in_run=self.first is None,
            recovered_drift=None
            if self.first is None
            else DriftRecovery(
                kind=self.first.kind, attempt=attempt, stale_hold_id=self.stale_hold_id
            ),
        )

    def note(self, drift: PolicyDriftError, hold_id: str) -> None:
        self.first = self.first or drift
        self.last = drift
        self.stale_hold_id = hold_id


@dataclass
class Progress:
    """Where a run stands: its round's step ids, the hold it will confirm next, how many
    confirms it has made, and what its last quote said."""

    steps: RunSteps
    hold_id: str | None
    relaxations: list[str]
    attempts: int
    skipped: list[SkippedCandidate] = field(default_factory=list)


@dataclass(frozen=True)
class Run:
    """One auto-assign: the command, how many confirms it may try, and its answers."""

    command: AutoAssign
    max_attempts: int

    def assigned(
        self, assignment: AssignmentResult, progress: Progress, drifts: DriftBook
    ) -> AutoAssignResult:
        return self.outcome(
            "assigned",
            assignment=assignment,
            attempts=progress.attempts,
            drift_kind=None if drifts.first is None else drifts.first.kind,
            relaxations=progress.relaxations,
            skipped=progress.skipped,
        )

    def no_candidate(self, quote: QuoteResult, progress: Progress) -> AutoAssignResult:
        return self.outcome(
            "no_candidate",
            attempts=progress.attempts,
            reason=quote.reason,
            relaxations=quote.relaxations,
            skipped=quote.skipped,
        )

    def requote_failed(
        self, quote: QuoteResult, progress: Progress, drift: PolicyDriftError
    ) -> PolicyRequoteFailedError:
        booking_id = self.command.booking_id
        return PolicyRequoteFailedError(
            f"after {drift.kind} drift no candidate is left "
            f"for booking {booking_id}: {quote.reason}",
            details={
                "booking_id": booking_id,
                "reason": quote.reason,
                "kind": drift.kind,
                "attempts": progress.attempts,
            },
        )

    def outcome(
        self,
        outcome: Literal["assigned", "already_assigned", "no_candidate"],
        *,
        assignment: AssignmentResult | None = None,
        attempts: int = 0,
        drift_kind: DriftKind | None = None,
        reason: NoCandidateReason | None = None,
        relaxations: list[str] | None = None,
        skipped: list[SkippedCandidate] | None = None,
    ) -> AutoAssignResult:
        return AutoAssignResult(
            restaurant_id=self.command.restaurant_id,
            booking_id=self.command.booking_id,
            outcome=outcome,
            assignment=assignment,
            attempts=attempts,
            drift_recovered=drift_kind is not None,
            drift_kind=drift_kind,
            reason=reason,
            relaxations=list(relaxations or []),
            skipped=list(skipped or []),
        )

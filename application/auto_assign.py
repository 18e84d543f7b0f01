"""Auto-assign (docs/domain.md §6, §8, §9): quote, then confirm, recovering from drift by
re-quoting, as a process of typed steps.

Every step (quote, confirm, release) is a command of its own under an id derived from the
run's command id (:class:`~seatledger.domain.service_day.RunSteps`), so re-sending the same
auto-assign replays its steps instead of repeating them, and a run that already succeeded is
found by :meth:`~seatledger.domain.service_day.ServiceDay.finished_run`. After a failure no hold
of the run is left, and the booking's earlier assignments are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from seatledger.application.clock import Clock
from seatledger.application.commands import AutoAssign, ConfirmHold
from seatledger.application.handlers import CommandHandlers
from seatledger.application.read_your_writes import ReadYourWrites
from seatledger.application.results import (
    AssignmentResult,
    AutoAssignResult,
    QuoteResult,
    SkippedCandidate,
)
from seatledger.application.settings import Settings
from seatledger.application.telemetry import Telemetry
from seatledger.application.unit_of_work import AggregateStore, Step
from seatledger.domain.errors import (
    DriftKind,
    PolicyDriftError,
    PolicyRequoteFailedError,
    SeatLedgerError,
)
from seatledger.domain.planner import NoCandidateReason
from seatledger.domain.service_day import (
    AutomationContext,
    DriftRecovery,
    Outcome,
    RunSteps,
    ServiceDay,
)

#: The confirm command end to end (the service's): an assignment, or a typed error.
Confirm = Callable[[ConfirmHold, AutomationContext], AssignmentResult]


@dataclass(frozen=True)
class Run:
    """One auto-assign: the command, its steps' ids, and how many confirms it may try."""

    command: AutoAssign
    steps: RunSteps
    max_attempts: int


@dataclass
class DriftBook:
    """The drift a run has met: its first rejection and the hold that went stale last."""

    first: PolicyDriftError | None = None
    stale_hold_id: str = ""

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
        self.stale_hold_id = hold_id


@dataclass
class Progress:
    """Where a run stands: the hold it will confirm next, and what its last quote said."""

    hold_id: str | None
    relaxations: list[str]
    skipped: list[SkippedCandidate] = field(default_factory=list)
    attempts: int = 0


class AutoAssignProcess:
    """Runs auto-assign commands, step by step."""

    def __init__(
        self,
        store: AggregateStore,
        handlers: CommandHandlers,
        results: ReadYourWrites,
        confirm: Confirm,
        *,
        telemetry: Telemetry,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._store = store
        self._handlers = handlers
        self._results = results
        self._confirm = confirm
        self._telemetry = telemetry
        self._settings = settings
        self._clock = clock

    def run(self, command: AutoAssign) -> AutoAssignResult:
        """A finished run's original result; the booking's tables if it has some; else
        quote (unless a live quote's hold is waiting), confirm, and on drift try again."""
        run = self._plan(command)
        day = self._store.reads().booking_day(command.restaurant_id, command.booking_id)
        booking = day.booking(command.booking_id)
        finished = self._finished(run, day)
        if finished is not None:
            return finished
        if booking.tables:
            return self._outcome(
                run,
                "already_assigned",
                assignment=self._results.result(command.restaurant_id, Outcome(booking, None)),
            )
        existing = day.live_auto_hold(command.booking_id, self._clock.now())
        progress = Progress(
            hold_id=None if existing is None else existing.hold_id,
            relaxations=[] if existing is None else list(existing.relaxations),
        )
        drifts = DriftBook()
        while True:
            if progress.hold_id is None:
                quote = self.quote_step(run, progress.attempts + 1)
                progress.skipped, progress.relaxations = list(quote.skipped), quote.relaxations
                if quote.hold is None:
                    return self._no_candidate(run, quote, progress, drifts)
                progress.hold_id = quote.hold.hold_id
            progress.attempts += 1
            confirmed = self.confirm_step(run, progress.hold_id, progress.attempts, drifts)
            if isinstance(confirmed, AssignmentResult):
                return self._assigned(run, confirmed, progress, drifts)
            # the recorded rejection has released the stale hold
            drifts.note(confirmed, progress.hold_id)
            progress.hold_id = None
            if progress.attempts >= run.max_attempts:
                self._drift_failed(run, confirmed, progress.attempts, None)
                raise confirmed

    # --- the steps ---

    def quote_step(self, run: Run, attempt: int) -> QuoteResult:
        """Plan the booking's tables and hold the best candidate."""
        command = run.command
        return self._store.run(
            Step(run.steps.quote(attempt), command.actor_id),
            lambda work: self._handlers.quote(
                work, command.restaurant_id, command.booking_id, command.ttl_seconds
            ),
        )

    def confirm_step(
        self, run: Run, hold_id: str, attempt: int, drifts: DriftBook
    ) -> AssignmentResult | PolicyDriftError:
        """Confirm the run's hold. Drift comes back as a value (its rejection is recorded and
        released the hold); any other failure releases the hold and is raised."""
        command = run.command
        try:
            return self._confirm(
                ConfirmHold(
                    restaurant_id=command.restaurant_id,
                    booking_id=command.booking_id,
                    hold_id=hold_id,
                    command_id=run.steps.confirm(attempt),
                    actor_id=command.actor_id,
                    actor_role=command.actor_role,
                ),
                drifts.context(attempt),
            )
        except PolicyDriftError as drift:
            return drift
        except SeatLedgerError:
            self.release_step(run, hold_id, attempt)
            raise

    def release_step(self, run: Run, hold_id: str, attempt: int) -> None:
        """Release a hold of the run (a failed confirm never leaves one behind)."""
        command = run.command
        self._store.run(
            Step(run.steps.release(attempt), command.actor_id),
            lambda work: self._handlers.release_hold(
                work, command.restaurant_id, hold_id, "system"
            ),
        )

    # --- the run's ends ---

    def _plan(self, command: AutoAssign) -> Run:
        retry = (
            self._settings.auto_assign_retry_on_drift
            if command.retry_on_drift is None
            else command.retry_on_drift
        )
        max_attempts = (
            (command.max_attempts or self._settings.auto_assign_max_attempts) if retry else 1
        )
        return Run(command=command, steps=RunSteps(command.command_id), max_attempts=max_attempts)

    def _finished(self, run: Run, day: ServiceDay) -> AutoAssignResult | None:
        """A re-sent auto-assign whose run succeeded: its original result, nothing written."""
        finished = day.finished_run(run.steps)
        if finished is None:
            return None
        command = run.command
        hold = day.holds.get(finished.change.hold_id or "")
        outcome = Outcome(day.booking(command.booking_id), finished.change, replayed=True)
        drift = finished.first_drift
        return self._outcome(
            run,
            "assigned",
            assignment=self._results.result(command.restaurant_id, outcome),
            attempts=finished.attempts,
            drift_kind=None if drift is None else drift.kind,
            relaxations=[] if hold is None else list(hold.relaxations),
        )

    def _no_candidate(
        self, run: Run, quote: QuoteResult, progress: Progress, drifts: DriftBook
    ) -> AutoAssignResult:
        """The quote found nothing: an outcome, or (after drift) ``POLICY_REQUOTE_FAILED``."""
        command = run.command
        if drifts.first is not None:
            self._drift_failed(run, drifts.first, progress.attempts, quote.reason)
            raise PolicyRequoteFailedError(
                f"after {drifts.first.kind} drift no candidate is left "
                f"for booking {command.booking_id}: {quote.reason}",
                details={
                    "booking_id": command.booking_id,
                    "reason": quote.reason,
                    "kind": drifts.first.kind,
                    "attempts": progress.attempts,
                },
            )
        return self._outcome(
            run,
            "no_candidate",
            attempts=progress.attempts,
            reason=quote.reason,
            relaxations=progress.relaxations,
            skipped=quote.skipped,
        )

    def _assigned(
        self, run: Run, assignment: AssignmentResult, progress: Progress, drifts: DriftBook
    ) -> AutoAssignResult:
        command = run.command
        if drifts.first is not None:
            self._telemetry.emit(
                "policy_drift.recovered",
                level=logging.WARNING,
                kind=drifts.first.kind,
                restaurant_id=command.restaurant_id,
                booking_id=command.booking_id,
                attempts=progress.attempts,
                hold_id=progress.hold_id,
            )
        return self._outcome(
            run,
            "assigned",
            assignment=assignment,
            attempts=progress.attempts,
            drift_kind=None if drifts.first is None else drifts.first.kind,
            relaxations=progress.relaxations,
            skipped=progress.skipped,
        )

    def _drift_failed(
        self, run: Run, drift: PolicyDriftError, attempts: int, requote_reason: str | None
    ) -> None:
        self._telemetry.emit(
            "policy_drift.failed",
            level=logging.ERROR,
            kind=drift.kind,
            restaurant_id=run.command.restaurant_id,
            booking_id=run.command.booking_id,
            attempts=attempts,
            requote_reason=requote_reason,
            details=drift.details,
        )

    @staticmethod
    def _outcome(
        run: Run,
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
            restaurant_id=run.command.restaurant_id,
            booking_id=run.command.booking_id,
            outcome=outcome,
            assignment=assignment,
            attempts=attempts,
            drift_recovered=drift_kind is not None,
            drift_kind=drift_kind,
            reason=reason,
            relaxations=list(relaxations or []),
            skipped=list(skipped or []),
        )

"""Auto-assign (docs/domain.md §6, §8, §9): quote, then confirm, recovering from drift by
re-quoting, as a process of typed steps under one entry of the command ledger.

Every step (quote, confirm, release) is saved on its own, under a command id derived from the
run's (:class:`~seatledger.domain.service_day.RunSteps`), so a twin of the run sent at the same
time converges on the same steps. The run is one command for the ledger: its first save opens
its entry, the save that decides it (an assignment, no candidate, a drift failure) answers it,
and a re-send gets that answer. A run interrupted before it was decided (a lost race, a storage
failure: it gave its hold back) continues when re-sent, in a new round of step ids. After a
failure no hold of the run is left, and the booking's earlier assignments are never touched.
"""

from __future__ import annotations

import logging

from seatledger.application.answers import recorded, replay_run
from seatledger.application.clock import Clock
from seatledger.application.commands import AutoAssign, ConfirmHold
from seatledger.application.errors import STORAGE_ERRORS
from seatledger.application.handlers import CommandHandlers, confirmed
from seatledger.application.ledger import Answered, CommandKey, Resume, RunLedger, is_rejection
from seatledger.application.read_your_writes import ReadYourWrites
from seatledger.application.results import (
    AssignmentResult,
    AutoAssignResult,
    QuoteResult,
)
from seatledger.application.runs import DriftBook, Progress, Run
from seatledger.application.settings import Settings
from seatledger.application.telemetry import Telemetry
from seatledger.application.unit_of_work import AggregateStore, Step
from seatledger.domain.errors import (
    PolicyDriftError,
    SeatLedgerError,
)
from seatledger.domain.ledger import Answer
from seatledger.domain.service_day import (
    DriftRejected,
    FinishedRun,
    Outcome,
    RunHistory,
    RunSteps,
    ServiceDay,
    run_history,
)

#: A run starts over at most once after finding its entry open (then it knows the entry).
STARTS = 2

#: After these, a confirm step gives its hold back: a rejection, a storage failure, or a twin
#: of the run that answered it first.
GIVE_BACK_AFTER: tuple[type[Exception], ...] = (SeatLedgerError, Answered, *STORAGE_ERRORS)

#: A release that fails too is reported; the confirm's own failure is what the caller sees.
RELEASE_FAILURES: tuple[type[Exception], ...] = (SeatLedgerError, *STORAGE_ERRORS)


class AutoAssignProcess:
    """Runs auto-assign commands, step by step."""

    def __init__(
        self,
        store: AggregateStore,
        handlers: CommandHandlers,
        results: ReadYourWrites,
        *,
        telemetry: Telemetry,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._store = store
        self._handlers = handlers
        self._results = results
        self._telemetry = telemetry
        self._settings = settings
        self._clock = clock

    def run(self, command: AutoAssign) -> AutoAssignResult:
        """The run's answer: the recorded one for a re-send, else the run's own."""
        ledger = RunLedger(self._store, CommandKey.of(command))
        for start in range(1, STARTS + 1):
            try:
                return self._run(self._plan(command), ledger)
            except Resume:
                if start == STARTS:
                    raise RuntimeError(f"run {command.command_id} resumed twice") from None
            except Answered as answered:
                return replay_run(answered.answer)
            except SeatLedgerError as error:
                if ledger.answered or not is_rejection(error):
                    raise
                entry = ledger.lookup()  # a re-send may fail on today's state
                if entry is None or entry.answer is None:
                    raise
                return replay_run(entry.answer)
        raise AssertionError("unreachable")

    def _run(self, run: Run, ledger: RunLedger) -> AutoAssignResult:
        """The booking's tables if it has some; else confirm a live quote's hold or quote,
        and on drift try again."""
        command = run.command
        day = self._store.reads().booking_day(command.restaurant_id, command.booking_id)
        booking = day.booking(command.booking_id)
        history = run_history(day, command.command_id, command.booking_id)
        if history.seen and ledger.entry is None:  # sent before: the ledger knows
            entry = ledger.lookup()
            if entry is not None and entry.answer is not None:
                raise Answered(entry.answer)
            if entry is None and history.finished is not None:
                return self._stored_before_the_ledger(run, day, history.finished)
        if booking.tables:
            return self._already_assigned(run, ledger, Outcome(booking, None))
        progress, drifts = self._resume(run, day, history)
        while True:
            if progress.hold_id is None:
                if progress.attempts >= run.max_attempts and drifts.last is not None:
                    raise drifts.last  # a run stored before the ledger, failed for drift
                quote = self.quote_step(run, progress, drifts, ledger)
                progress.skipped, progress.relaxations = list(quote.skipped), quote.relaxations
                if quote.hold is None:
                    return self._no_candidate(run, quote, progress, drifts)
                progress.hold_id = quote.hold.hold_id
            progress.attempts += 1
            confirmed_ = self.confirm_step(run, progress, drifts, ledger)
            if isinstance(confirmed_, AutoAssignResult):
                return confirmed_
            # the recorded rejection has released the stale hold
            drifts.note(confirmed_, progress.hold_id)
            progress.hold_id = None
            if progress.attempts >= run.max_attempts:
                self._drift_failed(run, confirmed_, progress.attempts, None)
                raise confirmed_

    def _resume(self, run: Run, day: ServiceDay, history: RunHistory) -> tuple[Progress, DriftBook]:
        """Where the run starts: a live quoted hold is confirmed first (in the round that
        placed it, so a twin of the run converges on the same steps); a run whose last round
        gave its hold back goes on in a new round. Earlier drift counts."""
        command = run.command
        live = day.live_auto_hold(command.booking_id, self._clock.now())
        steps = RunSteps(command.command_id, max(history.last_round, 1))
        if history.seen and live is None:
            steps = RunSteps(command.command_id, history.last_round + 1)
        progress = Progress(
            steps=steps,
            hold_id=None if live is None else live.hold_id,
            relaxations=[] if live is None else list(live.relaxations),
            attempts=len(history.drifts),
        )
        return progress, DriftBook.of(day, history)

    # --- the steps ---

    def quote_step(
        self, run: Run, progress: Progress, drifts: DriftBook, ledger: RunLedger
    ) -> QuoteResult:
        """Plan the booking's tables and hold the best candidate. No candidate decides the
        run: its answer is saved with the quote."""
        command = run.command

        def decide(quote: QuoteResult) -> Answer | None:
            if quote.hold is not None:
                return None
            if drifts.first is not None:
                return Answer.failed(run.requote_failed(quote, progress, drifts.first))
            outcome = run.no_candidate(quote, progress)
            return recorded(outcome)

        return self._store.run(
            Step(progress.steps.quote(progress.attempts + 1), command.actor_id),
            lambda work: self._handlers.quote(
                work, command.restaurant_id, command.booking_id, command.ttl_seconds
            ),
            ledger.step(decide),
        )

    def confirm_step(
        self, run: Run, progress: Progress, drifts: DriftBook, ledger: RunLedger
    ) -> AutoAssignResult | PolicyDriftError:
        """Confirm the run's hold. Drift comes back as a value (its rejection is recorded and
        released the hold); any other failure gives the hold back and is raised."""
        command, hold_id, attempt = run.command, progress.hold_id, progress.attempts
        assert hold_id is not None
        request = ConfirmHold(
            restaurant_id=command.restaurant_id,
            booking_id=command.booking_id,
            hold_id=hold_id,
            command_id=progress.steps.confirm(attempt),
            actor_id=command.actor_id,
            actor_role=command.actor_role,
        )
        automation = drifts.context(attempt)

        def decide(decided: Outcome | DriftRejected) -> Answer | None:
            if isinstance(decided, DriftRejected):
                return Answer.failed(decided.error) if attempt >= run.max_attempts else None
            assignment = self._results.recorded(command.restaurant_id, decided)
            return recorded(run.assigned(assignment, progress, drifts))

        try:
            decided = self._store.run(
                request,
                lambda work: self._handlers.confirm_hold(work, request, automation),
                ledger.step(decide),
            )
            outcome = confirmed(self._telemetry, request, decided)
        except PolicyDriftError as drift:
            return drift
        except GIVE_BACK_AFTER:
            self._give_back(run, progress, hold_id)
            raise
        assignment = self._results.result(command.restaurant_id, outcome)
        return self._assigned(run, assignment, progress, drifts)

    def release_step(self, run: Run, progress: Progress, hold_id: str) -> None:
        """Release a hold of the run (a failed confirm never leaves one behind)."""
        command = run.command
        self._store.run(
            Step(progress.steps.release(progress.attempts), command.actor_id),
            lambda work: self._handlers.release_hold(
                work, command.restaurant_id, hold_id, "system"
            ),
        )

    def _give_back(self, run: Run, progress: Progress, hold_id: str) -> None:
        """Release the hold after a failed confirm; a release that fails too is reported,
        and the confirm's own failure is what the caller sees."""
        try:
            self.release_step(run, progress, hold_id)
        except RELEASE_FAILURES as exc:
            self._telemetry.emit(
                "auto_assign.release_failed",
                level=logging.ERROR,
                restaurant_id=run.command.restaurant_id,
                booking_id=run.command.booking_id,
                hold_id=hold_id,
                error=repr(exc),
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
        return Run(command=command, max_attempts=max_attempts)

    def _already_assigned(self, run: Run, ledger: RunLedger, outcome: Outcome) -> AutoAssignResult:
        """The booking has tables: nothing to do but record the answer."""
        command = run.command
        answer = run.outcome(
            "already_assigned",
            assignment=self._results.recorded(command.restaurant_id, outcome),
        )
        self._store.run(command, lambda work: answer, ledger.step(recorded))
        return answer.model_copy(
            update={"assignment": self._results.result(command.restaurant_id, outcome)}
        )

    def _stored_before_the_ledger(
        self, run: Run, day: ServiceDay, finished: FinishedRun
    ) -> AutoAssignResult:
        """A re-sent run that succeeded before the ledger existed: its result rebuilt from
        the events, nothing written."""
        command = run.command
        hold = day.holds.get(finished.change.hold_id or "")
        outcome = Outcome(day.booking(command.booking_id), finished.change, replayed=True)
        drift = finished.first_drift
        return run.outcome(
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
        if drifts.first is not None:
            self._drift_failed(run, drifts.first, progress.attempts, quote.reason)
            raise run.requote_failed(quote, progress, drifts.first)
        return run.no_candidate(quote, progress)

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
        return run.assigned(assignment, progress, drifts)

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

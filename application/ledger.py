"""The command ledger at work: every accepted command recorded with its answer, in the same
save as its events, and every re-send answered from it (docs/architecture.md, *The command
ledger*; the contract is docs/api.md, *Re-sending a command*).

The common path never reads the ledger: the command runs, its entry joins its save, and only
when the insert of that entry conflicts (the id was used before: a re-send, or a twin sent at
the same time that got there first) is the entry read and its answer returned. The entry is
also read when the command's own events show its id (no insert needed to know), and when a
command is rejected (a re-send of an accepted command may fail on today's state, and must
still get its answer). A command id used for another command is ``COMMAND_ID_REUSED``.

* :class:`CommandKey` — which entry, and the fingerprint of the command's input;
* :class:`CommandLedger` — runs one-save commands with their entry;
* :class:`RunLedger` — the entry of an automated run (auto-assign), opened in its first save
  and answered in its last.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from seatledger.application.answers import Answers
from seatledger.application.commands import Command
from seatledger.application.unit_of_work import AggregateStore, UnitOfWork
from seatledger.domain.errors import ErrorCode, SeatLedgerError
from seatledger.domain.ledger import Answer, CommandEntry
from seatledger.domain.values import digest

V = TypeVar("V")
R = TypeVar("R")


class Answered(Exception):  # noqa: N818 - control flow, never raised to callers
    """The ledger holds this command's answer: nothing of the attempt is saved."""

    def __init__(self, answer: Answer) -> None:
        super().__init__("answered from the command ledger")
        self.answer = answer


class Resume(Exception):  # noqa: N818 - control flow, never raised to callers
    """An automated run finds its own entry still open: an earlier send of it was
    interrupted (or a twin is under way), so the run starts over, knowing its entry."""


def fingerprint(command: Command) -> str:
    """SHA-256 of the command's type and canonical input, its command id left out. Fields at
    their defaults are left out too, so spelling a default out (or a field added later with
    a default) does not make a re-send look like another command."""
    data = command.model_dump(mode="json", exclude={"command_id"}, exclude_defaults=True)
    return digest({"command": type(command).__name__, "input": data})


@dataclass(frozen=True)
class CommandKey:
    """A command as the ledger knows it: restaurant, command id, type and fingerprint."""

    restaurant_id: str
    command_id: str
    command: str
    fingerprint: str

    @classmethod
    def of(cls, command: Command) -> CommandKey:
        return cls(
            restaurant_id=command.restaurant_id,
            command_id=command.command_id,
            command=type(command).__name__,
            fingerprint=fingerprint(command),
        )

    def lookup(self, store: AggregateStore) -> CommandEntry | None:
        """The command's entry (``COMMAND_ID_REUSED`` if its id recorded another command)."""
        entry = store.ledger_entry(self.restaurant_id, self.command_id)
        return None if entry is None else entry.check(self.command, self.fingerprint)

    def record(self, work: UnitOfWork, answer: Answer | None) -> CommandEntry:
        return work.add(
            CommandEntry.record(
                restaurant_id=self.restaurant_id,
                command_id=self.command_id,
                command=self.command,
                fingerprint=self.fingerprint,
                answer=answer,
                stamp=work.stamp,
            )
        )


def is_rejection(error: SeatLedgerError) -> bool:
    """A rule of the model said no (a re-send may be of a command accepted earlier). Not
    infrastructure failures, and not the ledger's own re-use error."""
    return isinstance(error.code, ErrorCode) and error.code is not ErrorCode.COMMAND_ID_REUSED


class CommandLedger:
    """Runs a command that decides in one save, with its ledger entry."""

    def __init__(self, store: AggregateStore) -> None:
        self._store = store

    def run(self, command: Command, act: Callable[[UnitOfWork], V], answers: Answers[V, R]) -> R:
        """The command's answer: its first (the entry saved with its events), or the one
        the ledger recorded when it was first sent."""
        key = CommandKey.of(command)
        try:
            value = self._store.run(command, act, _OneSave(self._store, key, answers))
        except Answered as answered:
            return answers.replay(answered.answer)
        except SeatLedgerError as error:
            entry = key.lookup(self._store) if is_rejection(error) else None
            if entry is None or entry.answer is None:
                raise
            return answers.replay(entry.answer)
        return answers.first(value)


class _OneSave(Generic[V]):
    """The save hook of a one-save command: its entry, with its answer, joins its events."""

    def __init__(self, store: AggregateStore, key: CommandKey, answers: Answers[V, R]) -> None:
        self._store = store
        self._key = key
        self._answers = answers

    def before_save(self, work: UnitOfWork, value: V) -> None:
        if work.resent():
            self._answer_if_recorded()
            if not work.pending():
                return  # stored before the ledger: recognised by its events, as it was
        self._key.record(work, self._answers.record(value))

    def after_conflict(self) -> None:
        self._answer_if_recorded()

    def saved(self) -> None:
        pass

    def _answer_if_recorded(self) -> None:
        entry = self._key.lookup(self._store)
        if entry is not None and entry.answer is not None:
            raise Answered(entry.answer)


class RunLedger:
    """The entry of one automated run, across the saves of its steps: opened (no answer) by
    the first save, answered by the last; :meth:`step` is the hook of one step's save."""

    def __init__(self, store: AggregateStore, key: CommandKey) -> None:
        self.store = store
        self.key = key
        #: The entry as last saved or read (None: not known to exist).
        self.entry: CommandEntry | None = None
        #: The run's answer was recorded by one of its own saves.
        self.answered = False

    def lookup(self) -> CommandEntry | None:
        self.entry = self.key.lookup(self.store)
        return self.entry

    def step(self, decide: Callable[[V], Answer | None]) -> _RunStep[V]:
        """The hook of a step whose value ``decide`` turns into the run's answer (None: the
        run goes on)."""
        return _RunStep(self, decide)


class _RunStep(Generic[V]):
    def __init__(self, run: RunLedger, decide: Callable[[V], Answer | None]) -> None:
        self._run = run
        self._decide = decide
        self._saving: CommandEntry | None = None
        self._answer: Answer | None = None

    def before_save(self, work: UnitOfWork, value: V) -> None:
        self._answer = self._decide(value)
        run = self._run
        if run.entry is None:
            self._saving = run.key.record(work, self._answer)
        elif self._answer is not None:
            entry = copy.deepcopy(run.entry)
            entry.answer_run(self._answer, work.stamp)
            self._saving = work.add(entry)
        else:
            self._saving = None

    def after_conflict(self) -> None:
        run = self._run
        opened = run.entry is not None
        entry = run.key.lookup(run.store)
        if entry is None:
            return  # another aggregate was stale: re-run the step
        run.entry = entry
        if entry.answer is not None:
            raise Answered(entry.answer)
        if not opened:
            raise Resume()

    def saved(self) -> None:
        if self._saving is not None:
            self._run.entry = self._saving
        if self._answer is not None:
            self._run.answered = True

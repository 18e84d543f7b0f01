"""The command ledger: every accepted command of a restaurant, by its command id, with a
fingerprint of its input and the answer it was given.

Without it a command is known only by the events it wrote, so a re-sent command that wrote
nothing, wrote somewhere else, or whose answer depends on later state cannot be recognised
(issue 10). A :class:`CommandEntry` is one small aggregate per (restaurant, command id), with
an id derived like every other id, saved in the same ``save()`` as the command's events: the
insert of its first version is what makes a re-send (or a concurrent twin) conflict, so the
common path never reads the ledger first.

An entry never changes once it holds an answer. An automated run (auto-assign: several saves)
opens its entry without an answer in its first save and answers it in its last; an entry
without an answer is a run that was interrupted, which a re-send continues.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import JsonValue

from seatledger.domain.aggregate import Aggregate, CreationEvent, DomainEvent, Stamp
from seatledger.domain.errors import CommandIdReusedError, SeatLedgerError, restore_error
from seatledger.domain.values import Frozen, derive_id


def ledger_entry_id(restaurant_id: str, command_id: str) -> UUID:
    """Command ids are scoped per restaurant: the same id in two restaurants is two entries."""
    return derive_id("command-ledger", restaurant_id, command_id)


class RecordedError(Frozen):
    """A rejection as the caller saw it (only rejections that wrote events are recorded)."""

    code: str
    message: str
    details: dict[str, JsonValue]
    hint: str

    @classmethod
    def of(cls, error: SeatLedgerError) -> RecordedError:
        return cls(
            code=str(error.code), message=error.message, details=error.details, hint=error.hint
        )

    def restore(self) -> SeatLedgerError:
        return restore_error(self.code, self.message, self.details, self.hint)


class Answer(Frozen):
    """What a command answered: its result as JSON text, or a recorded error. The result is
    kept as text, as the result model wrote it, so recording a large answer (a quote's
    candidates) costs one serialisation, not a walk of its tree on every encoding."""

    result: str | None = None
    error: RecordedError | None = None

    @classmethod
    def failed(cls, error: SeatLedgerError) -> Answer:
        return cls(error=RecordedError.of(error))


class CommandRecorded(CreationEvent):
    """A command was accepted (``answer`` None: an automated run has started)."""

    TOPIC: ClassVar[str] = "seatledger.ledger.CommandRecorded"

    restaurant_id: str
    #: The command's type (e.g. ``AssignTables``), to name it in a re-use error.
    command: str
    #: SHA-256 of the command's canonical input (everything but its command id).
    fingerprint: str
    answer: Answer | None

    def create(self) -> CommandEntry:
        return CommandEntry(
            self.originator_id,
            restaurant_id=self.restaurant_id,
            command_id=self.command_id,
            command=self.command,
            fingerprint=self.fingerprint,
            answer=self.answer,
        )


class RunAnswered(DomainEvent):
    """An automated run ended: the answer its entry was opened without."""

    TOPIC: ClassVar[str] = "seatledger.ledger.RunAnswered"

    answer: Answer

    def apply(self, aggregate: CommandEntry) -> None:
        aggregate.answer = self.answer


class CommandEntry(Aggregate):
    """One command of one restaurant: what it was (by fingerprint) and what it answered."""

    EVENTS: ClassVar[tuple[type[DomainEvent], ...]] = (CommandRecorded, RunAnswered)

    def __init__(
        self,
        aggregate_id: UUID,
        *,
        restaurant_id: str,
        command_id: str,
        command: str,
        fingerprint: str,
        answer: Answer | None,
    ) -> None:
        super().__init__(aggregate_id)
        self.restaurant_id = restaurant_id
        self.command_id = command_id
        self.command = command
        self.fingerprint = fingerprint
        self.answer = answer

    @classmethod
    def record(
        cls,
        *,
        restaurant_id: str,
        command_id: str,
        command: str,
        fingerprint: str,
        answer: Answer | None,
        stamp: Stamp,
    ) -> CommandEntry:
        """The entry of ``command_id`` (a run's steps save it under their own stamps)."""
        return cls._start(
            CommandRecorded(
                originator_id=ledger_entry_id(restaurant_id, command_id),
                originator_version=1,
                timestamp=stamp.now,
                command_id=command_id,
                actor_id=stamp.actor_id,
                restaurant_id=restaurant_id,
                command=command,
                fingerprint=fingerprint,
                answer=answer,
            )
        )

    def answer_run(self, answer: Answer, stamp: Stamp) -> None:
        """Close an open run's entry with its answer (an answered entry never changes)."""
        if self.answer is not None:
            raise ValueError(f"command {self.command_id} was answered already")
        self._trigger(RunAnswered, Stamp(stamp.now, self.command_id, stamp.actor_id), answer=answer)

    def check(self, command: str, fingerprint: str) -> CommandEntry:
        """This entry, if it records the same command; ``COMMAND_ID_REUSED`` if the id was
        used for another command (another type, booking or payload)."""
        if (command, fingerprint) != (self.command, self.fingerprint):
            raise CommandIdReusedError(
                f"command id {self.command_id} was used for another {self.command} command"
                if command == self.command
                else f"command id {self.command_id} was used for a {self.command} command, "
                f"not a {command}",
                details={
                    "command_id": self.command_id,
                    "restaurant_id": self.restaurant_id,
                    "recorded_command": self.command,
                    "command": command,
                },
            )
        return self

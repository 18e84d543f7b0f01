"""How each command's answer is recorded in the command ledger, and given back to a re-send.

A command's handler decides a value (a view, a domain :class:`Outcome`, a drift rejection);
:class:`Answers` says what the ledger keeps of it (JSON, computed before the save, so it is
saved with the command's events), what the caller gets the first time (after the save: an
assignment's members are read back from the read model then), and what a re-send gets: the
recorded answer, as it was, whatever happened since. A replayed assignment result says
``replayed=True`` (and ``changed=False``), as every replay always has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel, TypeAdapter

from seatledger.application.results import AssignmentResult, AutoAssignResult
from seatledger.domain.ledger import Answer
from seatledger.domain.service_day import DriftRejected, Outcome

V_contra = TypeVar("V_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)
M = TypeVar("M", bound=BaseModel)


class Answers(Protocol[V_contra, R_co]):
    def record(self, value: V_contra) -> Answer:
        """What the ledger keeps (called inside the attempt, before its save)."""

    def first(self, value: V_contra) -> R_co:
        """The answer of the run that decided ``value`` (after its save; may raise)."""

    def replay(self, answer: Answer) -> R_co:
        """A re-send's answer: the recorded one (a recorded rejection is raised)."""


def replayed(result: AssignmentResult) -> AssignmentResult:
    """A recorded assignment result as a replay returns it."""
    return result.model_copy(update={"replayed": True, "changed": False})


def recorded(model: BaseModel) -> Answer:
    """A result model, recorded."""
    return Answer(result=model.model_dump_json())


def recorded_result(answer: Answer) -> str:
    """The recorded result (JSON text); a recorded rejection is raised."""
    if answer.error is not None:
        raise answer.error.restore()
    assert answer.result is not None
    return answer.result


class ModelAnswers(Generic[M]):
    """A result model, recorded as its JSON form."""

    def __init__(self, model: type[M]) -> None:
        self._model = model

    def record(self, value: M) -> Answer:
        return recorded(value)

    def first(self, value: M) -> M:
        return value

    def replay(self, answer: Answer) -> M:
        return self._model.model_validate_json(recorded_result(answer))


class ListAnswers:
    """A list of ids (the sweeper's expired holds)."""

    _adapter = TypeAdapter(list[str])

    def record(self, value: list[str]) -> Answer:
        return Answer(result=self._adapter.dump_json(value).decode())

    def first(self, value: list[str]) -> list[str]:
        return value

    def replay(self, answer: Answer) -> list[str]:
        return self._adapter.validate_json(recorded_result(answer))


class AssignmentAnswers:
    """An assignment outcome: recorded with the members' ids from the events; the first
    answer reads them back from the read model (read-your-writes)."""

    def __init__(
        self,
        restaurant_id: str,
        result: Callable[[str, Outcome], AssignmentResult],
        recorded: Callable[[str, Outcome], AssignmentResult],
    ) -> None:
        self._restaurant_id = restaurant_id
        self._result = result
        self._recorded = recorded

    def record(self, value: Outcome) -> Answer:
        return recorded(self._recorded(self._restaurant_id, value))

    def first(self, value: Outcome) -> AssignmentResult:
        return self._result(self._restaurant_id, value)

    def replay(self, answer: Answer) -> AssignmentResult:
        return replayed(AssignmentResult.model_validate_json(recorded_result(answer)))


class ConfirmAnswers:
    """A confirm: an outcome, or a drift rejection (saved, so recorded, and raised)."""

    def __init__(
        self, outcomes: AssignmentAnswers, confirmed: Callable[[Outcome | DriftRejected], Outcome]
    ) -> None:
        self._outcomes = outcomes
        self._confirmed = confirmed

    def record(self, value: Outcome | DriftRejected) -> Answer:
        if isinstance(value, DriftRejected):
            return Answer.failed(value.error)
        return self._outcomes.record(value)

    def first(self, value: Outcome | DriftRejected) -> AssignmentResult:
        return self._outcomes.first(self._confirmed(value))

    def replay(self, answer: Answer) -> AssignmentResult:
        return self._outcomes.replay(answer)


def replay_run(answer: Answer) -> AutoAssignResult:
    """A re-sent auto-assign's answer: the run's recorded result, or its recorded failure."""
    result = AutoAssignResult.model_validate_json(recorded_result(answer))
    if result.assignment is None:
        return result
    return result.model_copy(update={"assignment": replayed(result.assignment)})

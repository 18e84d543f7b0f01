"""The command ledger (issue 10): every command exactly once, re-sending always safe.

One test per numbered case of the issue, each of which failed before the ledger, then the
contract around them: a re-used command id, which rejections are recorded, twins of a command,
interrupted auto-assign runs, and logs stored before the ledger. Every test runs on memory,
SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import OperationalError, Recording

from seatledger.application.clock import ManualClock
from seatledger.application.commands import (
    AutoAssign,
    CancelBooking,
    ChangePolicy,
    DefineTable,
    ExpireHolds,
    ExtendHold,
    LinkTables,
    QuoteBooking,
    UnlinkTables,
)
from seatledger.application.errors import InfrastructureCode
from seatledger.application.results import AutoAssignResult, HoldView, QuoteResult
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.testing import Scenario
from seatledger.domain.errors import ErrorCode, SeatLedgerError
from seatledger.domain.layout import Table
from seatledger.domain.ledger import CommandRecorded, RunAnswered, ledger_entry_id
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day import (
    HoldConfirmed,
    HoldPlaced,
    HoldReleased,
    PolicyDriftDetected,
    TablesUnassigned,
)
from tests.conftest import settings_for
from tests.support import DAY, EVENING, assign, booking, floor, hold, position, unassign


@pytest.fixture
def s(seatledger_scenario: Scenario) -> Scenario:
    seatledger_scenario.at(EVENING).given(floor())
    return seatledger_scenario


def auto(booking_id: str, **extra: Any) -> AutoAssign:
    return AutoAssign(restaurant_id="r1", booking_id=booking_id, actor_id="planner", **extra)


def quote(booking_id: str, **extra: Any) -> QuoteBooking:
    return QuoteBooking(restaurant_id="r1", booking_id=booking_id, actor_id="planner", **extra)


def policy(buffer: int, **extra: Any) -> ChangePolicy:
    return ChangePolicy(restaurant_id="r1", policy=VenuePolicy(post_buffer_minutes=buffer), **extra)


def live_holds(service: AssignmentService, booking_id: str) -> list[str]:
    day = service.get_day("r1", DAY)
    return [h.hold_id for h in day.holds if h.booking_id == booking_id and h.status == "live"]


def resent(s: Scenario, command: Any) -> Any:
    """Re-send ``command``: its answer, and nothing written."""
    s.when(command)
    s.then_nothing_written()
    return s.result


def drifts(s: Scenario) -> int:
    return sum(isinstance(e, PolicyDriftDetected) for e in s.history())


# --- the numbered cases of issue 10 -----------------------------------------------------------


def test_1_a_re_sent_failed_auto_assign_leaves_no_hold_and_no_second_drift(s: Scenario) -> None:
    s.given(booking("b1"))
    s.service.quote(quote("b1"))
    s.given(policy(10))
    command = auto("b1", max_attempts=1)
    s.when(command)
    first = s.then_error(ErrorCode.POLICY_DRIFT)
    s.then_events(PolicyDriftDetected)
    assert live_holds(s.service, "b1") == []
    for later in (0, 30):
        s.after(seconds=later).when(command)
        again = s.then_error(ErrorCode.POLICY_DRIFT)
        s.then_nothing_written()
        assert again.to_dict() == first.to_dict()
        assert live_holds(s.service, "b1") == []
    assert drifts(s) == 1


def test_2_layout_and_policy_commands_are_applied_once(s: Scenario) -> None:
    c3, c4 = policy(10), policy(20)
    first = s.when(c3).result
    s.given(c4)
    assert resent(s, c3) == first
    assert s.service.get_restaurant("r1").policy.post_buffer_minutes == 20

    inactive = DefineTable(
        restaurant_id="r1", table=Table(table_id="M1", zone_id="main", capacity=2, active=False)
    )
    active = DefineTable(restaurant_id="r1", table=Table(table_id="M1", zone_id="main", capacity=2))
    retired = s.when(inactive).result
    s.given(active)
    assert resent(s, inactive) == retired
    assert next(t for t in s.service.get_restaurant("r1").tables if t.table_id == "M1").active

    edge = s.service.get_restaurant("r1").adjacency[0]
    unlink = UnlinkTables(restaurant_id="r1", edges=[edge])
    unlinked = s.when(unlink).result
    s.given(LinkTables(restaurant_id="r1", edges=[edge]))
    assert resent(s, unlink) == unlinked
    assert edge in s.service.get_restaurant("r1").adjacency


def test_3_a_re_sent_registration_after_a_policy_change_is_recognised(s: Scenario) -> None:
    register = booking("b1")
    first = s.when(register).result
    s.given(policy(30))  # today's policy would fix another window
    assert resent(s, register) == first


def test_4_a_re_sent_quote_after_the_booking_was_cancelled_answers_the_quote(
    s: Scenario,
) -> None:
    s.given(booking("b1"))
    command = quote("b1")
    first = s.when(command).result
    assert isinstance(first, QuoteResult) and first.hold is not None
    s.given(CancelBooking(restaurant_id="r1", booking_id="b1"))
    assert resent(s, command) == first


def test_5_a_re_sent_sweep_answers_its_list_at_once_and_later(s: Scenario) -> None:
    s.given(booking("b1"), booking("b2", start="19:30"))
    short = s.service.place_hold(hold("b1", "M1", ttl_seconds=60))
    s.service.place_hold(hold("b2", "M2", ttl_seconds=600))
    sweep = ExpireHolds(restaurant_id="r1", service_date=DAY, actor_id="sweeper")
    s.after(seconds=60).when(sweep)
    assert s.result == [short.hold_id]
    assert resent(s, sweep) == [short.hold_id]  # at once
    s.after(minutes=15)  # the second hold is due now: not under the old command id
    assert resent(s, sweep) == [short.hold_id]
    day = s.service.load_day("r1", DAY)
    assert day is not None
    statuses = {hold_id: h.status for hold_id, h in day.holds.items()}
    assert statuses.pop(short.hold_id) == "expired"
    assert list(statuses.values()) == ["live"]  # due, but never swept


def test_6_a_re_sent_extension_answers_as_it_did(s: Scenario) -> None:
    s.given(booking("b1"))
    placed = s.service.place_hold(hold("b1", "M1"))

    def extend() -> ExtendHold:
        return ExtendHold(
            restaurant_id="r1", hold_id=placed.hold_id, ttl_seconds=300, actor_id="host-1"
        )

    e1 = extend()
    first = s.when(e1).result
    assert first.extended
    s.after(seconds=100).given(extend())
    assert resent(s, e1) == first


def test_7_a_re_sent_auto_assign_keeps_its_skipped_candidates(s: Scenario) -> None:
    s.given(booking("b1", 4), booking("b2", 4), hold("b2", "M7"))
    command = auto("b1")
    first = s.when(command).result
    assert isinstance(first, AutoAssignResult) and first.skipped
    again = resent(s, command)
    assert again.skipped == first.skipped
    assert again.model_dump(exclude={"assignment"}) == first.model_dump(exclude={"assignment"})


def test_8_a_command_that_changed_nothing_is_not_run_again(s: Scenario) -> None:
    s.given(booking("b1"))
    nothing = unassign("b1", "M1")
    s.when(nothing)
    s.then_no_events()  # its ledger entry only
    s.given(assign("b1", "M1"))
    assert resent(s, nothing).table_ids == []  # what it answered then
    assert s.service.get_booking("r1", "b1").table_ids == ["M1"]

    # an auto-assign that found no candidate, re-sent when one is free
    s.given(booking("b6", 6), booking("x6", 6), assign("x6", "M8"))
    s.given(ChangePolicy(restaurant_id="r1", policy=VenuePolicy(max_combination_size=1)))
    seat = auto("b6")
    assert s.when(seat).result.outcome == "no_candidate"
    s.given(unassign("x6"))
    assert resent(s, seat).outcome == "no_candidate"
    assert s.service.get_booking("r1", "b6").table_ids == []

    # an empty sweep re-sent when a hold is due
    sweep = ExpireHolds(restaurant_id="r1", service_date=DAY, actor_id="sweeper")
    assert s.when(sweep).result == []
    s.given(hold("b1", "M2", ttl_seconds=60))
    s.after(seconds=61)
    assert resent(s, sweep) == []


def test_9_a_command_id_re_used_for_another_booking_is_refused(s: Scenario) -> None:
    s.given(booking("b1"), booking("b2", start="21:00"))
    s.given(
        assign("b1", "M1", command_id="c-1"),
        CancelBooking(restaurant_id="r1", booking_id="b1", command_id="c-2"),
    )
    s.when(assign("b2", "M1", command_id="c-1"))
    err = s.then_error(ErrorCode.COMMAND_ID_REUSED, command_id="c-1")
    assert err.details["recorded_command"] == err.details["command"] == "AssignTables"
    s.then_nothing_written()
    s.when(CancelBooking(restaurant_id="r1", booking_id="b2", command_id="c-2"))
    s.then_error(ErrorCode.COMMAND_ID_REUSED, command_id="c-2")
    assert s.service.get_booking("r1", "b2").status == "pending"


# --- re-use, rejections, twins ----------------------------------------------------------------


def test_a_command_id_re_used_for_another_type_or_payload_is_refused(s: Scenario) -> None:
    s.given(booking("b1"), assign("b1", "M1", command_id="c-1"))
    for other in (
        hold("b1", "M2", command_id="c-1"),  # another type
        assign("b1", "M2", command_id="c-1"),  # another payload
        assign("b1", "M1", command_id="c-1", actor_id="host-2"),  # another actor
        auto("b1", command_id="c-1"),  # an automated run
    ):
        s.when(other)
        s.then_error(ErrorCode.COMMAND_ID_REUSED)
        s.then_nothing_written()
    # the same command, a default spelt out, is the same command
    again = resent(s, assign("b1", "M1", command_id="c-1", replace=False))
    assert again.replayed and again.table_ids == ["M1"]


def test_command_ids_are_scoped_per_restaurant(s: Scenario) -> None:
    s.given(floor("r2"), booking("b1"), booking("b1", restaurant_id="r2"))
    s.given(assign("b1", "M1", command_id="c-1"))
    s.when(assign("b1", "M2", restaurant_id="r2", command_id="c-1"))
    assert not s.result.replayed and s.result.table_ids == ["M2"]


def test_a_rejection_is_not_recorded_and_a_re_send_is_judged_again(s: Scenario) -> None:
    s.given(booking("b1"), booking("b2", start="19:30"), assign("b2", "M1"))
    command = assign("b1", "M1")
    s.when(command)
    s.then_error(ErrorCode.ASSIGNMENT_CONFLICT)  # and nothing written
    s.given(unassign("b2"))
    assert s.when(command).result.table_ids == ["M1"]
    assert resent(s, command).replayed


def test_a_drift_rejection_is_recorded_and_replayed(s: Scenario) -> None:
    s.given(booking("b1"))
    placed = s.service.place_hold(hold("b1", "M1"))
    s.given(policy(10))
    command = {"restaurant_id": "r1", "booking_id": "b1", "hold_id": placed.hold_id}
    confirm = s.service.confirm_hold  # the same mapping: one command id for both sends
    parsed = {**command, "command_id": "confirm-1"}
    s.when(lambda: confirm(parsed))
    first = s.then_error(ErrorCode.POLICY_DRIFT)
    assert [type(e) for e in s.events] == [PolicyDriftDetected]
    s.after(minutes=1).when(lambda: confirm(parsed))
    assert s.then_error(ErrorCode.POLICY_DRIFT).to_dict() == first.to_dict()
    s.then_nothing_written()


class Twins(AssignmentService):
    """Runs the next of ``before_saves`` between deciding a command and saving it: the twin
    of the command (the same command, another sender) gets in exactly there."""

    def __init__(self, settings: Settings, *, clock: ManualClock) -> None:
        super().__init__(settings, clock=clock)
        self.before_saves: list[Callable[[], object] | None] = []

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        interloper = self.before_saves.pop(0) if self.before_saves else None
        if interloper is not None:
            interloper()
        return super().save(*objs, **kwargs)


@contextmanager
def twins(settings: Settings) -> Iterator[tuple[Twins, AssignmentService]]:
    """A service and another sender on the same store (the memory store belongs to one
    service: there the other sender is that service itself)."""
    clock = ManualClock(datetime.fromisoformat(EVENING))
    service = Twins(settings, clock=clock)
    other = (
        service if settings.persistence == "memory" else AssignmentService(settings, clock=clock)
    )
    try:
        service.create_restaurant(floor())
        service.register_booking(booking("b1", 4))
        yield service, other
    finally:
        if other is not service:
            other.close()
        service.close()


def test_twin_commands_sent_at_once_are_applied_once(settings: Settings) -> None:
    with twins(settings) as (service, other):
        command = assign("b1", "M1", "M2")
        answers: list[Any] = []
        service.before_saves = [lambda: answers.append(other.assign_tables(command))]
        mine = service.assign_tables(command)
        (theirs,) = answers
        assert mine == theirs.model_copy(update={"replayed": True, "changed": False})
        day = service.get_day("r1", DAY)
        assert [b.table_ids for b in day.bookings] == [["M1", "M2"]]
        events = [n.topic for n in service.recorder.select_notifications(start=1, limit=500)]
        assert events.count(CommandRecorded.TOPIC) == 3  # the floor, the booking, the twins


def test_twin_auto_assigns_sent_at_once_seat_the_booking_once(settings: Settings) -> None:
    with twins(settings) as (service, other):
        command = auto("b1")
        answers: list[Any] = []
        # the twin runs whole between our quote and its save, then again before our confirm
        service.before_saves = [
            lambda: answers.append(other.auto_assign(command)),
        ]
        mine = service.auto_assign(command)
        (theirs,) = answers
        assert mine.assignment is not None and theirs.assignment is not None
        assert mine.assignment.table_ids == theirs.assignment.table_ids
        assert mine.model_dump(exclude={"assignment"}) == theirs.model_dump(exclude={"assignment"})
        day = service.get_day("r1", DAY)
        assert [h.status for h in day.holds] == ["consumed"]
        assert live_holds(service, "b1") == []


# --- interrupted auto-assign runs ---------------------------------------------------------------


def test_an_auto_assign_whose_confirm_lost_every_race_goes_through_when_re_sent(
    settings: Settings,
) -> None:
    with twins(settings.model_copy(update={"command_retries": 0})) as (service, other):
        command = auto("b1")
        # the quote's save goes through; another writer beats the confirm's save
        service.before_saves = [None, lambda: other.register_booking(booking("b3"))]
        with pytest.raises(SeatLedgerError) as lost:
            service.auto_assign(command)
        assert lost.value.code == InfrastructureCode.CONCURRENCY_CONFLICT
        assert [h.status for h in service.get_day("r1", DAY).holds] == ["released"]
        seated = service.auto_assign(command)
        assert seated.outcome == "assigned" and seated.attempts == 1
        assert live_holds(service, "b1") == []
        before = position(service)
        assert service.auto_assign(command) == seated.model_copy(
            update={
                "assignment": seated.assignment.model_copy(  # type: ignore[union-attr]
                    update={"replayed": True, "changed": False}
                )
            }
        )
        assert position(service) == before


class FailingStore(Twins):
    """Fails the save of the ``fail_at``-th save from now with a storage error."""

    fail_at: int | None = None

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        if self.fail_at is not None:
            self.fail_at -= 1
            if self.fail_at == 0:
                self.fail_at = None
                raise OperationalError("the store went away")
        return super().save(*objs, **kwargs)


def test_auto_assign_gives_its_hold_back_after_a_storage_failure_at_confirm(
    settings: Settings,
) -> None:
    """Issue 9 item 7: the hold used to stay live after a storage failure at confirm."""
    with FailingStore(settings, clock=ManualClock(datetime.fromisoformat(EVENING))) as service:
        service.create_restaurant(floor())
        service.register_booking(booking("b1", 4))
        service.fail_at = 2  # the quote's save, then the confirm's
        command = auto("b1")
        with pytest.raises(SeatLedgerError) as failed:
            service.auto_assign(command)
        assert failed.value.code == InfrastructureCode.STORAGE_UNAVAILABLE
        day = service.get_day("r1", DAY)
        assert [h.status for h in day.holds] == ["released"]
        assert day.bookings[0].table_ids == []
        seated = service.auto_assign(command)  # a storage failure is not recorded: re-run
        assert seated.outcome == "assigned"
        assert live_holds(service, "b1") == []


def test_a_run_interrupted_after_its_quote_confirms_its_hold_when_re_sent(s: Scenario) -> None:
    """A crash between the quote's save and the confirm's (simulated: the confirm fails
    before anything is saved and the release too), then the re-send."""
    s.given(booking("b1", 4))
    service = s.service
    process = service._auto_assign
    command = auto("b1")

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    original = process.confirm_step
    process.confirm_step = crash  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        service.auto_assign(command)
    process.confirm_step = original  # type: ignore[method-assign]
    (held,) = live_holds(service, "b1")
    s.when(command)
    s.then_events(HoldConfirmed)
    assert s.result.assignment.hold_id == held
    assert [type(e) for e in s.history() if isinstance(e, RunAnswered)] == [RunAnswered]


# --- logs stored before the ledger ------------------------------------------------------------


def test_a_log_stored_before_the_ledger_still_replays_its_commands(
    seatledger_scenario: Scenario, settings: Settings, tmp_path: Any
) -> None:
    """A history without ledger entries (as stored before it existed): a re-send is
    recognised by its events, as it always was, and writes nothing."""
    s = seatledger_scenario.at(EVENING)
    s.given(floor(), booking("b1", 4), booking("b2"))
    seat, assigned, placed = auto("b1"), assign("b2", "M1"), hold("b2", "M2")
    originals = [s.service.execute(c) for c in (seat, assigned, placed)]
    old_log = [e for e in s.history() if not isinstance(e, (CommandRecorded, RunAnswered))]

    fresh_settings = settings
    if settings.persistence == "sqlite":
        fresh_settings = settings.model_copy(update={"sqlite_path": tmp_path / "old.db"})
    elif settings.persistence == "postgres":
        fresh_settings = settings.model_copy(
            update={"postgres_schema": f"{settings.postgres_schema}_old"}
        )
    clock = ManualClock(s.now)
    with (
        AssignmentService(fresh_settings, clock=clock) as old,
        Scenario(old, start=s.now) as replay,
    ):
        replay.given(*old_log)
        for command, original in zip((seat, assigned, placed), originals, strict=True):
            replay.when(command)
            replay.then_nothing_written()
            again = replay.result
            if isinstance(again, AutoAssignResult):
                assert again.assignment is not None and original.assignment is not None
                assert again.assignment.table_ids == original.assignment.table_ids
                assert again.attempts == original.attempts
            elif isinstance(again, HoldView):
                assert again.hold_id == original.hold_id
            else:
                assert again.replayed and again.table_ids == original.table_ids
        assert position(old) == len(old_log)
        assert old.recorder.select_events(ledger_entry_id("r1", seat.command_id)) == []


def test_every_ledger_entry_names_its_command(s: Scenario) -> None:
    s.given(booking("b1", 4))
    s.when(auto("b1"))
    s.then_events(HoldPlaced, HoldConfirmed)
    entries = [e for e in s.history() if isinstance(e, CommandRecorded)]
    assert [e.command for e in entries] == ["CreateRestaurant", "RegisterBooking", "AutoAssign"]
    assert entries[-1].answer is None  # the run opened its entry with its quote ...
    (answered,) = [e for e in s.history() if isinstance(e, RunAnswered)]
    assert answered.originator_id == entries[-1].originator_id  # ... and answered it
    assert answered.command_id == entries[-1].command_id
    assert not any(isinstance(e, (HoldReleased, TablesUnassigned)) for e in s.history())
    assert s.result.assignment is not None


def test_the_common_path_never_reads_the_ledger(s: Scenario) -> None:
    """A command sent for the first time writes its entry with its events and never looks
    it up; only a re-send (or a rejection) reads it."""
    store = s.service._store
    lookups: list[str] = []
    read = store.ledger_entry

    def counted(restaurant_id: str, command_id: str) -> Any:
        lookups.append(command_id)
        return read(restaurant_id, command_id)

    store.ledger_entry = counted  # type: ignore[method-assign]
    s.given(booking("b1", 4), booking("b2"), policy(5))
    s.when(auto("b1")).given(assign("b2", "M1"), unassign("b2"), unassign("b2"))
    held = s.service.place_hold(hold("b2", "M2"))
    s.service.extend_hold(
        ExtendHold(restaurant_id="r1", hold_id=held.hold_id, ttl_seconds=300, actor_id="host-1")
    )
    s.given(quote("b2"), ExpireHolds(restaurant_id="r1", service_date=DAY))
    assert lookups == []
    s.when(assign("b2", "M9", command_id="new"))  # a rejection looks its command up
    assert lookups == ["new"]


class Gate(AssignmentService):
    """When armed, waits at a barrier before its next save: every contender has decided on
    the same state before any of them writes."""

    def __init__(self, settings: Settings, barrier: threading.Barrier) -> None:
        super().__init__(settings, clock=ManualClock(datetime.fromisoformat(EVENING)))
        self.barrier = barrier
        self.armed = False

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        if self.armed:
            self.armed = False
            self.barrier.wait(BARRIER_SECONDS)
        return super().save(*objs, **kwargs)


BARRIER_SECONDS = 60  # a bound for a stuck contender, not an assertion about speed
CONTENDERS = 4


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@pytest.mark.parametrize("kind", ["assign", "auto"])
def test_identical_commands_racing_in_threads_are_applied_once(
    backend: str, kind: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    settings = settings_for(backend, request, tmp_path)
    # on SQLite one unit of work per file writes at a time (the writer gate), so contenders
    # cannot all stand before their save together: they race to the gate instead
    barrier = threading.Barrier(CONTENDERS if backend == "postgres" else 1)
    services = [Gate(settings, barrier) for _ in range(CONTENDERS)]
    try:
        services[0].create_restaurant(floor())
        services[0].register_booking(booking("b1", 4))
        command: Any = assign("b1", "M1", "M2") if kind == "assign" else auto("b1")
        answers: list[Any] = [None] * CONTENDERS

        def send(index: int) -> None:
            service = services[index]
            try:
                answers[index] = service.execute(command)
            except Exception as exc:  # reported below, with the others' answers
                barrier.abort()
                answers[index] = exc

        for service in services:
            service.armed = True
        threads = [threading.Thread(target=send, args=(i,)) for i in range(CONTENDERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert not any(isinstance(a, Exception) for a in answers), answers
        first = next(a for a in answers if not replayed(a))
        assert all(replay_form(a) == replay_form(first) for a in answers), answers
        events = services[0].recorder.select_notifications(start=1, limit=1000)
        topics = [n.topic for n in events]
        entry = ledger_entry_id("r1", command.command_id)
        assert sum(n.originator_id == entry for n in events) == (1 if kind == "assign" else 2)
        assert topics.count(HoldReleased.TOPIC) == 0
        day = services[0].get_day("r1", DAY)
        assert [b.table_ids for b in day.bookings] == [first_tables(first)]
    finally:
        for service in services:
            service.close()


def replayed(answer: Any) -> bool:
    result: Any = answer.assignment if isinstance(answer, AutoAssignResult) else answer
    return bool(result.replayed)


def replay_form(answer: Any) -> Any:
    if isinstance(answer, AutoAssignResult) and answer.assignment is not None:
        marked = answer.assignment.model_copy(update={"replayed": True, "changed": False})
        return answer.model_copy(update={"assignment": marked})
    return answer.model_copy(update={"replayed": True, "changed": False})


def first_tables(answer: Any) -> list[str]:
    result: Any = answer.assignment if isinstance(answer, AutoAssignResult) else answer
    return list(result.table_ids)

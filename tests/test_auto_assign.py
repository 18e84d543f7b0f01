"""Quote and auto-assign: candidates, reasons, drift recovery and exactly-once messages.

Time is frozen by the scenario (freezegun); every test runs on memory, SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from seatledger.application.commands import (
    AutoAssign,
    ChangePolicy,
    CreateRestaurant,
    DefineTable,
    QuoteBooking,
)
from seatledger.application.results import AutoAssignResult, QuoteResult
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import RecordingSink
from seatledger.application.testing import Scenario
from seatledger.domain.errors import ErrorCode, PolicyDriftError, PolicyRequoteFailedError
from seatledger.domain.layout import Table, Zone
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day import (
    HoldConfirmed,
    HoldPlaced,
    PolicyDriftDetected,
)
from seatledger.projections.outbox import HOLD_CONFIRMED, POLICY_DRIFT, SYNC, all_outbox
from tests.support import DAY, EVENING, assign, booking, floor, hold

Messages = dict[str, list[dict[str, Any]]]


@pytest.fixture
def s(seatledger_scenario: Scenario) -> Scenario:
    seatledger_scenario.at(EVENING).given(floor())
    return seatledger_scenario


@pytest.fixture
def sink(s: Scenario) -> RecordingSink:
    recording = RecordingSink()
    s.service.telemetry.sinks.append(recording)
    return recording


def auto(booking_id: str, **extra: Any) -> AutoAssign:
    return AutoAssign(restaurant_id="r1", booking_id=booking_id, actor_id="planner", **extra)


def quote(booking_id: str, **extra: Any) -> QuoteBooking:
    return QuoteBooking(restaurant_id="r1", booking_id=booking_id, actor_id="planner", **extra)


def messages(service: AssignmentService, booking_id: str) -> Messages:
    service.catch_up_projections()
    found: Messages = {SYNC: [], HOLD_CONFIRMED: [], POLICY_DRIFT: []}
    for row in all_outbox(service.read_models):
        if row[5] == booking_id:
            found[str(row[3])].append(json.loads(str(row[8])))
    return found


def live_holds(service: AssignmentService, booking_id: str) -> list[str]:
    day = service.get_day("r1", DAY)
    return [h.hold_id for h in day.holds if h.booking_id == booking_id and h.status == "live"]


def test_auto_assign_quotes_and_confirms_the_best_candidate(
    s: Scenario, sink: RecordingSink
) -> None:
    s.given(booking("b1", 4))
    s.when(auto("b1"))
    s.then_events(HoldPlaced, HoldConfirmed)
    result = s.result
    assert isinstance(result, AutoAssignResult)
    assert (result.outcome, result.attempts, result.drift_recovered) == ("assigned", 1, False)
    assert result.assignment is not None
    assert result.assignment.table_ids == ["M7"]  # a 4-top: slack 0, one table
    assert result.assignment.source == "auto"
    assert all(m.assignment_id for m in result.assignment.members)
    sent = messages(s.service, "b1")
    assert len(sent[SYNC]) == 1 and sent[SYNC][0]["source"] == "auto"
    assert len(sent[HOLD_CONFIRMED]) == 1 and sent[POLICY_DRIFT] == []
    assert sink.named("policy_drift.detected") == []


def test_manual_and_automated_paths_send_the_same_messages(s: Scenario) -> None:
    s.given(booking("b1", 4), booking("b2", 4))
    s.when(auto("b1"))
    placed = s.service.place_hold(hold("b2", "P1"))
    s.service.confirm_hold({"restaurant_id": "r1", "booking_id": "b2", "hold_id": placed.hold_id})
    automated, manual = messages(s.service, "b1"), messages(s.service, "b2")
    assert {k: len(v) for k, v in automated.items()} == {k: len(v) for k, v in manual.items()}
    assert sorted(automated[SYNC][0]) == sorted(manual[SYNC][0])  # the same payload fields


def test_quote_holds_the_best_candidate_and_reports_skipped_ones(s: Scenario) -> None:
    s.given(booking("b1", 4), booking("b2", 4))
    s.given(hold("b2", "M7"))  # another booking holds the best table
    s.when(quote("b1"))
    result = s.result
    assert isinstance(result, QuoteResult)
    assert result.hold is not None and result.hold.table_ids == ["P1"]
    assert result.hold.source == "auto"
    skipped = {tuple(c.table_ids): c for c in result.skipped}
    assert skipped[("M7",)].reason == "HOLD_CONFLICT"
    assert skipped[("M7",)].detail["blocked_by"][0].startswith("hold:")
    assert [c.table_ids for c in result.candidates][:2] == [["P1"], ["P2"]]
    assert not result.stopped_early  # the default search budget ranks every candidate


def test_a_quote_says_when_the_planner_stopped_early(settings: Settings) -> None:
    """A search budget of one table set: the bar's 2-top is the best found, not the main
    room's (preferred), and the result says the search stopped early."""
    service = AssignmentService(settings.model_copy(update={"planner_search_budget": 1}))
    try:
        with Scenario(service) as s:
            s.at(EVENING).given(floor(), booking("b1", 2))
            s.when(quote("b1"))
            result = s.result
            assert isinstance(result, QuoteResult)
            assert result.stopped_early
            assert result.hold is not None and result.hold.table_ids == ["B1"]
    finally:
        service.close()


@pytest.mark.parametrize(
    ("party", "setup", "reason"),
    [
        (40, [], "NO_CAPACITY"),
        (6, [booking("x1", 6), assign("x1", "M8")], "NO_TABLES_AVAILABLE"),
    ],
)
def test_no_candidate_is_a_result_not_an_exception(
    s: Scenario, party: int, setup: list[Any], reason: str
) -> None:
    # a 6-top party fits M8 (or a 6-seat slack-0 combination: none are connected here)
    s.given(
        ChangePolicy(restaurant_id="r1", policy=VenuePolicy(max_combination_size=1)),
        *setup,
        booking("b1", party),
    )
    s.when(auto("b1"))
    result = s.result
    assert isinstance(result, AutoAssignResult)
    assert (result.outcome, result.reason, result.assignment) == ("no_candidate", reason, None)
    s.then_no_events()
    assert live_holds(s.service, "b1") == []
    assert messages(s.service, "b1")[SYNC] == []


def test_hold_conflicts_reason_when_only_holds_block(s: Scenario) -> None:
    s.given(
        ChangePolicy(restaurant_id="r1", policy=VenuePolicy(max_combination_size=1)),
        booking("x1", 6),
        hold("x1", "M8"),
        booking("b1", 6),
    )
    s.when(quote("b1"))
    assert s.result.reason == "HOLD_CONFLICTS" and s.result.hold is None
    s.then_no_events()


def test_already_assigned_returns_the_assignment_unchanged(s: Scenario) -> None:
    s.given(booking("b1", 2), assign("b1", "M3"))
    s.when(auto("b1"))
    s.then_no_events()
    assert s.result.outcome == "already_assigned"
    assert s.result.assignment.table_ids == ["M3"] and not s.result.assignment.changed


def test_an_adjacency_relaxed_plan_never_fails_confirm_for_adjacency(s: Scenario) -> None:
    """Two adjacent pairs, one table of each taken: only the two free, non-adjacent 2-tops
    can seat four, so the plan drops the adjacency requirement and the confirm honours it."""
    s.given(
        CreateRestaurant(
            restaurant_id="r9",
            zones=[Zone(zone_id="room")],
            tables=[
                Table(table_id=t, zone_id="room", capacity=2, movable=True)
                for t in ("A1", "A2", "B1", "B2")
            ],
            adjacency=[("A1", "A2"), ("B1", "B2")],
        ),
        booking("x1", 2, restaurant_id="r9"),
        booking("x2", 2, restaurant_id="r9"),
        assign("x1", "A2", restaurant_id="r9"),
        assign("x2", "B2", restaurant_id="r9"),
        booking("b1", 4, restaurant_id="r9"),
    )
    s.when(AutoAssign(restaurant_id="r9", booking_id="b1"))
    result = s.result
    assert result.outcome == "assigned" and result.relaxations == ["adjacency"]
    assert result.assignment.table_ids == ["A1", "B1"]
    placed = next(e for e in s.events if isinstance(e, HoldPlaced))
    assert isinstance(placed, HoldPlaced)
    assert placed.adjacency_required is False and placed.relaxations == ("adjacency",)


def drift_policy(buffer: int) -> ChangePolicy:
    return ChangePolicy(restaurant_id="r1", policy=VenuePolicy(post_buffer_minutes=buffer))


def test_drift_after_a_quote_is_recovered_by_requoting(s: Scenario, sink: RecordingSink) -> None:
    s.given(booking("b1", 2))
    quoted = s.service.quote(quote("b1", ttl_seconds=600))
    assert quoted.hold is not None
    s.after(minutes=5).given(drift_policy(10))
    s.when(auto("b1"))
    s.then_events(PolicyDriftDetected, HoldPlaced, HoldConfirmed)
    result = s.result
    assert (result.outcome, result.attempts, result.drift_recovered) == ("assigned", 2, True)
    assert result.drift_kind == "policy"
    drift, _, confirmed = s.events
    assert isinstance(drift, PolicyDriftDetected) and isinstance(confirmed, HoldConfirmed)
    assert (drift.hold_id, drift.attempt, drift.automated, drift.first_in_run) == (
        quoted.hold.hold_id,
        1,
        True,
        True,
    )
    assert confirmed.recovered_drift is not None
    assert confirmed.recovered_drift.stale_hold_id == quoted.hold.hold_id

    sent = messages(s.service, "b1")
    assert len(sent[SYNC]) == 1 and len(sent[HOLD_CONFIRMED]) == 1
    assert [(m["recovered"], m["kind"], m["attempt"]) for m in sent[POLICY_DRIFT]] == [
        (False, "policy", 1),
        (True, "policy", 2),
    ]
    assert [r.fields["kind"] for r in sink.named("policy_drift.detected")] == ["policy"]
    assert [r.fields["kind"] for r in sink.named("policy_drift.recovered")] == ["policy"]
    assert sink.named("policy_drift.failed") == []
    assert s.service.get_hold("r1", quoted.hold.hold_id).status == "released"
    assert live_holds(s.service, "b1") == []


def drift_on_every_requote(service: AssignmentService, monkeypatch: pytest.MonkeyPatch) -> None:
    """A manager keeps editing the policy while the planner re-quotes (a concurrent writer,
    simulated by changing the policy right after each re-quote)."""
    process = service._auto_assign
    original: Callable[..., Any] = process.quote_step
    buffers = iter(range(20, 60))

    def requote_then_change(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        service.change_policy(drift_policy(next(buffers)))
        return result

    monkeypatch.setattr(process, "quote_step", requote_then_change)


def test_drift_on_every_attempt_exhausts_and_leaves_nothing_behind(
    s: Scenario, sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    s.given(booking("b1", 2))
    quoted = s.service.quote(quote("b1"))
    s.given(drift_policy(10))
    drift_on_every_requote(s.service, monkeypatch)
    s.when(auto("b1"))
    error = s.then_error(ErrorCode.POLICY_DRIFT, wrote_events=True)
    assert isinstance(error, PolicyDriftError) and error.kind == "policy"
    drifts = [e for e in s.events if isinstance(e, PolicyDriftDetected)]
    assert [(d.attempt, d.first_in_run) for d in drifts] == [(1, True), (2, False)]
    assert not any(isinstance(e, HoldConfirmed) for e in s.events)
    assert live_holds(s.service, "b1") == []
    assert s.service.get_booking("r1", "b1").table_ids == []
    sent = messages(s.service, "b1")
    assert sent[SYNC] == [] and sent[HOLD_CONFIRMED] == []
    assert [m["recovered"] for m in sent[POLICY_DRIFT]] == [False]  # at most once
    (failed,) = sink.named("policy_drift.failed")
    assert failed.fields["kind"] == "policy" and failed.fields["attempts"] == 2
    assert quoted.hold is not None


def test_more_attempts_when_configured(s: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    s.given(booking("b1", 2))
    s.service.quote(quote("b1"))
    s.given(drift_policy(10))
    drift_on_every_requote(s.service, monkeypatch)
    s.when(auto("b1", max_attempts=4))
    s.then_error(ErrorCode.POLICY_DRIFT, wrote_events=True)
    drifts = [e for e in s.events if isinstance(e, PolicyDriftDetected)]
    assert [d.attempt for d in drifts] == [1, 2, 3, 4]


def test_retry_disabled_makes_the_first_drift_final(s: Scenario, sink: RecordingSink) -> None:
    s.given(booking("b1", 2))
    s.service.quote(quote("b1"))
    s.given(drift_policy(10))
    s.when(auto("b1", retry_on_drift=False))
    s.then_error(ErrorCode.POLICY_DRIFT)
    s.then_events(PolicyDriftDetected)
    assert live_holds(s.service, "b1") == []
    assert len(sink.named("policy_drift.failed")) == 1


def test_a_requote_that_finds_nothing_is_policy_requote_failed(
    s: Scenario, sink: RecordingSink
) -> None:
    s.given(
        ChangePolicy(restaurant_id="r1", policy=VenuePolicy(max_combination_size=1)),
        booking("b1", 6),
    )
    quoted = s.service.quote(quote("b1"))
    assert quoted.hold is not None and quoted.hold.table_ids == ["M8"]
    # the only 6-seat table breaks: table drift, and nothing else can seat six
    s.given(
        DefineTable(
            restaurant_id="r1", table=Table(table_id="M8", zone_id="main", capacity=6, active=False)
        )
    )
    s.when(auto("b1"))
    error = s.then_error(ErrorCode.POLICY_REQUOTE_FAILED, wrote_events=True)
    s.then_events(PolicyDriftDetected)  # the re-quote found nothing, so held nothing
    assert isinstance(error, PolicyRequoteFailedError)
    assert error.details["reason"] == "NO_CAPACITY" and error.details["kind"] == "table"
    assert live_holds(s.service, "b1") == []
    assert sink.named("policy_drift.failed")[0].fields["requote_reason"] == "NO_CAPACITY"


def test_an_expired_quote_is_requoted_without_drift(s: Scenario) -> None:
    s.given(booking("b1", 2))
    quoted = s.service.quote(quote("b1", ttl_seconds=60))
    assert quoted.hold is not None
    s.at(quoted.hold.expires_at)  # expired exactly now: now >= expires_at
    s.when(auto("b1"))
    s.then_events(HoldPlaced, HoldConfirmed)
    assert s.result.attempts == 1 and not s.result.drift_recovered


def test_a_live_quote_is_confirmed_just_before_it_expires(s: Scenario) -> None:
    s.given(booking("b1", 2))
    quoted = s.service.quote(quote("b1", ttl_seconds=60))
    assert quoted.hold is not None
    s.at(quoted.hold.expires_at - timedelta(seconds=1))
    s.when(auto("b1"))
    (confirmed,) = s.then_events(HoldConfirmed)
    assert isinstance(confirmed, HoldConfirmed) and confirmed.hold_id == quoted.hold.hold_id


def test_resending_the_same_auto_assign_writes_nothing_new(s: Scenario) -> None:
    s.given(booking("b1", 4))
    command = auto("b1")
    first = s.service.auto_assign(command)
    s.when(command)
    s.then_nothing_written()
    again = s.result
    assert isinstance(again, AutoAssignResult) and first.assignment is not None
    assert (again.outcome, again.attempts) == ("assigned", 1)
    assert again.assignment is not None and again.assignment.replayed
    assert again.assignment.table_ids == first.assignment.table_ids
    assert again.assignment.members == first.assignment.members
    assert len(messages(s.service, "b1")[SYNC]) == 1


def test_resending_a_recovered_auto_assign_reports_the_recovery(s: Scenario) -> None:
    s.given(booking("b1", 2))
    s.service.quote(quote("b1", ttl_seconds=600))
    s.given(drift_policy(10))
    command = auto("b1")
    first = s.service.auto_assign(command)
    s.when(command)
    s.then_nothing_written()
    again = s.result
    assert (again.attempts, again.drift_recovered, again.drift_kind) == (2, True, "policy")
    assert again.assignment.table_ids == first.assignment.table_ids  # type: ignore[union-attr]


def test_a_run_is_found_by_its_own_id_not_by_an_id_that_extends_it(s: Scenario) -> None:
    """A replayed run is found through its steps' ids, not by parsing the ids of the day's
    commands: a run whose id starts with another run's id is no replay of it."""
    s.given(booking("b1", 2), booking("b2", 2))
    longer = s.service.auto_assign(auto("b1", command_id="seat:confirm:1"))
    s.when(auto("b2", command_id="seat"))
    s.then_events(HoldPlaced, HoldConfirmed)
    shorter = s.result
    assert (shorter.outcome, shorter.attempts, shorter.booking_id) == ("assigned", 1, "b2")
    assert shorter.assignment is not None and not shorter.assignment.replayed
    assert longer.assignment is not None
    assert set(shorter.assignment.table_ids).isdisjoint(longer.assignment.table_ids)


def test_a_no_op_result_still_carries_the_bookings_members(s: Scenario) -> None:
    s.given(booking("b1", 2), assign("b1", "M3"))
    s.when(auto("b1"))
    members = s.result.assignment.members
    visible = s.service.members("r1", "b1")
    assert [(m.table_id, m.assignment_id) for m in members] == [
        (m.table_id, m.assignment_id) for m in visible
    ]
    assert members and all(m.assignment_id for m in members)

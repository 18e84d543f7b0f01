"""Drift: the hold's snapshot against the floor at confirm (docs/domain.md §9 and §16).

A drift rejection writes no assignment but records ``PolicyDriftDetected``; only genuine
snapshot mismatches are drift.
"""

from __future__ import annotations

import logging

import pytest

from seatledger.application.commands import (
    ChangePolicy,
    DefineTable,
    DefineZone,
    LinkTables,
    UnlinkTables,
)
from seatledger.application.results import HoldView
from seatledger.application.telemetry import RecordingSink
from seatledger.application.testing import Scenario
from seatledger.domain.errors import ErrorCode, PolicyDriftError
from seatledger.domain.layout import Table, Zone
from seatledger.domain.policy import VenuePolicy
from seatledger.domain.service_day import HoldConfirmed, PolicyDriftDetected
from tests.support import EVENING, booking, confirm, floor, hold, position

DEFAULT_VERSION = VenuePolicy().version


@pytest.fixture
def s(seatledger_scenario: Scenario) -> Scenario:
    scenario = seatledger_scenario.at(EVENING)
    scenario.given(floor(), booking("b1"), booking("b4", party_size=4))
    return scenario


def place(s: Scenario, booking_id: str, *tables: str) -> HoldView:
    result = s.when(hold(booking_id, *tables)).result
    assert isinstance(result, HoldView)
    return result


def table(
    table_id: str,
    zone_id: str = "main",
    capacity: int = 2,
    *,
    movable: bool = True,
    active: bool = True,
) -> DefineTable:
    return DefineTable(
        restaurant_id="r1",
        table=Table(
            table_id=table_id, zone_id=zone_id, capacity=capacity, movable=movable, active=active
        ),
    )


def drift_error(s: Scenario, held: HoldView, booking_id: str = "b4") -> PolicyDriftError:
    s.when(confirm(booking_id, held.hold_id))
    err = s.then_error(ErrorCode.POLICY_DRIFT, hold_id=held.hold_id)
    assert isinstance(err, PolicyDriftError)
    assert err.details["kind"] == err.kind
    assert "refresh" in err.hint.lower() and "re-validate" in err.hint
    return err


# --- each kind --------------------------------------------------------------------------------


def test_policy_drift(s: Scenario) -> None:
    held = place(s, "b4", "M1", "M2")
    changed = VenuePolicy(post_buffer_minutes=10)  # a nested-only field counts too
    s.given(ChangePolicy(restaurant_id="r1", policy=changed))
    err = drift_error(s, held)
    assert err.kind == "policy"
    assert (err.details["expected"], err.details["actual"]) == (DEFAULT_VERSION, changed.version)
    assert set(err.details["differences"]) == {"policy"}


def test_a_turn_time_change_is_policy_drift(s: Scenario) -> None:
    held = place(s, "b1", "M1")
    policy = VenuePolicy()
    dinner = policy.services[1]
    longer = dinner.model_copy(
        update={
            "turn_bands": (
                *dinner.turn_bands[:-1],
                dinner.turn_bands[-1].model_copy(update={"minutes": 95}),
            )
        }
    )
    s.given(
        ChangePolicy(
            restaurant_id="r1",
            policy=policy.model_copy(update={"services": (policy.services[0], longer)}),
        )
    )
    assert drift_error(s, held, "b1").kind == "policy"


def test_zone_drift(s: Scenario) -> None:
    held = place(s, "b1", "M1")
    s.given(table("M1", zone_id="patio"))
    err = drift_error(s, held, "b1")
    assert err.kind == "zone"
    assert (err.details["expected"], err.details["actual"]) == (["main"], ["patio"])
    assert err.details["tables"] == {"M1": {"expected": "main", "actual": "patio"}}
    assert set(err.details["differences"]) == {"zone"}


def test_adjacency_drift(s: Scenario) -> None:
    held = place(s, "b4", "M1", "M2")
    s.given(UnlinkTables(restaurant_id="r1", edges=[("M1", "M2")]))
    err = drift_error(s, held)
    assert err.kind == "adjacency"
    assert (err.details["expected"], err.details["actual"]) == ([["M1", "M2"]], [])
    assert err.details["expected_hash"] != err.details["actual_hash"]
    assert set(err.details["differences"]) == {"adjacency"}


def test_a_new_edge_among_held_tables_is_adjacency_drift_too(s: Scenario) -> None:
    held = s.when(hold("b4", "M1", "M3", require_adjacency=False)).result
    s.given(LinkTables(restaurant_id="r1", edges=[("M1", "M3")]))
    assert drift_error(s, held).kind == "adjacency"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"capacity": 3}, {"capacity": {"expected": 2, "actual": 3}}),
        ({"movable": False}, {"movable": {"expected": True, "actual": False}}),
        ({"active": False}, {"active": {"expected": True, "actual": False}}),
    ],
    ids=["capacity", "movable", "active"],
)
def test_table_drift(s: Scenario, change: dict[str, object], expected: dict[str, object]) -> None:
    held = place(s, "b4", "M1", "M2")
    capacity, movable, active = (
        change.get("capacity", 2),
        change.get("movable", True),
        change.get("active", True),
    )
    assert isinstance(capacity, int) and isinstance(movable, bool) and isinstance(active, bool)
    s.given(table("M2", capacity=capacity, movable=movable, active=active))
    err = drift_error(s, held)
    assert err.kind == "table"
    assert err.details["tables"] == {"M2": expected}
    assert set(err.details["differences"]) == {"table"}


# --- precedence and details -------------------------------------------------------------------


def test_kind_precedence_policy_zone_adjacency_table(s: Scenario) -> None:
    held = place(s, "b4", "M1", "M2")
    s.given(
        table("M1", capacity=3),  # table
        UnlinkTables(restaurant_id="r1", edges=[("M1", "M2")]),  # adjacency
        table("M2", zone_id="patio"),  # zone
        ChangePolicy(restaurant_id="r1", policy=VenuePolicy(slack_budget=5)),  # policy
    )
    err = drift_error(s, held)
    assert err.kind == "policy"
    differences = err.details["differences"]
    assert list(differences) == ["policy", "zone", "adjacency", "table"]
    assert differences["zone"]["tables"] == {"M2": {"expected": "main", "actual": "patio"}}
    assert differences["table"]["tables"] == {"M1": {"capacity": {"expected": 2, "actual": 3}}}
    assert differences["adjacency"]["actual"] == []


@pytest.mark.parametrize(
    ("kind", "commands"),
    [
        ("zone", [("zone", "M2"), ("adjacency", ""), ("table", "M1")]),
        ("adjacency", [("adjacency", ""), ("table", "M1")]),
    ],
)
def test_the_first_changed_kind_wins(
    s: Scenario, kind: str, commands: list[tuple[str, str]]
) -> None:
    held = place(s, "b4", "M1", "M2")
    for what, table_id in reversed(commands):  # applied in reverse precedence order
        if what == "zone":
            s.given(table(table_id, zone_id="patio"))
        elif what == "adjacency":
            s.given(UnlinkTables(restaurant_id="r1", edges=[("M1", "M2")]))
        else:
            s.given(table(table_id, capacity=3))
    err = drift_error(s, held)
    assert err.kind == kind
    assert list(err.details["differences"]) == [what for what, _ in commands]


# --- what a drift rejection records -----------------------------------------------------------


def test_a_drift_rejection_records_an_event_and_assigns_nothing(s: Scenario) -> None:
    sink = RecordingSink()
    s.service.telemetry.sinks.append(sink)
    held = place(s, "b4", "M1", "M2")
    s.given(table("M2", capacity=3))
    command = confirm("b4", held.hold_id)
    s.when(command)
    s.then_error(ErrorCode.POLICY_DRIFT, kind="table")
    (event,) = s.then_events(PolicyDriftDetected)
    assert isinstance(event, PolicyDriftDetected)
    assert (event.booking_id, event.hold_id, event.kind, event.attempt) == (
        "b4",
        held.hold_id,
        "table",
        1,
    )
    assert (event.automated, event.first_in_run) == (False, True)
    assert event.details["tables"] == {"M2": {"capacity": {"expected": 2, "actual": 3}}}
    view = s.service.get_booking("r1", "b4")
    assert (view.status, view.table_ids) == ("pending", [])
    # the stale hold is released by the rejection: it never outlives the failed confirm
    assert s.service.get_hold("r1", held.hold_id).status == "released"
    (detected,) = sink.named("policy_drift.detected")
    assert detected.fields["kind"] == "table"
    assert detected.fields["hold_id"] == held.hold_id

    # the same command again: the same error, no second event, no second telemetry
    before = position(s.service)
    s.when(command)
    err = s.then_error(ErrorCode.POLICY_DRIFT, kind="table")
    s.then_no_events()
    assert position(s.service) == before
    assert err.details["tables"] == event.details["tables"]
    assert len(sink.named("policy_drift.detected")) == 1


def test_a_drift_rejection_is_logged_with_its_kind(
    s: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    held = place(s, "b1", "M1")
    s.given(table("M1", zone_id="patio"))
    with caplog.at_level(logging.WARNING, logger="seatledger"):
        s.when(confirm("b1", held.hold_id))
    s.then_error(ErrorCode.POLICY_DRIFT)
    records = [
        r for r in caplog.records if getattr(r, "telemetry", None) == "policy_drift.detected"
    ]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert records[0].fields["kind"] == "zone"  # type: ignore[attr-defined]


# --- only genuine mismatches --------------------------------------------------------------------


def test_changes_elsewhere_on_the_floor_are_not_drift(s: Scenario) -> None:
    held = place(s, "b4", "M1", "M2")
    s.given(
        table("P3", zone_id="patio", capacity=6),  # another table changes
        table("M3", capacity=3),  # a neighbour of the held tables changes
        UnlinkTables(restaurant_id="r1", edges=[("M2", "M3")]),  # an edge leaving the set
        LinkTables(restaurant_id="r1", edges=[("M4", "M6")]),
        DefineZone(restaurant_id="r1", zone=Zone(zone_id="terrace")),
        table("T1", zone_id="terrace"),
        ChangePolicy(restaurant_id="r1", policy=VenuePolicy()),  # the same policy: no-op
    )
    s.when(confirm("b4", held.hold_id))
    s.then_events(HoldConfirmed)
    assert s.result.table_ids == ["M1", "M2"]


def test_a_change_that_was_undone_is_not_drift(s: Scenario) -> None:
    held = place(s, "b4", "M1", "M2")
    s.given(
        table("M2", capacity=3),
        UnlinkTables(restaurant_id="r1", edges=[("M1", "M2")]),
        ChangePolicy(restaurant_id="r1", policy=VenuePolicy(slack_budget=5)),
        table("M2", capacity=2),
        LinkTables(restaurant_id="r1", edges=[("M2", "M1")]),
        ChangePolicy(restaurant_id="r1", policy=VenuePolicy()),
    )
    s.when(confirm("b4", held.hold_id))
    s.then_events(HoldConfirmed)


def test_other_failures_are_never_reported_as_drift(s: Scenario) -> None:
    held = place(s, "b1", "M1")
    s.given(booking("b2"))
    s.when(confirm("b2", held.hold_id)).then_error(ErrorCode.HOLD_BOOKING_MISMATCH)
    s.when(confirm("b1", "no-such-hold")).then_error(ErrorCode.HOLD_NOT_FOUND)
    s.at(held.expires_at).when(confirm("b1", held.hold_id))
    s.then_error(ErrorCode.HOLD_EXPIRED)


def test_after_drift_a_fresh_hold_confirms(s: Scenario) -> None:
    stale = place(s, "b4", "M1", "M2")
    s.given(ChangePolicy(restaurant_id="r1", policy=VenuePolicy(slack_budget=5)))
    drift_error(s, stale)
    fresh = place(s, "b4", "M1", "M2")  # own stale hold does not block
    assert fresh.policy_version == VenuePolicy(slack_budget=5).version
    s.when(confirm("b4", fresh.hold_id))
    s.then_events(HoldConfirmed)

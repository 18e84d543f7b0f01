"""``seatledger status`` as a health check (issue 8, item 6), and a projection that cannot
apply an event (issue 9, item 1: a NUL in a table id poisoned the projections for every tenant).

Lag counts the notifications a projection handles, so a caught-up worker shows 0. A
projection that cannot write an event stops exactly before it, says so once per back-off (not
once per command), and ``status`` shows where, which event and why, and exits 1.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seatledger.application import cli
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import RecordingSink, Telemetry
from seatledger.domain.service_day import SeatedTable, TablesAssigned
from seatledger.projections.failures import EventNotAppliedError
from seatledger.projections.relay import Relay
from seatledger.projections.runner import PageRunner
from tests.conftest import settings_for
from tests.support import assign, booking, floor


@pytest.fixture(params=["sqlite", "postgres"])
def stored(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A store on disk whose projections only move when a test says so."""
    return settings_for(request.param, request, tmp_path).model_copy(
        update={"projection_mode": "off"}
    )


def status(settings: Settings, *extra: str) -> tuple[int, dict[str, Any], str]:
    """``seatledger status --json`` on the store: exit code, report, stderr."""
    argv = ["status", "--json", *extra]
    if settings.persistence == "sqlite":
        argv += ["--db", str(settings.sqlite_path)]
    else:
        argv += ["--database-url", "postgresql://postgres@127.0.0.1:5432/test"]
    out, err = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as env,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        env.setenv("SEATLEDGER_POSTGRES_SCHEMA", settings.postgres_schema)
        code = cli.main(argv)
    return code, json.loads(out.getvalue()), err.getvalue()


def lags(report: dict[str, Any]) -> dict[str, int]:
    projections = report["projections"]
    assert isinstance(projections, dict)
    return {name: int(p["lag"]) for name, p in projections.items()}


def test_a_caught_up_worker_shows_no_lag(stored: Settings) -> None:
    """The log holds events no projection handles (the floor, registrations): they are not
    lag. Counting every notification after the position, lag never reached 0."""
    with AssignmentService(stored) as service:
        service.create_restaurant(floor())
        service.register_booking(booking("b1"))
        service.register_booking(booking("b2", start="20:00"))
        service.assign_tables(assign("b1", "M1"))
        code, report, _ = status(stored)
        assert lags(report) == {"members": 1, "outbox": 1}
        service.catch_up_projections()
        service.register_booking(booking("b3", start="21:00"))  # handled by neither
        code, report, err = status(stored)
    assert code == cli.EXIT_OK, err
    assert lags(report) == {"members": 0, "outbox": 0}
    assert report["healthy"] is True
    assert report["events"] > max(p["position"] for p in report["projections"].values())


def test_lag_above_the_threshold_is_unhealthy(stored: Settings) -> None:
    with AssignmentService(stored) as service:
        service.create_restaurant(floor())
        for n in range(3):
            service.register_booking(booking(f"b{n}"))
            service.assign_tables(assign(f"b{n}", f"M{n + 1}"))
    assert status(stored)[0] == cli.EXIT_OK  # three behind: within the default 1000
    code, report, err = status(stored, "--max-lag", "2")
    assert code == cli.EXIT_ERROR
    assert report["healthy"] is False
    assert "unhealthy: members lags 3 notifications (more than 2)" in err


class Broken:
    def publish(self, delivery: object) -> None:
        raise RuntimeError("the broker said no")


def test_dead_messages_are_unhealthy_only_when_asked(stored: Settings) -> None:
    with AssignmentService(stored) as service:
        service.create_restaurant(floor())
        service.register_booking(booking("b1"))
        service.assign_tables(assign("b1", "M1"))
        service.catch_up_projections()
        Relay(service.read_models, Broken(), Telemetry(), max_attempts=1).run_once()
    assert status(stored)[0] == cli.EXIT_OK
    code, _, err = status(stored, "--max-dead", "0")
    assert code == cli.EXIT_ERROR
    assert "unhealthy: 1 dead outbox messages (more than 0)" in err


# --- an event a projection cannot write (PostgreSQL: text cannot hold NUL) --------------------


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def poisoned(postgres_schema: str) -> Iterator[tuple[AssignmentService, RecordingSink, int]]:
    """A PostgreSQL store whose log holds, between two good assignments, a TablesAssigned
    with a NUL in a table id, stored through the recorder as a bug or an old version might
    have. Yields the service (projections off), its telemetry and the poison's id."""
    sink = RecordingSink()
    settings = Settings(
        persistence="postgres", postgres_schema=postgres_schema, projection_mode="off"
    )
    with AssignmentService(settings, telemetry=Telemetry(sinks=[sink])) as service:
        service.create_restaurant(floor())
        for name, start in (("b1", "18:00"), ("b2", "19:00")):
            service.register_booking(booking(name, start=start))
        service.assign_tables(assign("b1", "M1"))
        (good,) = service.recorder.select_notifications(
            start=0, limit=1, topics=[TablesAssigned.TOPIC]
        )
        event = service.mapper.to_domain_event(good)
        assert isinstance(event, TablesAssigned)
        change = event.change.model_copy(
            update={
                "booking_id": "poison",
                "tables": ("M\x002",),
                "members": (SeatedTable(table_id="M\x002", assignment_id="a-poison"),),
            }
        )
        poison = event.model_copy(
            update={"originator_id": uuid.uuid4(), "originator_version": 1, "change": change}
        )
        ids = service.recorder.insert_events([service.mapper.to_stored_event(poison)])
        assert ids is not None
        (poison_id,) = ids
        service.assign_tables(assign("b2", "M3"))
        yield service, sink, poison_id


def members_runner(service: AssignmentService) -> PageRunner:
    (runner,) = [r for r in service.projection_runners if r.name == "members"]
    return runner


@pytest.mark.postgres
def test_a_projection_stops_right_before_an_event_it_cannot_write(
    poisoned: tuple[AssignmentService, RecordingSink, int],
) -> None:
    service, _, poison_id = poisoned
    runner = members_runner(service)
    with pytest.raises(EventNotAppliedError) as stopped:
        runner.catch_up()
    assert stopped.value.notification_id == poison_id
    assert stopped.value.topic == TablesAssigned.TOPIC
    # the good assignment before it is applied; the page did not roll back as a whole
    assert runner.position() == stopped.value.position
    assert runner.position() < poison_id
    assert [m.table_id for m in service.members("r1", "b1")] == ["M1"]
    assert service.members("r1", "b2") == []


@pytest.mark.postgres
def test_it_is_logged_once_per_back_off_and_shown_by_status(
    poisoned: tuple[AssignmentService, RecordingSink, int],
) -> None:
    service, sink, poison_id = poisoned
    runner = members_runner(service)
    clock = runner.monotonic = ManualClock()
    for _ in range(20):  # commands in in-process mode call this after every save
        assert runner.supervised_catch_up() is False
    (failed,) = sink.named("projection.failed")
    assert failed.fields["notification_id"] == poison_id
    assert failed.fields["topic"] == TablesAssigned.TOPIC
    assert "NUL" in failed.fields["error"] or "0x00" in failed.fields["error"]
    clock.now += failed.fields["retry_in_seconds"]
    assert runner.supervised_catch_up() is False
    second = sink.named("projection.failed")[1]
    assert second.fields["failures"] == 2
    assert second.fields["retry_in_seconds"] > failed.fields["retry_in_seconds"]
    assert len(sink.named("projection.failed")) == 2

    # the outbox projection cannot write it either (its dedupe key names the tables)
    outbox = next(r for r in service.projection_runners if r.name == "outbox")
    assert outbox.supervised_catch_up() is False

    settings = service.settings
    code, report, err = status(settings)
    assert code == cli.EXIT_ERROR
    members = report["projections"]["members"]
    assert members["position"] == runner.position()
    assert members["stopped"]["notification_id"] == poison_id
    assert members["stopped"]["topic"] == TablesAssigned.TOPIC
    assert "\x00" not in members["stopped"]["reason"]
    assert report["projections"]["outbox"]["stopped"]["notification_id"] == poison_id
    assert f"unhealthy: members stopped at position {runner.position()}" in err


@pytest.mark.postgres
def test_commands_go_on_while_a_projection_rests_and_it_is_not_retried_per_command(
    poisoned: tuple[AssignmentService, RecordingSink, int],
) -> None:
    """In-process mode catches up after every save: a stuck projection must not turn each
    command into another attempt and another error line."""
    first, _, _ = poisoned
    sink = RecordingSink()
    settings = first.settings.model_copy(
        update={"projection_mode": "in_process", "projection_poll_seconds": 600.0}
    )
    with AssignmentService(settings, telemetry=Telemetry(sinks=[sink])) as service:
        clock = ManualClock()
        for runner in service.projection_runners:
            runner.monotonic = clock
        for n in range(5):
            service.register_booking(booking(f"c{n}", start="21:00"))
            service.assign_tables(assign(f"c{n}", f"P{n + 1}"))
        failed = sink.named("projection.failed")
        assert sorted(record.fields["projection"] for record in failed) == ["members", "outbox"]

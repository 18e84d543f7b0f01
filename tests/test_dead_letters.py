"""Dead letters as an operation (``seatledger outbox``) on SQLite and PostgreSQL, and the
per-booking order of the relay's claims."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from seatledger.application import cli
from seatledger.application.clock import ManualClock
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import Telemetry
from seatledger.projections.deliveries import Delivery
from seatledger.projections.relay import Relay
from tests.support import assign, booking, floor, unassign


class FailFor:
    """Fails every message of the named bookings; records what it delivered."""

    def __init__(self, *bookings: str) -> None:
        self.failing = set(bookings)
        self.delivered: list[Delivery] = []

    def publish(self, delivery: Delivery) -> None:
        if delivery.booking_id in self.failing:
            raise ConnectionError(f"consumer rejects {delivery.booking_id}")
        self.delivered.append(delivery)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Settings, list[str]]]:
    """A store with messages for b1 (two) and b2 (one), and the CLI options naming it."""
    if request.param == "sqlite":
        path = tmp_path / "seatledger.db"
        settings = Settings(persistence="sqlite", sqlite_path=path)
        options = ["--db", str(path)]
    else:
        schema = request.getfixturevalue("postgres_schema")
        settings = Settings(
            persistence="postgres", postgres_schema=schema, projection_mode="in_process"
        )
        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setenv("SEATLEDGER_POSTGRES_SCHEMA", schema)
        options = ["--database-url", "postgresql://postgres@127.0.0.1:5432/test"]
    with AssignmentService(settings) as service:
        service.create_restaurant(floor())
        for name, table in (("b1", "M1"), ("b2", "M2")):
            service.register_booking(booking(name, 2, "19:00"))
            service.assign_tables(assign(name, table))
        service.unassign_tables(unassign("b1"))
        service.catch_up_projections()
    yield settings, options


def relay_for(service: AssignmentService, publisher: object, clock: ManualClock) -> Relay:
    return Relay(
        service.read_models,
        publisher,  # type: ignore[arg-type]
        Telemetry(),
        clock=clock.now,
        rng=random.Random(2),
        max_attempts=1,
    )


def outbox(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["outbox", *args])
    out, err = capsys.readouterr()
    return code, out, err


def listed(capsys: pytest.CaptureFixture[str], options: list[str], *args: str) -> list[dict]:  # type: ignore[type-arg]
    code, out, _ = outbox(capsys, "list", *args, "--json", *options)
    assert code == cli.EXIT_OK
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.postgres
def test_dead_letters_are_listed_shown_redriven_and_discarded(
    store: tuple[Settings, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, options = store
    clock = ManualClock(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))
    with AssignmentService(settings) as service:
        stats = relay_for(service, FailFor("b1"), clock).run_once()
    assert (stats.dead, stats.deferred, stats.published) == (1, 1, 1)

    dead = listed(capsys, options)  # the default: dead letters
    assert [(d["booking_id"], d["status"], d["attempts"]) for d in dead] == [("b1", "dead", 1)]
    assert "ConnectionError: consumer rejects b1" in dead[0]["last_error"]
    every = listed(capsys, options, "--status", "all")
    assert sorted(d["status"] for d in every) == ["dead", "done", "pending"]
    assert [d["booking_id"] for d in listed(capsys, options, "--status", "done")] == ["b2"]

    message_id = dead[0]["message_id"]
    code, out, _ = outbox(capsys, "show", message_id, *options)
    assert code == cli.EXIT_OK
    assert "consumer rejects b1" in out and '"bookingId": "b1"' in out
    code, _, err = outbox(capsys, "show", "no-such-message", *options)
    assert code == cli.EXIT_ERROR and "no outbox message" in err

    # naming a message that is not dead changes nothing and says so
    done_id = every[[d["status"] for d in every].index("done")]["message_id"]
    code, out, err = outbox(capsys, "redrive", done_id, *options)
    assert code == cli.EXIT_ERROR and "is done, left alone" in err and "re-driven: 0" in out
    code, _, err = outbox(capsys, "redrive", *options)
    assert code == cli.EXIT_USAGE  # neither ids nor --all-dead

    code, out, _ = outbox(capsys, "redrive", "--all-dead", "--booking", "b1", *options)
    assert code == cli.EXIT_OK and out.startswith("re-driven: 1")
    assert listed(capsys, options) == []
    with AssignmentService(settings) as service:
        assert relay_for(service, FailFor(), clock).run_once().published == 2  # in order
    assert {d["status"] for d in listed(capsys, options, "--status", "all")} == {"done"}


@pytest.mark.postgres
def test_a_discarded_letter_is_kept_never_sent_and_no_longer_holds_its_booking_back(
    store: tuple[Settings, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, options = store
    clock = ManualClock(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))
    with AssignmentService(settings) as service:
        relay_for(service, FailFor("b1"), clock).run_once()
    (dead,) = listed(capsys, options)
    code, out, _ = outbox(capsys, "discard", dead["message_id"], *options)
    assert code == cli.EXIT_OK and dead["message_id"] in out
    assert [d["status"] for d in listed(capsys, options, "--status", "discarded")] == ["discarded"]
    delivered = FailFor()
    with AssignmentService(settings) as service:
        clock.advance(timedelta(hours=1))
        assert relay_for(service, delivered, clock).run_once().published == 1
    assert [d.booking_id for d in delivered.delivered] == ["b1"]  # the later message only
    code, out, _ = outbox(capsys, "discard", "--all-dead", *options)
    assert out.startswith("discarded: 0")


@pytest.mark.postgres
def test_messages_the_logging_publisher_marked_done_can_be_sent_again(
    store: tuple[Settings, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, options = store
    assert cli.main(["relay", "--once", *options]) == cli.EXIT_OK  # the default: log
    assert json.loads(capsys.readouterr().out)["published"] == 3
    assert cli.main(["status", "--json", *options]) == cli.EXIT_OK
    status = json.loads(capsys.readouterr().out)
    assert status["publisher"] == {
        "configured": "log",
        "delivers": False,
        "done_but_delivered_nowhere": 3,
    }
    code, out, _ = outbox(capsys, "redrive", "--logged", *options)
    assert code == cli.EXIT_OK and out.startswith("re-driven: 3")
    assert {d["status"] for d in listed(capsys, options, "--status", "all")} == {"pending"}


def test_a_booking_s_later_message_waits_for_its_earlier_one(tmp_path: Path) -> None:
    settings = Settings(persistence="sqlite", sqlite_path=tmp_path / "seatledger.db")
    clock = ManualClock(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))
    with AssignmentService(settings) as service:
        service.create_restaurant(floor())
        service.register_booking(booking("b1", 2, "19:00"))
        service.assign_tables(assign("b1", "M1"))
        service.unassign_tables(unassign("b1"))
        service.assign_tables(assign("b1", "M2"))
        service.catch_up_projections()
        flaky = FailFor("b1")
        relay = Relay(service.read_models, flaky, Telemetry(), clock=clock.now, base_delay=10.0)
        stats = relay.run_once()
        assert (stats.retried, stats.deferred) == (1, 2)
        assert relay.run_once().claimed == 0  # the later two are due, the first is not
        flaky.failing.clear()
        clock.advance(timedelta(seconds=11))
        assert relay.run_once().published == 3
        assert [d.payload["tableIds"] for d in flaky.delivered] == [["M1"], [], ["M2"]]

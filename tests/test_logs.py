"""Logs: successful commands at debug with their duration, the text format shows the fields,
and every event the code emits is documented under its one name."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from seatledger.application import cli
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.application.telemetry import RecordingSink, Telemetry, TextFormatter
from seatledger.domain.errors import SeatLedgerError
from tests.support import assign, booking, floor

ROOT = Path(__file__).resolve().parent.parent
AREAS = (
    "command|query|storage|tenancy|auth|policy_drift|assignments|availability|projection"
    "|worker|relay|outbox|publisher|planner"
)


def test_commands_are_logged_at_debug_with_their_duration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = RecordingSink()
    with AssignmentService(
        Settings(persistence="memory"), telemetry=Telemetry(sinks=[sink])
    ) as service:
        service.create_restaurant(floor())
        service.register_booking(booking("b1", 2, "19:00"))
        with caplog.at_level(logging.DEBUG, logger="seatledger"):
            service.assign_tables(assign("b1", "M1"))
            with pytest.raises(SeatLedgerError):
                service.assign_tables(assign("b1", "NOPE"))
            service.get_booking("r1", "b1")
    (ok,) = [r for r in sink.named("command.succeeded") if r.fields["operation"] == "assign_tables"]
    assert ok.fields["restaurant_id"] == "r1" and ok.fields["booking_id"] == "b1"
    assert isinstance(ok.fields["seconds"], float) and ok.fields["seconds"] >= 0
    (rejected,) = sink.named("command.rejected")
    assert rejected.fields["operation"] == "assign_tables" and rejected.fields["seconds"] >= 0
    assert [r.fields["operation"] for r in sink.named("query.succeeded")] == ["get_booking"]
    logged = [r for r in caplog.records if getattr(r, "telemetry", None) == "command.succeeded"]
    assert [r.levelno for r in logged] == [logging.DEBUG]


def test_the_text_format_shows_the_fields() -> None:
    record = logging.LogRecord("seatledger", logging.WARNING, "x", 1, "outbox.retry", (), None)
    record.telemetry = "outbox.retry"
    record.fields = {"message_id": "m-1", "attempt": 2, "error": "TimeoutError: no ack", "x": None}
    line = TextFormatter().format(record)
    assert line.endswith(
        'WARNING seatledger: outbox.retry message_id=m-1 attempt=2 error="TimeoutError: no ack"'
        " x=null"
    )
    record.msg = "[capacity.assignments] assignment rows missing"
    record.telemetry = "assignments.rows_missing"
    record.fields = {"table_ids": ["T1", "T2"]}
    assert (
        TextFormatter()
        .format(record)
        .endswith('missing event=assignments.rows_missing table_ids=["T1", "T2"]')
    )


def test_the_relay_says_in_its_log_that_the_logging_publisher_delivers_nowhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "s.db")
    assert cli.main(["relay", "--once", "--db", db]) == cli.EXIT_OK
    err = capsys.readouterr().err
    assert "relay.started" in err and "publisher=log" in err and "delivers=false" in err
    assert "WARNING" in err and "delivers nowhere" in err and "event=relay.delivers_nowhere" in err


def emitted_event_names() -> set[str]:
    names = {"command.succeeded", "query.succeeded"}  # f"{kind}.succeeded"
    pattern = re.compile(rf'"((?:{AREAS})\.[a-z_]+)"')
    for folder in ("application", "projections"):
        for path in (ROOT / folder).rglob("*.py"):
            names.update(pattern.findall(path.read_text()))
    return names


def test_every_event_the_code_emits_is_documented_under_its_name() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text[text.index("## Logs and telemetry") :]
    names = emitted_event_names()
    assert {"outbox.retry", "outbox.logged", "planner.quoted", "tenancy.violation"} <= names
    missing = sorted(name for name in names if f"`{name}`" not in section)
    assert missing == []

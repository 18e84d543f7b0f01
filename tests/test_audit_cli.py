"""``seatledger audit``, ``floor``, ``timeline`` and ``diff`` on a SQLite file: JSON for
machines, tables for people, exit codes, and the progress bar only on a terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from seatledger.application import cli
from seatledger.application.audit.cli import progress_bar
from seatledger.application.demo import run_demo
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from tests.audit_support import known_day, live_write


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    run_demo(path, 7)
    return path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    with AssignmentService(Settings(persistence="sqlite", sqlite_path=path)) as service:
        known_day(service)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_demo_database_audits_ok(demo_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "audit", "--json", "--db", str(demo_db))
    assert code == 0, out
    assert out.count("\n") == 1 and err == ""  # one JSON object, no progress bar
    report = json.loads(out)
    assert report["ok"] is True
    assert {m["name"]: m["ok"] for m in report["read_models"]} == {"members": True, "outbox": True}
    assert all(len(m["rebuilt_digest"]) == 64 for m in report["read_models"])
    assert len(report["log"]["head"]) == 64 and report["events"] > 1000


def test_a_difference_exits_1_and_is_listed(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with AssignmentService(Settings(persistence="sqlite", sqlite_path=store)) as service:
        live_write(service, "DELETE FROM seatledger_members WHERE booking_id = 'b2'")
    code, out, _ = run(capsys, "audit", "--db", str(store))
    assert code == 1
    assert "missing" in out and "booking_id=b2" in out and "NOT OK" in out
    code, out, _ = run(capsys, "audit", "--json", "--db", str(store))
    assert code == 1 and json.loads(out)["ok"] is False


def test_checkpoint_written_then_verified(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = tmp_path / "log.ckpt"
    code, out, _ = run(capsys, "audit", "--db", str(store), "--checkpoint", str(checkpoint))
    assert code == 0 and "written" in out and checkpoint.exists()
    code, out, _ = run(
        capsys, "audit", "--json", "--db", str(store), "--checkpoint", str(checkpoint)
    )
    assert code == 0 and json.loads(out)["log"]["checkpoint"]["action"] == "verified"
    checkpoint.write_text("{}")
    code, _, err = run(capsys, "audit", "--db", str(store), "--checkpoint", str(checkpoint))
    assert code == 2 and "is not a seatledger-log-checkpoint" in err


def test_until_takes_a_position_or_an_instant(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "audit", "--json", "--db", str(store), "--until", "5")
    assert code == 0 and json.loads(out)["last_position"] == 5
    code, out, _ = run(
        capsys, "audit", "--json", "--db", str(store), "--until", "2000-01-01T00:00:00Z"
    )
    assert code == 0 and json.loads(out)["events"] == 0
    code, _, err = run(capsys, "audit", "--db", str(store), "--until", "2026-01-01T10:00")
    assert code == 2 and "has no timezone" in err


def test_floor_timeline_and_diff(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with AssignmentService(Settings(persistence="sqlite", sqlite_path=store)) as service:
        (last,) = service.recorder.select_notifications(
            start=service.recorder.max_notification_id(), limit=1
        )
        now = service.event_source.decode(last).timestamp.isoformat()
    code, out, _ = run(
        capsys, "floor", "r1", "2026-11-24", "--at", now, "--json", "--db", str(store)
    )
    assert code == 0
    seated = {
        t["table_id"]: t["assignments"] for t in json.loads(out)["tables"] if t["assignments"]
    }
    assert sorted(seated) == ["M1", "M2", "M4", "P5"]
    code, out, _ = run(capsys, "floor", "r1", "2026-11-24", "--position", "3", "--db", str(store))
    assert code == 0 and "at position 3" in out

    code, out, _ = run(capsys, "timeline", "r1", "b2", "--json", "--db", str(store))
    events = [e["event"] for e in json.loads(out)["entries"]]
    assert events == ["BookingRegistered", "TablesAssigned", "TablesAssigned"]
    code, out, _ = run(capsys, "timeline", "r1", "b2", "--db", str(store))
    assert code == 0 and "M3 -> M4" in out

    code, _, err = run(
        capsys, "diff", "r1", "2026-11-24", "2020-01-01T00:00:00Z", now, "--db", str(store)
    )
    assert code == 1 and "RESTAURANT_NOT_FOUND" in err  # the restaurant did not exist yet
    code, out, _ = run(capsys, "diff", "r1", "2026-11-24", now, now, "--json", "--db", str(store))
    assert code == 0 and json.loads(out)["changes"] == []

    code, _, err = run(capsys, "timeline", "r1", "nobody", "--db", str(store))
    assert code == 1 and "BOOKING_NOT_FOUND" in err


def test_the_progress_bar_shows_only_on_a_terminal() -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=100)
    with progress_bar(terminal, enabled=True) as progress:
        assert progress is not None
        progress(500, 1000)
        progress(1000, 1000)
    assert "replaying the log" in screen.getvalue()
    assert "events/s" in screen.getvalue()

    piped = Console(file=io.StringIO(), force_terminal=False)
    with progress_bar(piped, enabled=True) as progress:
        assert progress is None
    with progress_bar(terminal, enabled=False) as progress:  # --json
        assert progress is None

"""The ``seatledger`` command line: JSON and table output of the demo, refusals, and errors
printed as code, message and hint without a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from seatledger.application import cli
from seatledger.application.demo import DemoConfig, DemoReport, run_demo
from seatledger.domain.errors import ErrorCode, NotFoundError

REQUIRED_KEYS = {
    "bookings",
    "commands",
    "succeeded",
    "rejected_by_code",
    "drift_by_kind",
    "double_bookings",
    "seconds",
    "auto_assign",
    "sync_messages",
    "table_set_changing_commands",
    "hold_confirmed_messages",
    "drift_messages",
    "members_rows",
    "members_with_empty_id",
    "results_with_empty_id",
}
AUTO_ASSIGN_KEYS = {
    "attempted",
    "succeeded",
    "drift_recovered",
    "drift_failed",
    "no_candidate",
    "no_candidate_by_reason",
    "already_assigned",
    "holds_left_after_failure",
}


def test_demo_json_prints_one_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "demo.db"
    assert cli.main(["demo", "--json", "--db", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1  # exactly one line: one JSON object
    report = json.loads(out)
    assert isinstance(report, dict)
    assert set(report) >= REQUIRED_KEYS
    assert report["double_bookings"] == 0
    assert report["bookings"] >= 200
    assert report["rejected_by_code"]
    assert report["drift_by_kind"]
    assert list(report) == sorted(report)
    assert set(report["auto_assign"]) >= AUTO_ASSIGN_KEYS
    assert report["sync_messages"] == report["table_set_changing_commands"]
    assert report["hold_confirmed_messages"] == report["holds_confirmed"]
    assert report["members_with_empty_id"] == 0
    assert report["auto_assign"]["holds_left_after_failure"] == 0
    assert err == ""  # the demo's deliberate failures are not logged by default
    assert path.exists()


def test_demo_tables_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--seed", "3"]) == 0
    out, _ = capsys.readouterr()
    assert "double bookings" in out
    assert "rejected by code" in out
    assert "policy drift by kind" in out
    assert "auto-assign" in out
    assert "capacity.assignment.sync" in out
    assert "holds left after a failure" in out
    assert (tmp_path / "seatledger-demo.db").exists()


def test_demo_refuses_a_file_that_is_not_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ledger.db"
    path.write_text("production data")
    assert cli.main(["demo", "--db", str(path)]) == cli.EXIT_USAGE
    out, err = capsys.readouterr()
    assert "not a seatledger demo database" in err
    assert "--overwrite" in err
    assert "Traceback" not in out + err
    assert path.read_text() == "production data"


def test_seatledger_error_is_printed_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> DemoReport:
        raise NotFoundError(
            ErrorCode.RESTAURANT_NOT_FOUND,
            "restaurant demo-bistro not found",
            details={"restaurant_id": "demo-bistro"},
        )

    monkeypatch.setattr(cli, "run_demo", broken)
    code = cli.main(["demo", "--json"])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_ERROR
    assert out == ""
    assert "[RESTAURANT_NOT_FOUND] restaurant demo-bistro not found" in err
    assert "hint: Create the restaurant first" in err
    assert "Traceback" not in err


def test_double_bookings_fail_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    small = run_demo(tmp_path / "small.db", config=DemoConfig(lunch_bookings=5, dinner_bookings=5))
    bad = small.model_copy(update={"double_bookings": 1})
    monkeypatch.setattr(cli, "run_demo", lambda *_args, **_kwargs: bad)
    assert cli.main(["demo", "--json"]) == cli.EXIT_ERROR
    assert json.loads(capsys.readouterr().out)["double_bookings"] == 1


def test_usage_errors_return_an_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == cli.EXIT_USAGE
    assert cli.main(["demo", "--seed", "many"]) == cli.EXIT_USAGE
    assert cli.main(["--help"]) == cli.EXIT_OK
    assert "demo" in capsys.readouterr().out

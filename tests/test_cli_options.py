"""Command-line conventions: ``--version``, global options before or after the command, the
store's location on every command that opens one, bad settings in one line with exit 2, and
no traceback on any failure path."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from seatledger.application import cli
from seatledger.application.cli_options import load_settings, option
from seatledger.application.settings import Settings
from tests.test_worker import SEATLEDGER, wait_until

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "pw-Zq7-never-shown"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith("SEATLEDGER_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("SEATLEDGER_")}
    return subprocess.run(
        [SEATLEDGER, *args],
        env={**clean, **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(argv)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == cli.EXIT_OK
    assert capsys.readouterr().out == f"seatledger {importlib.metadata.version('seatledger')}\n"


@pytest.mark.parametrize(
    ("argv", "level", "log_format"),
    [
        (["--log-level", "debug", "status"], "debug", None),
        (["status", "--log-level", "debug"], "debug", None),
        (["--log-format", "json", "status", "--log-level", "info"], "info", "json"),
        (["--log-level", "debug", "status", "--log-level", "warning"], "warning", None),
        (["status"], None, None),
    ],
)
def test_global_options_before_or_after_the_command(
    argv: list[str], level: str | None, log_format: str | None
) -> None:
    """A value given before the command survives the subcommand's parser."""
    args = parse(*argv)
    assert option(args, "log_level") == level
    assert option(args, "log_format") == log_format


def test_the_store_before_or_after_the_command(tmp_path: Path) -> None:
    before = parse("--db", str(tmp_path / "a.db"), "status")
    after = parse("rebuild", "--database-url", "memory://")
    assert load_settings(before, "status").sqlite_path == tmp_path / "a.db"
    assert load_settings(after, "rebuild").persistence == "memory"


@pytest.mark.parametrize(
    "command",
    [["migrate"], ["migrate", "--status"], ["status", "--json"], ["rebuild"], ["relay", "--once"]],
    ids=" ".join,
)
@pytest.mark.parametrize("how", ["--db", "--database-url"])
def test_every_store_command_takes_the_store(
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    how: str,
) -> None:
    path = tmp_path / "ledger.db"
    clean_env.setenv("SEATLEDGER_DATABASE_URL", "postgresql://nobody@nowhere.invalid/x")
    store = str(path) if how == "--db" else f"sqlite:///{path}"
    if command[0] != "migrate":  # status only reads: the store must exist
        assert cli.main(["migrate", how, store]) == cli.EXIT_OK, capsys.readouterr().err
    assert cli.main([*command, how, store]) == cli.EXIT_OK, capsys.readouterr().err
    assert path.exists() or command == ["migrate", "--status"]  # the command line's store


def test_the_worker_takes_the_store(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    run = run_cli("worker", "--once", "--db", str(path))
    assert run.returncode == cli.EXIT_OK, run.stderr
    assert path.exists()


def test_the_demo_file_before_or_after_the_command(tmp_path: Path) -> None:
    assert cli.demo_path(parse("--db", "x.db", "demo")) == Path("x.db")
    assert cli.demo_path(parse("demo", "--database-url", "sqlite:////tmp/d.db")) == Path(
        "/tmp/d.db"
    )
    assert cli.demo_path(parse("demo")) == Path("seatledger-demo.db")


def test_the_demo_refuses_another_kind_of_store(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--database-url", "memory://"]) == cli.EXIT_USAGE
    assert "the demo runs on its own SQLite file" in capsys.readouterr().err


def test_two_store_options_are_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--db", "a.db", "status", "--database-url", "memory://"]) == cli.EXIT_USAGE
    assert "give one" in capsys.readouterr().err


def test_each_command_names_its_role() -> None:
    for role in ("worker", "relay", "status"):
        settings = load_settings(parse("status"), role)
        assert settings.postgres_application_name == f"seatledger-{role}"


# --- failures: one short message, a documented exit code ------------------------------------


def test_a_bad_environment_variable_is_one_line_and_exit_2() -> None:
    run = run_cli("status", env={"SEATLEDGER_POSTGRES_PORT": "fifty"})
    assert run.returncode == cli.EXIT_USAGE
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("error: SEATLEDGER_POSTGRES_PORT='fifty' is invalid: ")


def test_a_bad_option_value_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://ledger:{PASSWORD}@db/x?no_such_parameter=1"
    assert cli.main(["migrate", "--database-url", url]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: --database-url is invalid: not a valid PostgreSQL URL")
    assert PASSWORD not in err


def test_a_missing_env_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    run = run_cli("status", env={"SEATLEDGER_ENV_FILE": str(tmp_path / "missing.env")})
    assert run.returncode == cli.EXIT_USAGE
    assert (
        run.stderr
        == f"error: SEATLEDGER_ENV_FILE: no such file {str(tmp_path / 'missing.env')!r}\n"
    )


@contextmanager
def refused_port() -> Iterator[int]:
    """A local port that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_an_unreachable_server_never_shows_the_password() -> None:
    with refused_port() as port:
        url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/test?connect_timeout=2"
        run = run_cli("status", "--database-url", url)
    assert run.returncode == cli.EXIT_ERROR
    assert "STORAGE_UNAVAILABLE" in run.stderr
    assert PASSWORD not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr


def test_a_store_failure_is_a_short_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory where the SQLite file should be: the read models cannot open it."""
    assert cli.main(["migrate", "--db", str(tmp_path)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: the store failed: OperationalError: ")
    assert "Traceback" not in err


def test_an_unexpected_failure_is_a_short_message_and_a_debug_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(_args: argparse.Namespace) -> int:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cli, "status_command", broken)
    assert cli.main(["status"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: unexpected failure: RuntimeError: boom",
        "hint: a bug; --log-level debug shows the traceback",
    ]
    assert cli.main(["status", "--log-level", "debug"]) == cli.EXIT_ERROR
    assert "Traceback" in capsys.readouterr().err


# --- the worker's connections on the real server -------------------------------------------


def test_the_worker_names_itself_in_pg_stat_activity(postgres_schema: str, tmp_path: Path) -> None:
    name = f"t{uuid.uuid4().hex[:12]}"
    base = Settings()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("SEATLEDGER_")},
        "SEATLEDGER_DATABASE_URL": (
            f"postgresql://{base.postgres_user}@{base.postgres_host}:{base.postgres_port}/"
            f"{base.postgres_dbname}"
        ),
        "SEATLEDGER_POSTGRES_PASSWORD": base.postgres_password.get_secret_value(),
        "SEATLEDGER_POSTGRES_SCHEMA": postgres_schema,
        "SEATLEDGER_APPLICATION_NAME": name,
        "SEATLEDGER_POSTGRES_POOL_SIZE": "1",
    }
    log = tmp_path / "worker.log"

    def connections() -> int:
        with psycopg.connect(base.postgres_conninfo(), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (f"{name}-worker",),
            ).fetchone()
        return int(row[0]) if row else 0

    with log.open("wb") as stderr:
        worker = subprocess.Popen(
            [SEATLEDGER, "worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        # the library's pool, the read models' pool and the LISTEN connection
        wait_until(
            lambda: connections() >= 3,
            timeout=60,
            what="the worker's connections",
            interval=0.2,
            alive=worker,
            log=log,
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == cli.EXIT_OK


def test_the_command_line_section_documents_commands_options_and_exit_codes() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text[text.index("## Command line") : text.index("## Migrations")]
    parser = cli.build_parser()
    (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in subparsers.choices:
        assert f"| `{name}` |" in section, name
    parsers = [parser, *subparsers.choices.values()]
    options = {o for p in parsers for a in p._actions for o in a.option_strings if o[:2] == "--"}
    for flag in options:
        if flag != "--help":
            assert f"`{flag}" in section, flag
    for code in (cli.EXIT_OK, cli.EXIT_ERROR, cli.EXIT_USAGE, cli.EXIT_INTERRUPTED):
        assert f"| {code} |" in section, code


def test_a_reader_that_stops_reading_is_not_a_store_failure(tmp_path: Path) -> None:
    """``seatledger ... | head`` closes stdout early: no "store failed", no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: the first write gets EPIPE
    clean = {key: value for key, value in os.environ.items() if not key.startswith("SEATLEDGER_")}
    try:
        done = subprocess.run(
            [SEATLEDGER, "--db", str(tmp_path / "s.db"), "migrate"],
            env=clean,
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == cli.EXIT_ERROR
    assert done.stderr == ""
    assert (tmp_path / "s.db").exists()  # the command itself ran

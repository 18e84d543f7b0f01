"""Settings: the one source of configuration (``SEATLEDGER_*``), its mapping onto the
eventsourcing library's keys, and the harness's rule for an unreachable PostgreSQL server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.application import LRUCache
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from pydantic import SecretStr, ValidationError

from seatledger.application.service import AssignmentService
from seatledger.application.settings import (
    POSTGRES_FACTORY_TOPIC,
    SQLITE_FACTORY_TOPIC,
    Settings,
)
from tests.support import floor

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``SEATLEDGER_*`` variable from the calling environment leaks into a test."""
    for key in list(os.environ):
        if key.startswith("SEATLEDGER_"):
            monkeypatch.delenv(key)
    return monkeypatch


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.persistence == "sqlite"
    assert settings.sqlite_path == Path("seatledger.db")
    assert settings.postgres_host == "127.0.0.1"
    assert settings.postgres_port == 5432
    assert settings.postgres_dbname == "test"
    assert settings.postgres_user == "postgres"
    assert settings.postgres_schema == "public"
    assert settings.command_retries == 24
    assert (settings.hold_ttl_seconds, settings.hold_ttl_min_seconds) == (180, 60)
    assert settings.hold_ttl_max_seconds == 900
    assert (settings.hold_rate_limit, settings.hold_rate_window_seconds) == (5, 60)
    conninfo = psycopg.conninfo.conninfo_to_dict(settings.postgres_conninfo())
    assert conninfo["host"] == "127.0.0.1"
    assert conninfo["port"] == "5432"
    assert conninfo["dbname"] == "test"


def test_seatledger_environment_variables_configure_everything(
    clean_env: pytest.MonkeyPatch,
) -> None:
    for key, value in {
        "SEATLEDGER_PERSISTENCE": "postgres",
        "SEATLEDGER_SQLITE_PATH": "/var/lib/seatledger/events.db",
        "SEATLEDGER_POSTGRES_HOST": "db.internal",
        "SEATLEDGER_POSTGRES_PORT": "6543",
        "SEATLEDGER_POSTGRES_DBNAME": "bookings",
        "SEATLEDGER_POSTGRES_USER": "seatledger",
        "SEATLEDGER_POSTGRES_PASSWORD": "s3cret",
        "SEATLEDGER_POSTGRES_SCHEMA": "capacity",
        "SEATLEDGER_POSTGRES_POOL_SIZE": "3",
        "SEATLEDGER_COMMAND_RETRIES": "2",
        "SEATLEDGER_HOLD_TTL_SECONDS": "240",
        "SEATLEDGER_HOLD_RATE_LIMIT": "7",
    }.items():
        clean_env.setenv(key, value)
    settings = Settings()
    assert settings.persistence == "postgres"
    assert settings.sqlite_path == Path("/var/lib/seatledger/events.db")
    assert settings.postgres_host == "db.internal"
    assert settings.postgres_port == 6543
    assert settings.postgres_dbname == "bookings"
    assert settings.postgres_user == "seatledger"
    assert settings.postgres_password == SecretStr("s3cret")
    assert "s3cret" not in repr(settings)
    assert settings.postgres_schema == "capacity"
    assert settings.postgres_pool_size == 3
    assert settings.command_retries == 2
    rules = settings.hold_rules()
    assert (rules.default_ttl_seconds, rules.rate_limit) == (240, 7)
    # explicit arguments beat the environment
    assert Settings(persistence="memory").persistence == "memory"


def test_sqlite_env_for_the_library(tmp_path: Path) -> None:
    env = Settings(persistence="sqlite", sqlite_path=tmp_path / "x.db").eventsourcing_env()
    assert env["PERSISTENCE_MODULE"] == SQLITE_FACTORY_TOPIC
    assert env["SQLITE_DBNAME"] == str(tmp_path / "x.db")
    assert not [key for key in env if key.startswith("POSTGRES_")]


def test_postgres_env_for_the_library() -> None:
    settings = Settings(
        persistence="postgres",
        postgres_host="db.internal",
        postgres_port=6543,
        postgres_dbname="bookings",
        postgres_user="seatledger",
        postgres_password=SecretStr("s3cret"),
        postgres_schema="capacity",
        postgres_pool_size=3,
        postgres_max_overflow=4,
        postgres_connect_timeout=7,
        postgres_lock_timeout=2,
    )
    env = settings.eventsourcing_env()
    # the library's factory, plus the connection parameters it has no key for
    assert env["PERSISTENCE_MODULE"] == POSTGRES_FACTORY_TOPIC
    assert {key: env[key] for key in env if key.startswith("POSTGRES_")} == {
        "POSTGRES_HOST": "db.internal",
        "POSTGRES_PORT": "6543",
        "POSTGRES_DBNAME": "bookings",
        "POSTGRES_USER": "seatledger",
        "POSTGRES_PASSWORD": "s3cret",
        "POSTGRES_SCHEMA": "capacity",
        "POSTGRES_POOL_SIZE": "3",
        "POSTGRES_MAX_OVERFLOW": "4",
        "POSTGRES_CONNECT_TIMEOUT": "7",
        "POSTGRES_LOCK_TIMEOUT": "2",
        "POSTGRES_EXTRA_CONNINFO": "application_name=seatledger-service",
    }
    # eventsourcing-notes 11: the library's insert functions stay off
    assert "POSTGRES_ENABLE_DB_FUNCTIONS" not in env
    assert not [key for key in env if key.startswith("SQLITE_")]


def test_memory_env_for_the_library() -> None:
    env = Settings(persistence="memory").eventsourcing_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.popo"
    assert not [key for key in env if key.startswith(("POSTGRES_", "SQLITE_"))]


def test_aggregate_cache_settings() -> None:
    """0 means no cache; the library would read a 0 as an unbounded cache."""
    assert "AGGREGATE_CACHE_MAXSIZE" not in Settings(aggregate_cache_size=0).eventsourcing_env()
    with AssignmentService(Settings(persistence="memory", aggregate_cache_size=0)) as service:
        assert service.repository.cache is None
    with AssignmentService(Settings(persistence="memory", aggregate_cache_size=7)) as service:
        assert isinstance(service.repository.cache, LRUCache)
        assert service.repository.cache.maxsize == 7
        assert service.repository.fastforward


LIBRARY_VARIABLES = {
    # unprefixed library keys, and keys with the library's application-name prefix, which
    # here collides with ours (SEATLEDGER_*): none of them may reach the event store
    "PERSISTENCE_MODULE": "eventsourcing.postgres",
    "SEATLEDGER_PERSISTENCE_MODULE": "eventsourcing.postgres",
    "POSTGRES_HOST": "nowhere.invalid",
    "SEATLEDGER_CREATE_TABLE": "n",
    "CREATE_TABLE": "n",
    "IS_SNAPSHOTTING_ENABLED": "n",
    "AGGREGATE_CACHE_MAXSIZE": "1",
    "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
}


@pytest.fixture
def library_variables(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key, value in LIBRARY_VARIABLES.items():
        clean_env.setenv(key, value)
    elsewhere = tmp_path / "elsewhere.db"
    clean_env.setenv("SQLITE_DBNAME", str(elsewhere))
    clean_env.setenv("SEATLEDGER_SQLITE_DBNAME", str(elsewhere))
    return elsewhere


def test_a_memory_service_ignores_library_variables_in_the_environment(
    library_variables: Path,
) -> None:
    """A deliberate design: the settings are the single source of the store's configuration,
    so ``PERSISTENCE_MODULE`` (or ``SEATLEDGER_PERSISTENCE_MODULE``, the library's prefixed
    form) in ``os.environ`` cannot turn a memory service into a PostgreSQL one."""
    with AssignmentService(Settings(persistence="memory")) as service:
        assert type(service.recorder) is POPOApplicationRecorder
        assert service.env.get("PERSISTENCE_MODULE") == "eventsourcing.popo"
        assert service.snapshots is not None  # the settings' snapshot store, not the environment's
        assert service.factory.compressor() is None
        service.create_restaurant(floor())
        assert service.get_restaurant("r1").restaurant_id == "r1"


def test_a_sqlite_service_ignores_library_variables_in_the_environment(
    library_variables: Path, tmp_path: Path
) -> None:
    path = tmp_path / "configured.db"
    with AssignmentService(Settings(persistence="sqlite", sqlite_path=path)) as service:
        assert type(service.recorder) is SQLiteApplicationRecorder
        service.create_restaurant(floor())  # tables were created despite CREATE_TABLE=n
        assert service.recorder.max_notification_id()
    assert path.exists()
    assert not library_variables.exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"persistence": "mysql"},
        {"postgres_port": "not-a-port"},
        {"postgres_schema": "Bad-Schema"},
        {"postgres_schema": "x; DROP TABLE y"},
        {"postgres_pool_size": 0},
        {"command_retries": -1},
        {"hold_ttl_seconds": 0},
        {"hold_ttl_min_seconds": 600, "hold_ttl_max_seconds": 300},
        {"aggregate_cache_size": -1},
    ],
    ids=",".join,
)
def test_invalid_settings_are_rejected(clean_env: pytest.MonkeyPatch, kwargs: Any) -> None:
    with pytest.raises(ValidationError):
        Settings(**kwargs)


def test_invalid_environment_variables_are_rejected(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SEATLEDGER_PERSISTENCE", "mongodb")
    with pytest.raises(ValidationError, match="persistence"):
        Settings()
    clean_env.setenv("SEATLEDGER_PERSISTENCE", "memory")
    clean_env.setenv("SEATLEDGER_COMMAND_RETRIES", "many")
    with pytest.raises(ValidationError, match="command_retries"):
        Settings()


def test_settings_are_frozen() -> None:
    settings = Settings(persistence="memory")
    with pytest.raises(ValidationError):
        settings.persistence = "postgres"  # type: ignore[misc]


# --- PostgreSQL settings reach the library, and the CI rule of the harness ------------------


def test_postgres_settings_reach_the_library(postgres_schema: str) -> None:
    """The service's tables land in the configured schema (this is also the test the CI-rule
    tests below run in a subprocess)."""
    settings = Settings(persistence="postgres", postgres_schema=postgres_schema)
    with AssignmentService(settings) as service:
        assert isinstance(service.recorder, PostgresApplicationRecorder)
        service.create_restaurant(floor())
    with psycopg.connect(settings.postgres_conninfo()) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (postgres_schema,),
        ).fetchall()
    assert ("seatledger_events",) in tables


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port that refuses connections: bound (so nothing else takes it), never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def run_postgres_test(port: int, *, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["SEATLEDGER_POSTGRES_PORT"] = str(port)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            f"{Path(__file__).relative_to(ROOT)}::test_postgres_settings_reach_the_library",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_under_ci_an_unreachable_server_fails_the_run(refused_port: int) -> None:
    run = run_postgres_test(refused_port, ci=True)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "unreachable" in output
    assert "CI=true requires the server" in output
    assert "1 error" in output


def test_outside_ci_an_unreachable_server_skips_its_tests(refused_port: int) -> None:
    run = run_postgres_test(refused_port, ci=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "1 skipped" in output
    assert "unreachable" in output

"""Test harness: every service test runs on memory, SQLite and PostgreSQL.

PostgreSQL comes from the settings (``SEATLEDGER_POSTGRES_*``, default 127.0.0.1:5432, database
``test``). Each test works in its own schema, dropped afterwards; the run's schemas share a
prefix so a crashed run's leftovers are removed by the next. With ``CI=true`` an unreachable
server fails the run; elsewhere its tests are skipped with the reason.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from tests.second_server import Server, second_server

__all__ = ["second_server"]  # one throwaway server per run, for every shard test

BACKENDS = ("memory", "sqlite", "postgres")
RUN_PREFIX = f"sl_test_{os.getpid()}_"


@functools.cache
def postgres_unreachable() -> str | None:
    """Why the server cannot be used, or None. Checked once per run; the first successful
    check also removes schemas left behind by dead runs."""
    try:
        with psycopg.connect(Settings().postgres_conninfo(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        where = Settings().model_copy(update={"persistence": "postgres"}).describe_store()
        return f"PostgreSQL unreachable ({where}): {exc}"  # never the password
    drop_stale_schemas()
    return None


def drop_stale_schemas() -> None:
    """Remove schemas left by test runs whose process is gone (a crashed or killed run)."""
    with psycopg.connect(Settings().postgres_conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'sl\\_test\\_%'"
        ).fetchall()
    for (name,) in rows:
        pid = name.split("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            drop_schemas(f"sl_test_{pid}_")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def require_postgres() -> None:
    reason = postgres_unreachable()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} -- CI=true requires the server", pytrace=False)
    pytest.skip(f"{reason} (set CI=true to make this a failure)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "postgres":
            item.add_marker(pytest.mark.postgres)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if postgres_unreachable.cache_info().currsize and postgres_unreachable() is None:
        drop_schemas(RUN_PREFIX)


def drop_schemas(prefix: str) -> None:
    with psycopg.connect(Settings().postgres_conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (prefix + "%",)
        ).fetchall()
        for (name,) in rows:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A fresh schema for one test, dropped afterwards."""
    require_postgres()
    name = RUN_PREFIX + uuid.uuid4().hex[:10]
    try:
        yield name
    finally:
        with psycopg.connect(Settings().postgres_conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def settings_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if backend == "postgres":
        schema = request.getfixturevalue("postgres_schema")
        # the service suite keeps its read models current in-process; worker mode (the
        # PostgreSQL default) is tested explicitly
        return Settings(
            persistence="postgres", postgres_schema=schema, projection_mode="in_process"
        )
    if backend == "sqlite":
        return Settings(persistence="sqlite", sqlite_path=tmp_path / "seatledger.db")
    return Settings(persistence="memory")


@pytest.fixture
def settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return settings_for(backend, request, tmp_path)


@pytest.fixture
def seatledger_settings(settings: Settings) -> Settings:
    """Makes the plugin's ``seatledger_service``/``seatledger_scenario`` run on every backend."""
    return settings


@pytest.fixture
def service(seatledger_service: AssignmentService) -> AssignmentService:
    """The plugin's service, on this test's backend."""
    return seatledger_service


@pytest.fixture
def sharded(postgres_schema: str, second_server: Server) -> Iterator[Settings]:
    """Shard ``a`` on the shared server (this test's schema), ``b`` on the second server
    (a schema of its own, dropped afterwards); r1 on a, r2 on b, others by hash."""
    schema_b = f"sl_shard_{uuid.uuid4().hex[:10]}"
    base = Settings()
    shared = (
        f"postgresql://{base.postgres_user}@{base.postgres_host}:{base.postgres_port}"
        f"/{base.postgres_dbname}"
    )
    yield Settings(
        shards={"a": f"{shared}#{postgres_schema}", "b": f"{second_server.url()}#{schema_b}"},
        shard_map={"r1": "a", "r2": "b"},
        projection_mode="in_process",
        shard_map_refresh_seconds=60,
        relay_lease_seconds=5,
    )
    with psycopg.connect(second_server.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema_b)))

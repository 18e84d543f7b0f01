"""Schema management is explicit and race-free (issue 8, item 2).

``seatledger migrate`` creates the schema, the event table and the read models, once, under an
advisory lock; a process with ``MIGRATE_ON_START=false`` runs no DDL and refuses a store that is
missing anything with an error naming ``seatledger migrate``; ``migrate --status`` and ``status``
write nothing; processes starting at once on a fresh schema all succeed.
"""

from __future__ import annotations

import multiprocessing
import queue
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from seatledger.application import cli
from seatledger.application.errors import InfrastructureCode
from seatledger.application.schema import (
    POSTGRES_EVENTS_TABLE,
    StoreSchema,
    migrate_store,
)
from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings
from seatledger.domain.errors import SeatLedgerError
from seatledger.projections.migrations import LATEST
from tests.conftest import RUN_PREFIX, drop_schemas, require_postgres
from tests.support import booking, floor

STARTERS = 8
START_ROUNDS = 3
BARRIER_TIMEOUT = 120.0  # a safety net against a hung run, not synchronisation


def schema_exists(name: str) -> bool:
    with psycopg.connect(Settings().postgres_conninfo(), autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)).fetchone()
    return row is not None


def catalog(name: str) -> list[tuple[Any, ...]]:
    """Everything in a schema (relations, types, functions) and the migration ledger."""
    with psycopg.connect(Settings().postgres_conninfo(), autocommit=True) as conn:
        objects = conn.execute(
            "SELECT 'class', relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE nspname = %(s)s UNION ALL"
            " SELECT 'type', typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
            " WHERE nspname = %(s)s UNION ALL"
            " SELECT 'proc', proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE nspname = %(s)s ORDER BY 1, 2",
            {"s": name},
        ).fetchall()
        ledger = conn.execute(
            sql.SQL("SELECT version, applied_at FROM {}.seatledger_schema_migrations").format(
                sql.Identifier(name)
            )
        ).fetchall()
    return [*objects, *ledger]


@pytest.fixture(params=["sqlite", "postgres"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings naming a store that does not exist yet, starts refusing to migrate."""
    if request.param == "postgres":
        schema = request.getfixturevalue("postgres_schema")
        return Settings(
            persistence="postgres",
            postgres_schema=schema,
            projection_mode="off",
            migrate_on_start=False,
        )
    return Settings(
        persistence="sqlite",
        sqlite_path=tmp_path / "not" / "yet" / "ledger.db",
        migrate_on_start=False,
    )


def store_args(settings: Settings) -> list[str]:
    if settings.persistence == "sqlite":
        return ["--db", str(settings.sqlite_path)]
    return ["--database-url", "postgresql://postgres@127.0.0.1:5432/test"]


@pytest.fixture
def cli_env(fresh: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI sees the same schema and refuses to migrate on start."""
    monkeypatch.setenv("SEATLEDGER_POSTGRES_SCHEMA", fresh.postgres_schema)
    monkeypatch.setenv("SEATLEDGER_MIGRATE_ON_START", "false")
    return fresh


def nothing_created(settings: Settings) -> bool:
    if settings.persistence == "sqlite":
        return not settings.sqlite_path.parent.parent.exists()
    return not schema_exists(settings.postgres_schema)


def test_without_migrate_on_start_a_fresh_store_is_refused_and_left_alone(
    fresh: Settings,
) -> None:
    with pytest.raises(SeatLedgerError) as caught:
        AssignmentService(fresh)
    err = caught.value
    assert err.code == InfrastructureCode.STORAGE_UNAVAILABLE
    assert "seatledger migrate" in err.message
    assert "seatledger migrate" in err.hint
    assert err.details["reason"] == "not_migrated"
    assert nothing_created(fresh)


def test_migrate_creates_everything_once(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["migrate", *store_args(cli_env)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "created the store" in out
    assert "created the event table" in out
    assert f"applied {LATEST}:" in out
    assert cli.main(["migrate", *store_args(cli_env)]) == cli.EXIT_OK
    assert capsys.readouterr().out == f"up to date (version {LATEST})\n"
    # a process that may not run DDL now opens the store and works
    with AssignmentService(cli_env.model_copy(update={"projection_mode": "in_process"})) as svc:
        svc.create_restaurant(floor())
        svc.register_booking(booking("b1"))
        assert svc.event_source.max_id() > 0


def test_migrate_status_and_status_write_nothing(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["migrate", "--status", *store_args(cli_env)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "store        missing" in out
    assert f"{LATEST:4d}  pending" in out
    assert cli.main(["status", *store_args(cli_env)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "[STORAGE_UNAVAILABLE]" in err
    assert "seatledger migrate" in err
    assert "Traceback" not in err
    assert nothing_created(cli_env)


def test_status_reads_a_migrated_postgres_store_without_changing_it(
    postgres_schema: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(persistence="postgres", postgres_schema=postgres_schema)
    migrate_store(settings)
    before = catalog(postgres_schema)
    monkeypatch.setenv("SEATLEDGER_POSTGRES_SCHEMA", postgres_schema)
    assert (
        cli.main(["status", "--json", "--database-url", "postgresql://postgres@127.0.0.1/test"])
        == 0
    )
    assert (
        cli.main(["migrate", "--status", "--database-url", "postgresql://postgres@127.0.0.1/test"])
        == 0
    )
    capsys.readouterr()
    assert catalog(postgres_schema) == before


def test_a_dropped_event_table_is_not_recreated_without_migrate(postgres_schema: str) -> None:
    """The library's own CREATE TABLE at construction is off: only a migration creates."""
    settings = Settings(persistence="postgres", postgres_schema=postgres_schema)
    migrate_store(settings)
    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP TABLE {}.{}").format(
                sql.Identifier(postgres_schema), sql.Identifier(POSTGRES_EVENTS_TABLE)
            )
        )
    refusing = settings.model_copy(update={"migrate_on_start": False})
    with pytest.raises(SeatLedgerError, match="seatledger migrate") as caught:
        AssignmentService(refusing)
    assert caught.value.details["missing"] == ["the event table"]
    assert not StoreSchema(settings).inspect().event_store
    with AssignmentService(settings) as service:  # MIGRATE_ON_START=true: the same migration
        assert service.event_source.max_id() == 0
    assert StoreSchema(settings).inspect().ready


# --- processes starting at once on a fresh schema ----------------------------------------------


def start_in_process(schemas: list[str], index: int, barrier: Any, results: Any) -> None:
    """One process: for each round, wait for the others, then open the fresh store (which
    migrates it) and write to it."""
    for round_no, schema in enumerate(schemas):
        barrier.wait(BARRIER_TIMEOUT)
        settings = Settings(
            persistence="postgres",
            postgres_schema=schema,
            projection_mode="in_process",
            postgres_pool_size=1,
            postgres_max_overflow=1,
            read_model_pool_size=1,
        )
        try:
            with AssignmentService(settings) as service:
                service.create_restaurant(floor(f"r{index}"))
                service.register_booking(booking("b1", restaurant_id=f"r{index}"))
            results.put((round_no, index, "ok"))
        except Exception as exc:  # reported to the test, which shows it
            results.put((round_no, index, f"{type(exc).__name__}: {exc}"))


@pytest.fixture
def start_schemas() -> Iterator[list[str]]:
    require_postgres()
    prefix = f"{RUN_PREFIX}start_{uuid.uuid4().hex[:6]}_"
    try:
        yield [f"{prefix}{round_no}" for round_no in range(START_ROUNDS)]
    finally:
        drop_schemas(prefix)


@pytest.mark.postgres
@pytest.mark.slow
def test_processes_starting_at_once_on_a_fresh_schema_all_succeed(
    start_schemas: list[str],
) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(STARTERS)
    results = context.Queue()
    processes = [
        context.Process(target=start_in_process, args=(start_schemas, i, barrier, results))
        for i in range(STARTERS)
    ]
    outcomes: dict[tuple[int, int], str] = {}
    try:
        for process in processes:
            process.start()
        for _ in range(START_ROUNDS * STARTERS):
            round_no, index, outcome = results.get(timeout=BARRIER_TIMEOUT * 2)
            outcomes[round_no, index] = outcome
        for process in processes:
            process.join(BARRIER_TIMEOUT)
    except queue.Empty:
        pytest.fail(f"starters stopped reporting; got {outcomes}")
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join()
    failures = {key: outcome for key, outcome in outcomes.items() if outcome != "ok"}
    assert failures == {}
    assert [p.exitcode for p in processes] == [0] * STARTERS
    for schema in start_schemas:
        settings = Settings(persistence="postgres", postgres_schema=schema)
        assert StoreSchema(settings).inspect().ready
        with AssignmentService(settings.model_copy(update={"projection_mode": "off"})) as reader:
            assert reader.event_source.max_id() > 0

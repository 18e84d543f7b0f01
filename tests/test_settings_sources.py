"""Where settings come from besides ``SEATLEDGER_*`` variables: one database URL, a ``.env``
file, a secrets directory; the connection parameters every PostgreSQL connection gets
(application_name, sslmode, a URL's libpq options); one-line descriptions of bad settings."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import tuple_row
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsError

from seatledger.application.service import AssignmentService
from seatledger.application.settings import Settings, describe_invalid_settings
from seatledger.projections.db import PostgresReadModels
from tests.support import floor

PASSWORD = "pw-Zq7-never-shown"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No ``SEATLEDGER_*`` variable from the calling environment, and a working directory
    without a ``.env`` file."""
    for key in list(os.environ):
        if key.startswith("SEATLEDGER_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


# --- the database URL ---------------------------------------------------------------------


def test_a_postgres_url_sets_the_connection_settings(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv(
        "SEATLEDGER_DATABASE_URL",
        f"postgresql://ledger:{PASSWORD}@db.internal:6543/bookings"
        "?sslmode=require&connect_timeout=9&options=-c%20statement_timeout%3D5000",
    )
    settings = Settings()
    assert settings.persistence == "postgres"
    assert (settings.postgres_host, settings.postgres_port) == ("db.internal", 6543)
    assert (settings.postgres_dbname, settings.postgres_user) == ("bookings", "ledger")
    assert settings.postgres_password == SecretStr(PASSWORD)
    assert settings.postgres_sslmode == "require"
    assert settings.postgres_connect_timeout == 9
    assert PASSWORD not in repr(settings)
    ours = conninfo_to_dict(settings.postgres_conninfo())
    assert ours["options"] == "-c statement_timeout=5000"
    assert ours["sslmode"] == "require"
    assert ours["password"] == PASSWORD
    library = settings.eventsourcing_env()
    assert library["POSTGRES_HOST"] == "db.internal"
    assert library["POSTGRES_PASSWORD"] == PASSWORD
    extra = conninfo_to_dict(library["POSTGRES_EXTRA_CONNINFO"])
    assert extra == {
        "options": "-c statement_timeout=5000",
        "sslmode": "require",
        "application_name": "seatledger-service",
    }


@pytest.mark.parametrize(
    ("url", "persistence", "path"),
    [
        ("sqlite:///ledger/events.db", "sqlite", Path("ledger/events.db")),
        (
            "sqlite:////var/lib/seatledger/events.db",
            "sqlite",
            Path("/var/lib/seatledger/events.db"),
        ),
        ("memory://", "memory", Path("seatledger.db")),
    ],
)
def test_sqlite_and_memory_urls(
    clean_env: pytest.MonkeyPatch, url: str, persistence: str, path: Path
) -> None:
    clean_env.setenv("SEATLEDGER_DATABASE_URL", url)
    settings = Settings()
    assert (settings.persistence, settings.sqlite_path) == (persistence, path)


def test_the_postgres_scheme_alias_and_an_empty_url(clean_env: pytest.MonkeyPatch) -> None:
    assert Settings(database_url="postgres://other:5433/x").postgres_host == "other"
    clean_env.setenv("SEATLEDGER_DATABASE_URL", "")
    clean_env.setenv("SEATLEDGER_PERSISTENCE", "memory")
    settings = Settings()
    assert settings.database_url is None
    assert settings.persistence == "memory"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://db/x",
        "db.internal:5432",
        "sqlite://host/events.db",
        "sqlite:///",
        "sqlite:///events.db?mode=ro",
        "memory://anything",
        f"postgresql://ledger:{PASSWORD}@db/x?no_such_parameter=1",
        f"postgresql://ledger:{PASSWORD}@db:port/x",
        "postgresql://ledger:pw%zz@db/x",
    ],
)
def test_bad_urls_are_refused_without_showing_the_password(
    clean_env: pytest.MonkeyPatch, url: str
) -> None:
    clean_env.setenv("SEATLEDGER_DATABASE_URL", url)
    with pytest.raises(ValidationError) as caught:
        Settings()
    line = describe_invalid_settings(caught.value)
    assert line.startswith("SEATLEDGER_DATABASE_URL is invalid: ")
    assert "\n" not in line
    for shown in (line, str(caught.value)):
        assert PASSWORD not in shown
        assert "pw%zz" not in shown
        assert "%zz" not in shown


def test_within_a_source_the_url_wins_over_the_parts_it_names(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("SEATLEDGER_PERSISTENCE", "sqlite")
    clean_env.setenv("SEATLEDGER_POSTGRES_HOST", "ignored.internal")
    clean_env.setenv("SEATLEDGER_POSTGRES_PASSWORD", PASSWORD)
    clean_env.setenv("SEATLEDGER_POSTGRES_SCHEMA", "capacity")
    clean_env.setenv("SEATLEDGER_DATABASE_URL", "postgresql://ledger@db.internal/bookings")
    settings = Settings()
    assert (settings.persistence, settings.postgres_host) == ("postgres", "db.internal")
    # parts the URL leaves out keep their own values
    assert settings.postgres_password == SecretStr(PASSWORD)
    assert settings.postgres_schema == "capacity"
    assert settings.postgres_port == 5432


def test_values_in_code_beat_a_url_in_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    """The demo and the CLI's --db pass their store in code: a production URL in the
    environment must not redirect them."""
    clean_env.setenv("SEATLEDGER_DATABASE_URL", "postgresql://ledger@db.internal/bookings")
    settings = Settings(persistence="sqlite", sqlite_path="demo.db")
    assert (settings.persistence, settings.sqlite_path) == ("sqlite", Path("demo.db"))
    clean_env.setenv("SEATLEDGER_PERSISTENCE", "postgres")
    clean_env.setenv("SEATLEDGER_POSTGRES_HOST", "db.internal")
    settings = Settings(database_url="sqlite:///cli.db")
    assert (settings.persistence, settings.sqlite_path) == ("sqlite", Path("cli.db"))


# --- the .env file and the secrets directory ----------------------------------------------


def test_a_dot_env_file_in_the_working_directory(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "SEATLEDGER_DATABASE_URL=memory://\nSEATLEDGER_COMMAND_RETRIES=3\nOTHER_APP_KEY=1\n"
    )
    settings = Settings()
    assert (settings.persistence, settings.command_retries) == ("memory", 3)
    clean_env.setenv("SEATLEDGER_COMMAND_RETRIES", "4")  # the environment beats the file
    assert Settings().command_retries == 4


def test_seatledger_env_file_names_another_file_or_none(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("SEATLEDGER_COMMAND_RETRIES=3\n")
    other = tmp_path / "deploy" / "seatledger.env"
    other.parent.mkdir()
    other.write_text("SEATLEDGER_COMMAND_RETRIES=5\n")
    clean_env.setenv("SEATLEDGER_ENV_FILE", str(other))
    assert Settings().command_retries == 5
    clean_env.setenv("SEATLEDGER_ENV_FILE", "")
    assert Settings().command_retries == 24
    clean_env.setenv("SEATLEDGER_ENV_FILE", str(tmp_path / "missing.env"))
    with pytest.raises(SettingsError, match="SEATLEDGER_ENV_FILE: no such file"):
        Settings()


def test_a_secrets_directory(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "seatledger_postgres_password").write_text(PASSWORD + "\n")
    clean_env.setenv("SEATLEDGER_SECRETS_DIR", str(secrets))
    clean_env.setenv("SEATLEDGER_DATABASE_URL", "postgresql://ledger@db.internal/bookings")
    settings = Settings()
    assert settings.postgres_password == SecretStr(PASSWORD)
    assert conninfo_to_dict(settings.postgres_conninfo())["password"] == PASSWORD
    clean_env.setenv("SEATLEDGER_POSTGRES_PASSWORD", "from-env")
    assert Settings().postgres_password == SecretStr("from-env")
    clean_env.setenv("SEATLEDGER_SECRETS_DIR", str(tmp_path / "absent"))
    with pytest.raises(SettingsError, match="SEATLEDGER_SECRETS_DIR: no such directory"):
        Settings()


# --- application_name and sslmode ---------------------------------------------------------


def test_application_name_is_the_name_and_the_process_role(clean_env: pytest.MonkeyPatch) -> None:
    assert Settings().postgres_application_name == "seatledger-service"
    settings = Settings(application_name="booking-api", process_role="worker")
    conninfo = conninfo_to_dict(settings.postgres_conninfo())
    assert conninfo["application_name"] == "booking-api-worker"
    clean_env.setenv("SEATLEDGER_DATABASE_URL", "postgresql://db/x?application_name=from-url")
    assert Settings().postgres_application_name == "from-url-service"
    clean_env.setenv("SEATLEDGER_POSTGRES_SSLMODE", "verify-full")
    assert conninfo_to_dict(Settings().postgres_conninfo())["sslmode"] == "verify-full"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"application_name": "x" * 41},
        {"application_name": "caf\u00e9"},
        {"application_name": ""},
        {"process_role": "Worker"},
        {"postgres_sslmode": "sometimes"},
    ],
    ids=str,
)
def test_bad_connection_settings_are_refused(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Settings(**kwargs)  # type: ignore[arg-type]


def test_every_connection_of_a_service_names_itself(postgres_schema: str) -> None:
    """On the real server: the library's pool and the read models' pool both carry the
    application_name, sslmode and a URL's options."""
    name = f"t{uuid.uuid4().hex[:12]}"
    base = Settings()
    url = (
        f"postgresql://{base.postgres_user}@{base.postgres_host}:{base.postgres_port}/"
        f"{base.postgres_dbname}?sslmode=disable&options=-c%20statement_timeout%3D4321"
    )
    settings = Settings(
        database_url=url,
        postgres_password=base.postgres_password,
        postgres_schema=postgres_schema,
        application_name=name,
        projection_mode="off",
    )
    with AssignmentService(settings) as service:
        service.create_restaurant(floor())
        recorder, read_models = service.recorder, service.read_models
        assert isinstance(recorder, PostgresApplicationRecorder)
        assert isinstance(read_models, PostgresReadModels)
        recorder.datastore.pool.wait()  # every pooled connection is open
        read_models.pool.wait()
        with recorder.datastore.get_connection() as conn:
            library = _session(conn)
        with read_models.pool.connection() as conn:
            read_side = _session(conn)
        with psycopg.connect(base.postgres_conninfo(), autocommit=True) as conn:
            named = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (f"{name}-service",),
            ).fetchone()
    for session in (library, read_side):
        assert session["application_name"] == f"{name}-service"
        assert session["activity_name"] == f"{name}-service"
        assert session["statement_timeout"] == "4321ms"
        assert session["sslmode"] == "disable"
    assert read_side["search_path"] == postgres_schema
    assert named is not None
    assert named[0] >= settings.postgres_pool_size + 1


def _session(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """What the server and libpq say about one connection."""
    row = (
        conn.cursor(row_factory=tuple_row)
        .execute(
            "SELECT current_setting('application_name'), current_setting('statement_timeout'), "
            "current_setting('search_path'), "
            "(SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid())"
        )
        .fetchone()
    )
    assert row is not None
    return {
        "application_name": str(row[0]),
        "statement_timeout": str(row[1]),
        "search_path": str(row[2]),
        "activity_name": str(row[3]),
        "sslmode": conn.info.get_parameters()["sslmode"],
    }


def test_a_bad_setting_is_described_in_one_line(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SEATLEDGER_POSTGRES_PORT", "fifty")
    clean_env.setenv("SEATLEDGER_POSTGRES_PASSWORD", PASSWORD)
    with pytest.raises(ValidationError) as caught:
        Settings()
    line = describe_invalid_settings(caught.value)
    assert line.startswith("SEATLEDGER_POSTGRES_PORT='fifty' is invalid: ")
    assert "integer" in line
    assert describe_invalid_settings(caught.value, names={"postgres_port": "--port"}).startswith(
        "--port='fifty'"
    )
    clean_env.delenv("SEATLEDGER_POSTGRES_PORT")
    with pytest.raises(ValidationError) as caught:
        Settings(hold_ttl_min_seconds=600, hold_ttl_max_seconds=300)
    assert describe_invalid_settings(caught.value) == (
        "hold_ttl_min_seconds must not exceed hold_ttl_max_seconds"
    )

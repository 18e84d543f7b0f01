"""All configuration in one pydantic-settings model (environment prefix ``SEATLEDGER_``).

The settings are the single source of the event store's configuration: they are mapped onto
the ``eventsourcing`` library's keys here, and the service does not let the library read the
process environment on its own (so ``SEATLEDGER_POSTGRES_SCHEMA`` cannot mean two things).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from psycopg.conninfo import make_conninfo
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from seatledger.domain.planner import DEFAULT_SEARCH_BUDGET
from seatledger.domain.service_day import HoldRules

Persistence = Literal["sqlite", "postgres", "memory"]
ProjectionMode = Literal["in_process", "worker", "off"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEATLEDGER_", extra="ignore", frozen=True)

    #: sqlite (embedded default), postgres (production) or memory (tests, nothing persists).
    persistence: Persistence = "sqlite"
    sqlite_path: Path = Path("seatledger.db")

    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_dbname: str = "test"
    postgres_user: str = "postgres"
    postgres_password: SecretStr = SecretStr("")
    postgres_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    postgres_pool_size: int = Field(default=5, ge=1)
    postgres_max_overflow: int = Field(default=10, ge=0)
    postgres_connect_timeout: int = Field(default=5, ge=1)
    postgres_lock_timeout: int = Field(default=5, ge=0)

    #: Cached aggregates per process (service days are fast-forwarded, never served stale).
    aggregate_cache_size: int = Field(default=256, ge=0)
    #: How often a command is re-run on fresh state after an optimistic-concurrency conflict.
    command_retries: int = Field(default=8, ge=0)

    #: Who keeps the read models current: a thread of the service (in_process; the default
    #: for SQLite and memory), a separate ``seatledger worker`` (the default for PostgreSQL),
    #: or nobody (off). None picks the default for the persistence.
    projection_mode: ProjectionMode | None = None
    projection_page_size: int = Field(default=500, ge=1, le=10_000)
    projection_poll_seconds: float = Field(default=1.0, gt=0)
    #: Apply pending read-model migrations when a service or worker starts.
    migrate_on_start: bool = True
    read_model_pool_size: int = Field(default=4, ge=1)
    #: Read-your-writes: extra reads of the members read model, and the pause between them.
    read_your_writes_retries: int = Field(default=2, ge=0)
    read_your_writes_delay_ms: int = Field(default=15, ge=0)
    availability_statement_timeout_ms: int = Field(default=2000, ge=1)

    relay_batch_size: int = Field(default=100, ge=1)
    relay_max_attempts: int = Field(default=10, ge=1)
    relay_base_delay_seconds: float = Field(default=1.0, gt=0)
    relay_max_delay_seconds: float = Field(default=300.0, gt=0)
    relay_lease_seconds: float = Field(default=60.0, gt=0)
    relay_idle_seconds: float = Field(default=1.0, gt=0)

    #: Automated assignment: confirms per auto-assign (drift retries = attempts - 1).
    auto_assign_max_attempts: int = Field(default=2, ge=1, le=10)
    auto_assign_retry_on_drift: bool = True
    #: Table sets one quote's planner may examine before it returns the best found so far.
    planner_search_budget: int = Field(default=DEFAULT_SEARCH_BUDGET, ge=1)

    hold_ttl_seconds: int = Field(default=180, ge=1)
    hold_ttl_min_seconds: int = Field(default=60, ge=1)
    hold_ttl_max_seconds: int = Field(default=900, ge=1)
    hold_rate_limit: int = Field(default=5, ge=1)
    hold_rate_window_seconds: int = Field(default=60, ge=1)

    @model_validator(mode="after")
    def _ttl_bounds(self) -> Settings:
        if not self.hold_ttl_min_seconds <= self.hold_ttl_max_seconds:
            raise ValueError("hold_ttl_min_seconds must not exceed hold_ttl_max_seconds")
        return self

    @property
    def effective_projection_mode(self) -> ProjectionMode:
        if self.projection_mode is not None:
            return self.projection_mode
        return "worker" if self.persistence == "postgres" else "in_process"

    def hold_rules(self) -> HoldRules:
        return HoldRules(
            default_ttl_seconds=self.hold_ttl_seconds,
            min_ttl_seconds=self.hold_ttl_min_seconds,
            max_ttl_seconds=self.hold_ttl_max_seconds,
            rate_limit=self.hold_rate_limit,
            rate_window_seconds=self.hold_rate_window_seconds,
        )

    def postgres_conninfo(self) -> str:
        """A libpq connection string for our own (non-library) connections."""
        return make_conninfo(
            host=self.postgres_host,
            port=self.postgres_port,
            dbname=self.postgres_dbname,
            user=self.postgres_user,
            password=self.postgres_password.get_secret_value() or None,
            connect_timeout=self.postgres_connect_timeout,
        )

    def eventsourcing_env(self) -> dict[str, str]:
        """The ``eventsourcing`` library's environment for these settings."""
        env = {
            "AGGREGATE_CACHE_MAXSIZE": str(self.aggregate_cache_size),
            "AGGREGATE_CACHE_FASTFORWARD": "y",
        }
        if self.aggregate_cache_size == 0:
            del env["AGGREGATE_CACHE_MAXSIZE"]
        if self.persistence == "sqlite":
            env |= {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        elif self.persistence == "postgres":
            env |= {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_HOST": self.postgres_host,
                "POSTGRES_PORT": str(self.postgres_port),
                "POSTGRES_DBNAME": self.postgres_dbname,
                "POSTGRES_USER": self.postgres_user,
                "POSTGRES_PASSWORD": self.postgres_password.get_secret_value(),
                "POSTGRES_SCHEMA": self.postgres_schema,
                "POSTGRES_POOL_SIZE": str(self.postgres_pool_size),
                "POSTGRES_MAX_OVERFLOW": str(self.postgres_max_overflow),
                "POSTGRES_CONNECT_TIMEOUT": str(self.postgres_connect_timeout),
                "POSTGRES_LOCK_TIMEOUT": str(self.postgres_lock_timeout),
            }
        else:
            env["PERSISTENCE_MODULE"] = "eventsourcing.popo"
        return env

"""All configuration in one pydantic-settings model (environment prefix ``SEATLEDGER_``).

The settings are the single source of the event store's configuration: they are mapped onto
the ``eventsourcing`` library's keys here, and the service does not let the library read the
process environment on its own (so ``SEATLEDGER_POSTGRES_SCHEMA`` cannot mean two things).

Sources, highest first: values passed in code (the CLI's options), ``SEATLEDGER_*``
environment variables, the ``.env`` file (``SEATLEDGER_ENV_FILE``, default ``./.env``), files in
the secrets directory (``SEATLEDGER_SECRETS_DIR``, none by default), the defaults. Within one
source, ``database_url`` wins over the parts it names (see :mod:`.database_url`); a part it
leaves out, such as a password kept in a secrets file, keeps its own value.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Literal

from psycopg.conninfo import make_conninfo
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from seatledger.application.database_url import postgres_extra_params, url_settings
from seatledger.domain.planner import DEFAULT_SEARCH_BUDGET
from seatledger.domain.service_day import HoldRules

Persistence = Literal["sqlite", "postgres", "memory"]
ProjectionMode = Literal["in_process", "worker", "off"]
PublisherKind = Literal["log", "nats", "webhook"]
PUBLISHER_SCHEMES: dict[str, PublisherKind] = {
    "log": "log",
    "nats": "nats",
    "tls": "nats",
    "http": "webhook",
    "https": "webhook",
}
SSLMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

ENV_PREFIX = "SEATLEDGER_"
#: Where the ``.env`` file and the secrets directory are (read from the process environment).
ENV_FILE_VARIABLE = "SEATLEDGER_ENV_FILE"
SECRETS_DIR_VARIABLE = "SEATLEDGER_SECRETS_DIR"
DEFAULT_ENV_FILE = ".env"
#: Settings whose values are never shown, not even in a validation error.
SECRET_SETTINGS = frozenset(
    {"postgres_password", "database_url", "publisher", "webhook_secret", "shards"}
)
#: The factory that gives the library's connections our extra parameters (application_name).
POSTGRES_FACTORY_TOPIC = "seatledger.application.postgres_store:PostgresStoreFactory"
#: The factory whose pool waits as long as SQLite does (see sqlite_store).
SQLITE_FACTORY_TOPIC = "seatledger.application.sqlite_store:SQLiteStoreFactory"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        frozen=True,
        env_file=DEFAULT_ENV_FILE,
        # a ValidationError printed anywhere must not show a password inside a URL
        hide_input_in_errors=True,
    )

    #: One URL for the store: ``postgresql://...``, ``sqlite:///path`` or ``memory://``. It sets
    #: ``persistence`` and the connection parts it names (see :mod:`.database_url`).
    database_url: SecretStr | None = None

    #: sqlite (embedded default), postgres (production) or memory (tests, nothing persists).
    persistence: Persistence = "sqlite"
    sqlite_path: Path = Path("seatledger.db")

    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_dbname: str = "test"
    postgres_user: str = "postgres"
    postgres_password: SecretStr = SecretStr("")
    postgres_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    #: The connection budget (docs/operations.md): the event store's pool keeps
    #: ``postgres_pool_size`` connections open and grows by up to ``postgres_max_overflow``
    #: under load; the read models' pool keeps one and grows to ``read_model_pool_size``.
    postgres_pool_size: int = Field(default=1, ge=1)
    postgres_max_overflow: int = Field(default=3, ge=0)
    #: Seconds to open a connection, and the longest a command waits for one from a pool
    #: before it fails with STORAGE_UNAVAILABLE.
    postgres_connect_timeout: int = Field(default=5, ge=1)
    postgres_lock_timeout: int = Field(default=5, ge=0)
    #: libpq's sslmode for every connection (None: libpq's default, ``prefer``).
    postgres_sslmode: SSLMode | None = None
    #: Every PostgreSQL connection says ``<application_name>-<process_role>`` (pg_stat_activity).
    application_name: str = Field(default="seatledger", pattern=r"^[\x20-\x7e]{1,40}$")
    #: What this process is; the CLI sets worker, relay, migrate, status or rebuild.
    process_role: str = Field(default="service", pattern=r"^[a-z][a-z0-9_-]{0,19}$")

    #: The caches, sized in restaurants (docs/operations.md, *Caches*): one process keeps
    #: the layout and up to ``cache_days_per_restaurant`` service days of this many
    #: restaurants (fast-forwarded, never served stale), and ``directory_cache_per_restaurant``
    #: directory entries (where a booking or hold is filed) per restaurant, in a cache of
    #: their own so they never evict service days.
    cache_restaurants: int = Field(default=1000, ge=0)
    cache_days_per_restaurant: int = Field(default=2, ge=1)
    directory_cache_per_restaurant: int = Field(default=200, ge=0)
    #: Cached layouts and service days per process, spelled out (None: from the sizes in
    #: restaurants above; 0: no cache).
    aggregate_cache_size: int | None = Field(default=None, ge=0)
    #: Snapshots of service days (docs/operations.md, *Snapshots*): one every this many of a
    #: day's events, so a big day loads from its latest snapshot and at most this many events
    #: after it (0: none taken; stored ones are still used). 200: the worst load after a
    #: restart replays ~8 ms of events; a 5,000-booking day's snapshot costs ~40 ms per 200.
    snapshot_interval: int = Field(default=200, ge=0)
    #: How often a command is re-run on fresh state after an optimistic-concurrency conflict
    #: (with the back-off of unit_of_work.backoff_seconds; bench contention sized it).
    command_retries: int = Field(default=24, ge=0)

    #: Who keeps the read models current: a thread of the service (in_process; the default
    #: for SQLite and memory), a separate ``seatledger worker`` (the default for PostgreSQL),
    #: or nobody (off). None picks the default for the persistence.
    projection_mode: ProjectionMode | None = None
    projection_page_size: int = Field(default=500, ge=1, le=10_000)
    projection_poll_seconds: float = Field(default=1.0, gt=0)
    #: A process that finds the store missing anything runs ``seatledger migrate``'s locked
    #: migration at start; false: no process runs DDL, and such a store is refused.
    migrate_on_start: bool = True
    read_model_pool_size: int = Field(default=2, ge=1)
    #: Read-your-writes: the longest a command waits for the members projection to pass its
    #: save (then the rows not yet visible come back with assignment id "", and a warning).
    read_your_writes_timeout_ms: int = Field(default=50, ge=0)
    availability_statement_timeout_ms: int = Field(default=2000, ge=1)

    relay_batch_size: int = Field(default=100, ge=1)
    relay_max_attempts: int = Field(default=10, ge=1)
    relay_base_delay_seconds: float = Field(default=1.0, gt=0)
    relay_max_delay_seconds: float = Field(default=300.0, gt=0)
    relay_lease_seconds: float = Field(default=60.0, gt=0)
    relay_idle_seconds: float = Field(default=1.0, gt=0)

    #: Where the relay delivers: ``log`` (the quick start's logging publisher: it delivers
    #: nowhere), ``nats://host:4222`` (JetStream; ``tls://`` too, several URLs comma-separated)
    #: or ``https://...`` (a webhook). ``seatledger relay --publisher`` overrides it.
    publisher: str = "log"
    #: Messages a publisher has in flight at once (sent, ack or answer awaited).
    publisher_max_in_flight: int = Field(default=64, ge=1, le=10_000)
    #: How long one message may wait for its broker ack or webhook answer.
    publisher_timeout_seconds: float = Field(default=5.0, gt=0)
    #: JetStream: the stream the subjects ``<prefix>.<message type>.<restaurant>`` belong to.
    nats_stream: str = Field(default="SEATLEDGER", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    nats_subject_prefix: str = Field(
        default="seatledger", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
    )
    #: Create the stream at start when it does not exist (else it must exist: see
    #: docs/operations.md, *NATS JetStream*), with this duplicate window.
    nats_create_stream: bool = False
    nats_duplicate_window_seconds: float = Field(default=120.0, gt=0)
    #: A NATS credentials file (JWT and seed); user, password or token go in the URL.
    nats_credentials_file: Path | None = None
    #: The webhook's HMAC-SHA256 signing key (required for an ``https://`` publisher).
    webhook_secret: SecretStr | None = None

    #: OpenTelemetry spans and metrics on the global providers (needs seatledger[otel]).
    otel_enabled: bool = False

    #: Automated assignment: confirms per auto-assign (drift retries = attempts - 1).
    auto_assign_max_attempts: int = Field(default=2, ge=1, le=10)
    auto_assign_retry_on_drift: bool = True
    #: Table sets one quote's planner may examine before it returns the best found so far.
    planner_search_budget: int = Field(default=DEFAULT_SEARCH_BUDGET, ge=1)

    #: Shards (docs/operations.md, *Shards*; application/shards): name -> PostgreSQL URL, a
    #: ``#schema`` suffix naming the shard's schema. None: one store, as everything above says.
    shards: dict[str, str] = Field(default_factory=dict)
    #: Restaurants placed by hand (restaurant id -> shard); it seeds the stored, versioned map.
    shard_map: dict[str, str] = Field(default_factory=dict)
    #: Where every other restaurant goes: ``hash`` (a stable hash over the shards) or a shard.
    shard_default: str = "hash"
    #: The shard whose database keeps the versioned map (default: the first listed).
    shard_control: str | None = None
    #: Seconds a process trusts its cached map before it re-reads the map's version.
    shard_map_refresh_seconds: float = Field(default=2.0, gt=0)

    hold_ttl_seconds: int = Field(default=180, ge=1)
    hold_ttl_min_seconds: int = Field(default=60, ge=1)
    hold_ttl_max_seconds: int = Field(default=900, ge=1)
    hold_rate_limit: int = Field(default=5, ge=1)
    hold_rate_window_seconds: int = Field(default=60, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The ``.env`` file and the secrets directory named by the environment; each
        source's database URL spelled out as the settings it names."""
        env_file = os.environ.get(ENV_FILE_VARIABLE)
        if env_file is not None:
            if env_file and not Path(env_file).expanduser().is_file():
                raise SettingsError(f"{ENV_FILE_VARIABLE}: no such file {env_file!r}")
            dotenv_settings = DotEnvSettingsSource(settings_cls, env_file=env_file or None)
        secrets_dir = os.environ.get(SECRETS_DIR_VARIABLE)
        if secrets_dir:
            if not Path(secrets_dir).expanduser().is_dir():
                raise SettingsError(f"{SECRETS_DIR_VARIABLE}: no such directory {secrets_dir!r}")
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir)
        sources = (init_settings, env_settings, dotenv_settings, file_secret_settings)
        return tuple(_ExpandDatabaseUrl(source) for source in sources)

    @field_validator("database_url", mode="before")
    @classmethod
    def _valid_url(cls, value: Any) -> Any:
        """An empty URL is no URL (``SEATLEDGER_DATABASE_URL=`` in a compose file)."""
        url = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(url, str):
            if not url.strip():
                return None
            url_settings(url)
        return value

    @field_validator("publisher")
    @classmethod
    def _known_publisher(cls, value: str) -> str:
        value = value.strip()
        scheme = value.partition("://")[0].lower() if "://" in value else value
        if scheme not in PUBLISHER_SCHEMES:
            raise ValueError(
                "must be 'log', a nats:// (or tls://) URL or an http(s):// webhook URL"
            )
        return value

    @model_validator(mode="after")
    def _publisher_needs(self) -> Settings:
        if self.publisher_kind == "webhook" and self.webhook_secret is None:
            raise ValueError("a webhook publisher needs SEATLEDGER_WEBHOOK_SECRET")
        if self.otel_enabled and not _installed("opentelemetry"):
            raise ValueError(
                "SEATLEDGER_OTEL_ENABLED needs the otel extra: pip install 'seatledger[otel]'"
            )
        return self

    @property
    def publisher_kind(self) -> PublisherKind:
        scheme = self.publisher.partition("://")[0].lower() if "://" in self.publisher else "log"
        return PUBLISHER_SCHEMES[scheme]

    @model_validator(mode="after")
    def _shards_named(self) -> Settings:
        if not self.shards:
            return self
        named: dict[str, str | None] = {f"shard_map[{k}]": v for k, v in self.shard_map.items()}
        named["shard_control"] = self.shard_control
        if self.shard_default != "hash":
            named["shard_default"] = self.shard_default
        unknown = {k: v for k, v in named.items() if v is not None and v not in self.shards}
        if unknown:
            raise ValueError(f"{', '.join(unknown)} name no shard of SEATLEDGER_SHARDS")
        return self

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

    @property
    def aggregate_cache_entries(self) -> int:
        """The repository's cache: each restaurant's layout and its days."""
        if self.aggregate_cache_size is not None:
            return self.aggregate_cache_size
        return self.cache_restaurants * (1 + self.cache_days_per_restaurant)

    @property
    def directory_cache_entries(self) -> int:
        return self.cache_restaurants * self.directory_cache_per_restaurant

    def hold_rules(self) -> HoldRules:
        return HoldRules(
            default_ttl_seconds=self.hold_ttl_seconds,
            min_ttl_seconds=self.hold_ttl_min_seconds,
            max_ttl_seconds=self.hold_ttl_max_seconds,
            rate_limit=self.hold_rate_limit,
            rate_window_seconds=self.hold_rate_window_seconds,
        )

    @property
    def postgres_application_name(self) -> str:
        """What ``pg_stat_activity`` shows for this process's connections."""
        return f"{self.application_name}-{self.process_role}"

    def postgres_extra_params(self) -> dict[str, str]:
        """libpq parameters beyond host, port, dbname, user, password and connect_timeout:
        application_name, sslmode and whatever else the URL carries (``options``, ...)."""
        url = self.database_url.get_secret_value() if self.database_url else None
        params = postgres_extra_params(url)
        params["application_name"] = self.postgres_application_name
        if self.postgres_sslmode is not None:
            params["sslmode"] = self.postgres_sslmode
        return params

    def postgres_conninfo(self) -> str:
        """A libpq connection string for our own (non-library) connections."""
        return make_conninfo(
            host=self.postgres_host,
            port=self.postgres_port,
            dbname=self.postgres_dbname,
            user=self.postgres_user,
            password=self.postgres_password.get_secret_value() or None,
            connect_timeout=self.postgres_connect_timeout,
            **self.postgres_extra_params(),
        )

    def describe_store(self) -> str:
        """The store in words, for messages: never the password."""
        if self.persistence == "sqlite":
            return f"sqlite {self.sqlite_path}"
        if self.persistence == "postgres":
            return (
                f"postgres {self.postgres_user}@{self.postgres_host}:{self.postgres_port}/"
                f"{self.postgres_dbname} schema {self.postgres_schema}"
            )
        return "memory"

    def eventsourcing_env(self) -> dict[str, str]:
        """The ``eventsourcing`` library's environment for these settings."""
        env = {
            "AGGREGATE_CACHE_MAXSIZE": str(self.aggregate_cache_entries),
            "AGGREGATE_CACHE_FASTFORWARD": "y",
            # never DDL at construction (concurrent starts race): seatledger.application.schema
            "CREATE_TABLE": "n",
            # the snapshot store (its table is created by seatledger.application.schema)
            "IS_SNAPSHOTTING_ENABLED": "y",
        }
        if self.aggregate_cache_entries == 0:
            del env["AGGREGATE_CACHE_MAXSIZE"]
        if self.persistence == "sqlite":
            env |= {
                "PERSISTENCE_MODULE": SQLITE_FACTORY_TOPIC,
                "SQLITE_DBNAME": str(self.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        elif self.persistence == "postgres":
            env |= {
                "PERSISTENCE_MODULE": POSTGRES_FACTORY_TOPIC,
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
                "POSTGRES_EXTRA_CONNINFO": make_conninfo(**self.postgres_extra_params()),
            }
        else:
            env["PERSISTENCE_MODULE"] = "eventsourcing.popo"
        return env


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


class _ExpandDatabaseUrl(PydanticBaseSettingsSource):
    """One source's values, its ``database_url`` spelled out as the settings it names.

    Expanding per source keeps the usual order: ``Settings(persistence="sqlite", ...)`` in
    code beats a PostgreSQL URL in the environment, and within a source the URL wins."""

    def __init__(self, inner: PydanticBaseSettingsSource) -> None:
        super().__init__(inner.settings_cls)
        self.inner = inner
        self.__name__ = type(inner).__name__  # how pydantic-settings names the source

    def _set_current_state(self, state: dict[str, Any]) -> None:
        super()._set_current_state(state)
        self.inner._set_current_state(state)

    def _set_settings_sources_data(self, states: dict[str, dict[str, Any]]) -> None:
        super()._set_settings_sources_data(states)
        self.inner._set_settings_sources_data(states)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        values = self.inner()
        raw = values.get("database_url")
        url = raw.get_secret_value() if isinstance(raw, SecretStr) else raw
        if not isinstance(url, str) or not url.strip():
            return values
        try:
            named = url_settings(url)
        except ValueError:
            return values  # the field's validator reports it, under its name
        return {**values, **named}


def describe_invalid_settings(
    error: ValidationError | SettingsError, *, names: dict[str, str] | None = None
) -> str:
    """One line for a person: which setting, what is wrong (a secret's value never shown).

    ``names`` gives a setting's name where it did not come from ``SEATLEDGER_*`` (a CLI
    option, say)."""
    if isinstance(error, SettingsError):
        return str(error)
    problems = []
    for item in error.errors(include_url=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        if not item["loc"]:
            problems.append(message)
            continue
        field = str(item["loc"][0])
        name = (names or {}).get(field) or ENV_PREFIX + field.upper()
        if field in SECRET_SETTINGS or isinstance(item["input"], dict | list):
            problems.append(f"{name} is invalid: {message}")
        else:
            problems.append(f"{name}={item['input']!r} is invalid: {message}")
    return "; ".join(problems)

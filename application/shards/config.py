"""One shard's settings: the process's settings with that shard's database in place.

A shard is named by a PostgreSQL URL, optionally followed by ``#schema`` (libpq has no
schema parameter; the fragment is ours). Everything else (pools, timeouts, projection mode,
publisher) is the process's own setting, the same for every shard.
"""

from __future__ import annotations

from typing import Any

from seatledger.application.settings import Settings
from seatledger.domain.errors import InvalidInputError

#: The settings that describe sharding itself: a shard's own settings have none of them.
SHARD_FIELDS = ("shards", "shard_map", "shard_default", "shard_control", "database_url")


def split_url(value: str) -> tuple[str, str | None]:
    """``postgresql://...#schema`` -> (URL, schema or None)."""
    url, sep, schema = value.partition("#")
    return url, (schema or None) if sep else None


def shard_settings(base: Settings, name: str) -> Settings:
    """The settings of shard ``name`` (a single store, exactly as without shards)."""
    if name not in base.shards:
        raise unknown_shard(base, name)
    url, schema = split_url(base.shards[name])
    values: dict[str, Any] = {
        key: getattr(base, key) for key in type(base).model_fields if key not in SHARD_FIELDS
    }
    values.update(shards={}, shard_map={}, shard_default="hash", shard_control=None)
    values["database_url"] = url
    if schema is not None:
        values["postgres_schema"] = schema
    return Settings(**values)


def control_shard(base: Settings) -> str:
    """The shard whose database keeps the map: the named one, else the first listed."""
    return base.shard_control or next(iter(base.shards))


def unknown_shard(base: Settings, name: str) -> InvalidInputError:
    return InvalidInputError(
        f"no shard named {name!r}",
        details={"errors": [{"field": "shard", "error": f"one of {sorted(base.shards)}"}]},
    )

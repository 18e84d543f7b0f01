"""Who is calling: API keys from a keys file, each bound to restaurants, a role and an actor.

Clients send ``Authorization: Bearer <key>``. The keys file (JSON) stores only the SHA-256 of
each key, so a leaked file grants nothing::

    {"keys": [{"key_id": "pos-r1", "sha256": "<64 hex>", "actor_id": "pos-terminal-1",
               "role": "host", "restaurants": ["r1"]}]}

``restaurants`` is a list of restaurant ids or ``"*"`` (every restaurant). The actor and role of
every command come from the key, never from the request. The file is re-read when it changes
(checked on every request: a ``stat``), so keys are added, rotated and revoked without a
restart; replace it atomically (write a new file, rename it over the old one). A file that
fails to load keeps the last good keys and is logged (``auth.keys_invalid``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from seatledger.application.inputs import text_problem
from seatledger.application.telemetry import Telemetry
from seatledger.domain.service_day import ActorRole

#: Operations a role may run; an operation not listed here is open to every role.
MANAGER_OPERATIONS = frozenset(
    {
        "create_restaurant",
        "define_zone",
        "define_table",
        "link_tables",
        "unlink_tables",
        "change_policy",
        "expire_holds",
    }
)
ALL_ROLES: frozenset[ActorRole] = frozenset({"host", "manager", "system"})


def allowed_roles(operation: str) -> frozenset[ActorRole]:
    """Layout, policy and the hold sweeper are for managers and systems; hosts seat guests."""
    if operation in MANAGER_OPERATIONS:
        return frozenset({"manager", "system"})
    return ALL_ROLES


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh random key and the SHA-256 to put in the keys file."""
    key = secrets.token_urlsafe(32)
    return key, hash_key(key)


class KeysFileError(Exception):
    """The keys file is missing or malformed (at start-up: the service refuses to start)."""


class KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str = Field(min_length=1, max_length=200)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    actor_id: str = Field(min_length=1, max_length=200)
    role: ActorRole
    restaurants: list[str] | Literal["*"] = Field(min_length=1)

    @field_validator("key_id", "actor_id")
    @classmethod
    def _text(cls, value: str) -> str:
        problem = text_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("restaurants")
    @classmethod
    def _restaurant_ids(cls, value: list[str] | Literal["*"]) -> list[str] | Literal["*"]:
        if isinstance(value, list):
            for restaurant_id in value:
                problem = text_problem(restaurant_id) if restaurant_id else "is empty"
                if problem:
                    raise ValueError(f"restaurant id {problem}")
        return value


class KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[KeyEntry]

    @model_validator(mode="after")
    def _unique(self) -> KeysFile:
        for attribute in ("key_id", "sha256"):
            values = [getattr(entry, attribute) for entry in self.keys]
            if len(values) != len(set(values)):
                raise ValueError(f"two keys share a {attribute}")
        return self


@dataclass(frozen=True)
class Principal:
    """The caller a key stands for."""

    key_id: str
    actor_id: str
    role: ActorRole
    #: None: every restaurant
    restaurants: frozenset[str] | None

    def may_act_for(self, restaurant_id: str) -> bool:
        return self.restaurants is None or restaurant_id in self.restaurants

    @classmethod
    def of(cls, entry: KeyEntry) -> Principal:
        restaurants = None if entry.restaurants == "*" else frozenset(entry.restaurants)
        return cls(entry.key_id, entry.actor_id, entry.role, restaurants)


def load_keys(path: Path) -> dict[str, Principal]:
    """The keys of ``path`` by their SHA-256."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        parsed = KeysFile.model_validate(raw)
    except OSError as exc:
        raise KeysFileError(f"cannot read the keys file {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise KeysFileError(f"the keys file {path} is not JSON: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(root)'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise KeysFileError(f"the keys file {path} is invalid: {problems}") from exc
    return {entry.sha256: Principal.of(entry) for entry in parsed.keys}


_Signature = tuple[int, int, int, int, int]


class KeyRing:
    """The keys in force, re-read from their file whenever it changes."""

    def __init__(self, path: Path | None, telemetry: Telemetry | None = None) -> None:
        """``path=None``: no keys at all (every request is refused; schema generation)."""
        self.path = path
        self.telemetry = telemetry or Telemetry()
        self._lock = threading.Lock()
        self._keys: dict[str, Principal] = {}
        self._signature: _Signature | None = None
        if path is not None:
            self._signature = self._stat()
            self._keys = load_keys(path)

    def authenticate(self, key: str) -> Principal | None:
        self.refresh()
        return self._keys.get(hash_key(key))

    def refresh(self) -> None:
        """Re-read the file if it changed (or vanished); a bad file keeps the last good keys
        and is reported once per version of it."""
        if self.path is None:
            return
        signature = self._stat()
        if signature == self._signature:
            return
        with self._lock:
            if signature == self._signature:
                return
            self._signature = signature
            try:
                keys = load_keys(self.path)
            except KeysFileError as err:
                error: str | None = str(err)
            else:
                self._keys, error = keys, None
        if error is None:
            self.telemetry.emit("auth.keys_reloaded", path=str(self.path), keys=len(keys))
        else:
            self.telemetry.emit(
                "auth.keys_invalid",
                level=logging.ERROR,
                path=str(self.path),
                error=error,
                kept_keys=len(self._keys),
            )

    def _stat(self) -> _Signature | None:
        """What identifies this version of the file (None: it is missing)."""
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

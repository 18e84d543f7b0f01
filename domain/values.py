"""Small value types and the canonical forms everything else builds on.

Determinism lives here: one canonical JSON, one hash, one UTC instant format, and ids derived
with UUIDv5 from stable names, so the same event log always yields the same ids and messages.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Self
from uuid import UUID, uuid5

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator

#: Namespace of every id seatledger derives. Changing it would change every derived id.
SEATLEDGER_NAMESPACE = UUID("6f2b8a9e-3c1d-5e7f-9a0b-1c2d3e4f5a6b")


class Frozen(BaseModel):
    """Base for immutable value models: hashable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def updated(self, **changes: Any) -> Self:
        """``model_copy(update=changes)``, equal in every field and in ``model_fields_set``
        (and, like it, unvalidated), without pydantic's generic copy: replaying a day copies
        a booking or hold state for nearly every event. Models with extra or private values,
        or their own ``model_copy``, take ``model_copy`` itself."""
        cls = type(self)
        if (
            cls.model_copy is not BaseModel.model_copy
            or self.__pydantic_extra__ is not None
            or self.__pydantic_private__ is not None
        ):
            return self.model_copy(update=changes)
        copied = object.__new__(cls)
        _set = object.__setattr__
        _set(copied, "__dict__", {**self.__dict__, **changes})
        _set(copied, "__pydantic_extra__", None)
        _set(copied, "__pydantic_fields_set__", self.__pydantic_fields_set__.union(changes))
        _set(copied, "__pydantic_private__", None)
        return copied


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal data always gives equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    """SHA-256 hex digest of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def derive_id(*parts: str) -> UUID:
    """A UUIDv5 from stable name parts; the same parts always give the same id."""
    return uuid5(SEATLEDGER_NAMESPACE, "\x1f".join(parts))


def utc_instant(moment: datetime) -> str:
    """The one canonical instant format of messages and keys: ``YYYY-MM-DDTHH:MM:SSZ``."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes have no canonical instant")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sorted_unique(ids: Iterable[str]) -> tuple[str, ...]:
    """Collapse duplicates and sort: the one order table ids are ever listed in."""
    return tuple(sorted(set(ids)))


class Window(Frozen):
    """A half-open interval ``[start, end)`` of UTC instants."""

    start: AwareDatetime
    end: AwareDatetime

    @field_validator("start", "end")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError:  # a bad value, not a bug: pydantic reports a ValueError
            raise ValueError("is outside the range of representable instants") from None

    @property
    def is_empty(self) -> bool:
        return self.end <= self.start

    def overlaps(self, other: Window) -> bool:
        """Touching windows do not overlap; an empty or inverted window overlaps nothing."""
        return (
            self.start < self.end
            and other.start < other.end
            and self.start < other.end
            and other.start < self.end
        )

    def canonical(self) -> dict[str, str]:
        return {"start": utc_instant(self.start), "end": utc_instant(self.end)}

    def __str__(self) -> str:
        return f"[{utc_instant(self.start)}, {utc_instant(self.end)})"

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
from uuid import UUID

import orjson
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


#: orjson's options for canonical JSON. The pass-throughs make orjson refuse what ``json``
#: would refuse too (dataclasses, datetimes, subclasses of str/int/dict/list), so those take
#: the ``json`` path and fail (or render) exactly as before.
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)
#: Leaf types orjson renders byte for byte as ``json.dumps`` does (with the options above):
#: str (every code point; a lone surrogate makes orjson raise), int (beyond 64 bits orjson
#: raises), bool and None. Floats are not among them (orjson writes ``1e-7``, ``json``
#: ``1e-07``; NaN: ``null`` against ``NaN``), nor are UUIDs and enums (``json`` refuses them).
_ORJSON_LEAVES = frozenset((str, int, bool, type(None)))
#: Deeper than orjson's own nesting limit is not worth a walk: ``json`` takes it.
_ORJSON_DEPTH = 250


def _orjson_renders_alike(value: Any, depth: int = 0) -> bool:
    """Whether every value inside ``value`` is of a type orjson renders as ``json`` does.
    Keys are not checked: orjson refuses a non-str key, and a refusal falls back."""
    kind = type(value)
    if kind is dict:
        items: Iterable[Any] = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return kind in _ORJSON_LEAVES
    if depth > _ORJSON_DEPTH:
        return False
    leaves = _ORJSON_LEAVES
    for item in items:
        if type(item) not in leaves and not _orjson_renders_alike(item, depth + 1):
            return False
    return True


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal data always gives equal text.

    The text is ``json.dumps(value, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)``, byte for byte; orjson writes it (about ten times faster) when every
    value inside is of a type it renders identically, ``json`` writes the rest (and raises
    what it always raised)."""
    if _orjson_renders_alike(value):
        try:
            return orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
        except orjson.JSONEncodeError:  # a big int, a lone surrogate, a non-str key...
            pass
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    """SHA-256 hex digest of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


_NAMESPACE_BYTES = SEATLEDGER_NAMESPACE.bytes
#: The UUID variant's hex digit for each digit of the digest: its top two bits become ``10``.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def derive_id_text(*parts: str) -> str:
    """``str(derive_id(*parts))``, built straight from the SHA-1 digest (RFC 4122 UUIDv5:
    the first 16 bytes, version nibble 5, variant bits 10) without a ``UUID`` in between."""
    h = hashlib.sha1(_NAMESPACE_BYTES + "\x1f".join(parts).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def derive_id(*parts: str) -> UUID:
    """A UUIDv5 from stable name parts; the same parts always give the same id."""
    return UUID(derive_id_text(*parts))


_INSTANT = "%04d-%02d-%02dT%02d:%02d:%02dZ"


def utc_instant(moment: datetime) -> str:
    """The one canonical instant format of messages and keys: ``YYYY-MM-DDTHH:MM:SSZ``.

    That is ``moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")``, formatted from the
    fields (``strftime`` is the cost); years before 1000 keep ``strftime``, whose ``%Y`` the
    C library may leave unpadded."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes have no canonical instant")
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    if utc.year < 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return _INSTANT % (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second)


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

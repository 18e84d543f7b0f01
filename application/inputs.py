"""The input contract: what every id, text and date of a command or query may hold.

Checked at the API boundary, before anything is stored, by walking the whole validated input
(nested zones, tables and policies included), so no field can be forgotten:

* text (ids, names, labels, keys): at most ``MAX_TEXT_LENGTH`` characters; no control
  characters (NUL, the ``\\x1f`` that derived ids use as separator, newlines, DEL and C1
  controls), no line or paragraph separators, no lone surrogates;
* dates: from ``MIN_DATE`` to ``MAX_DATE`` (a service day's arithmetic never overflows).

Because no valid id contains the separator, the ids derived from ids (``derive_id``) cannot
collide, and ids already stored keep their values.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticCustomError

MAX_TEXT_LENGTH = 200
MIN_DATE = date(2000, 1, 1)
MAX_DATE = date(2199, 12, 31)

#: Unicode categories no text may contain: controls, surrogates, line/paragraph separators.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def text_problem(value: str) -> str | None:
    """Why ``value`` breaks the contract, or None."""
    if len(value) > MAX_TEXT_LENGTH:
        return f"is longer than {MAX_TEXT_LENGTH} characters"
    for char in value:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            return f"contains the forbidden character U+{ord(char):04X}"
    return None


def date_problem(value: date) -> str | None:
    day = value.date() if isinstance(value, datetime) else value
    if not MIN_DATE <= day <= MAX_DATE:
        return f"is outside {MIN_DATE.isoformat()}..{MAX_DATE.isoformat()}"
    return None


def problems(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (field path, problem) in a validated input, depth first in field order."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            yield path or "(root)", problem
    elif isinstance(value, date):
        problem = date_problem(value)
        if problem is not None:
            yield path or "(root)", problem
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from problems(getattr(value, name), _join(path, name))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from problems(key, _join(path, _printable(str(key))))
            yield from problems(item, _join(path, _printable(str(key))))
    elif isinstance(value, set | frozenset):
        for item in sorted(value, key=repr):
            yield from problems(item, path)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from problems(item, _join(path, str(index)))


def enforce(model: BaseModel) -> None:
    """Raise the contract's breaches of a validated command or query as one validation error
    (a model validator calls this, so pydantic reports it like any other bad field)."""
    found = list(problems(model))
    if found:
        raise PydanticCustomError(
            "input_contract",
            "{problems}",
            {"problems": "; ".join(f"{field} {problem}" for field, problem in found)},
        )


def _printable(text: str) -> str:
    """A mapping key as it may appear in an error's details (forbidden characters escaped)."""
    return "".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c) in _FORBIDDEN_CATEGORIES else c
        for c in text[:MAX_TEXT_LENGTH]
    )


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part

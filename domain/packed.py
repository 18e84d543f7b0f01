"""A compact, trusted encoding of frozen value models, for data we wrote ourselves (snapshots).

Every model is written once into a pool, as a row of its field values in field order, and
referred to by its pool index: equal values (the same window of a thousand bookings, a change
both recorded by its command and kept for idempotency) are stored and decoded once, and share
one immutable object after decoding. Decoding does not validate: it rebuilds each model the
way pydantic's own ``model_construct`` and copies do (``__dict__`` and the fields set), several
times faster than either validation or ``model_construct``. That is only sound for bytes this
module wrote for the same classes, so :func:`schema_fingerprint` (every packed class and its
fields) belongs in the name the packed data is stored under; anything else is validated.

Field types are resolved once per class into converters; a type this codec does not know is a
``TypeError`` when the class is first packed, never a silent guess.
"""

from __future__ import annotations

import operator
import types
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel

Row = list[Any]
Pack = Callable[[Any, "Packer"], Any]
Unpack = Callable[[Any, list[Any]], Any]

_SCALARS = (str, int, bool, float, type(None))
_new = object.__new__
_set = object.__setattr__


def _identity(value: Any, _: Any) -> Any:
    return value


def _plain(annotation: Any) -> bool:
    """JSON gives these back as they were (Literal members are scalars)."""
    if annotation in _SCALARS:
        return True
    origin = get_origin(annotation)
    if origin is Literal:
        return all(isinstance(arg, _SCALARS) for arg in get_args(annotation))
    if origin in (Union, types.UnionType):
        return all(_plain(arg) for arg in get_args(annotation))
    return False


def _converters(annotation: Any) -> tuple[Pack, Unpack]:
    """How to write one field type and read it back."""
    if _plain(annotation):
        return _identity, _identity
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType) and type(None) in args:
        (inner,) = [arg for arg in args if arg is not type(None)]
        pack, unpack = _converters(inner)
        return (
            lambda v, p: None if v is None else pack(v, p),
            lambda v, pool: None if v is None else unpack(v, pool),
        )
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return (lambda v, p: p.ref(v)), (lambda v, pool: pool[v])
    if annotation in (AwareDatetime, datetime):
        return (lambda v, _: v.isoformat()), (lambda v, _: datetime.fromisoformat(v))
    if annotation is date:
        return (lambda v, _: v.isoformat()), (lambda v, _: date.fromisoformat(v))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            if _plain(args[0]):
                return _identity, (lambda v, _: tuple(v))
            item_pack, item_unpack = _converters(args[0])
            return (
                lambda v, p: tuple([item_pack(item, p) for item in v]),
                lambda v, pool: tuple([item_unpack(item, pool) for item in v]),
            )
        if all(_plain(arg) for arg in args):
            return _identity, (lambda v, _: tuple(v))
    if origin is dict and args and args[0] is str:
        value_pack, value_unpack = _converters(args[1])
        return (
            lambda v, p: {key: value_pack(item, p) for key, item in v.items()},
            lambda v, pool: {key: value_unpack(item, pool) for key, item in v.items()},
        )
    raise TypeError(f"the packed codec has no encoding for {annotation!r}")


class _Codec:
    """One model class: its field names and, per field, how to pack and unpack it."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        if not model.model_config.get("frozen"):
            raise TypeError(f"only frozen models are packed, not {model.__qualname__}")
        self.names = tuple(model.model_fields)
        #: One set shared by every model this codec builds: pydantic never changes a frozen
        #: model's set in place (copies copy it), and one set each was a tenth of the decode.
        self.fields_set = set(self.names)
        converters = [_converters(field.annotation) for field in model.model_fields.values()]
        #: the field values in field order, as a tuple
        getter = operator.itemgetter(*self.names)
        self.values: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            getter if len(self.names) > 1 else lambda values: (getter(values),)
        )
        #: (position, converter) of the fields packed otherwise than as they are (tuples pass
        #: as they are: the tuple-to-list step is JSON's)
        self.packs = tuple(
            (i, pack) for i, (pack, _) in enumerate(converters) if pack is not _identity
        )
        #: (position, converter) of the fields that JSON does not give back as they were
        self.unpacks = tuple(
            (i, unpack) for i, (_, unpack) in enumerate(converters) if unpack is not _identity
        )

    def row(self, model: BaseModel, packer: Packer) -> tuple[Any, ...]:
        values = self.values(model.__dict__)
        if not self.packs:
            return values
        row = list(values)
        for i, pack in self.packs:
            row[i] = pack(row[i], packer)
        return tuple(row)

    def build(self, values: list[Any], pool: list[Any]) -> BaseModel:
        """The model of a row's values (``values`` is the decoder's own list: changed in place)."""
        for i, unpack in self.unpacks:
            values[i] = unpack(values[i], pool)
        model = _new(self.model)
        _set(model, "__dict__", dict(zip(self.names, values, strict=True)))
        _set(model, "__pydantic_fields_set__", self.fields_set)
        _set(model, "__pydantic_extra__", None)
        _set(model, "__pydantic_private__", None)
        return model


@cache
def _codec(model: type[BaseModel]) -> _Codec:
    return _Codec(model)


def schema_fingerprint(models: Iterable[type[BaseModel]]) -> list[Any]:
    """The packed classes and their fields (and types), for the storage name of packed data."""
    return [
        [model.__qualname__, [[name, repr(field.annotation)] for name, field in fields.items()]]
        for model in models
        for fields in [model.model_fields]
    ]


class Packer:
    """Collects a pool of rows; :meth:`ref` gives a model's index (equal values, once)."""

    def __init__(self, models: Sequence[type[BaseModel]]) -> None:
        self.tags = {model: tag for tag, model in enumerate(models)}
        self.pool: list[Any] = []
        self._by_id: dict[int, int] = {}
        self._by_row: dict[tuple[Any, ...], int] = {}
        self._alive: list[BaseModel] = []  # keeps ids unique while packing

    def ref(self, model: BaseModel) -> int:
        found = self._by_id.get(id(model))
        if found is not None:
            return found
        tag = self.tags[type(model)]
        row = (tag, *_codec(type(model)).row(model, self))
        try:
            index = self._by_row.get(row)
        except TypeError:  # a row holding a dict: not interned
            index, row_hashable = None, False
        else:
            row_hashable = True
        if index is None:
            index = len(self.pool)
            self.pool.append(row)
            if row_hashable:
                self._by_row[row] = index
        self._by_id[id(model)] = index
        self._alive.append(model)
        return index


def unpack_pool(rows: Iterable[Row], models: Sequence[type[BaseModel]]) -> list[Any]:
    """The pool's models, in pool order (a row only refers to rows before it)."""
    codecs = [_codec(model) for model in models]
    pool: list[Any] = []
    append = pool.append
    for row in rows:
        append(codecs[row[0]].build(row[1:], pool))
    return pool

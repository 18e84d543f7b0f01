"""A compact, trusted encoding of frozen value models, for data we wrote ourselves (snapshots).

Every model is written once into a pool, as a row of its field values in field order, and
referred to by its pool index: equal values (the same window of a thousand bookings, a change
both recorded by its command and kept for idempotency) are stored and decoded once, and share
one immutable object after decoding. Decoding does not validate: it rebuilds each model the
way pydantic's own ``model_construct`` and copies do (``__dict__`` and the fields set), several
times faster than either validation or ``model_construct``. That is only sound for bytes this
module wrote for the same classes, so :func:`schema_fingerprint` (every packed class and its
fields) belongs in the name the packed data is stored under; anything else is validated.

A :class:`Codebook` (the classes one kind of packed data holds) resolves their field types
once, into code generated per class; a type this codec does not know is a ``TypeError`` when
the codebook is made (at import of the module that packs), never a silent guess.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel

Row = tuple[Any, ...]
#: the source of an expression that writes (or reads back) a value, from the value's source
#: and the nesting depth (for the names of comprehension variables)
Source = Callable[[str, int], str]

_SCALARS = (str, int, bool, float, type(None))


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


def _holds_models_or_dicts(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    if get_origin(annotation) is dict or annotation is dict:
        return True
    return any(_holds_models_or_dicts(arg) for arg in get_args(annotation))


def _as_is(src: str, _: int) -> str:
    return src


def _converters(annotation: Any) -> tuple[Source, Source]:
    """The expressions that write one field type and read it back, from the value's."""
    if _plain(annotation):
        return _as_is, _as_is
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType) and type(None) in args:
        (inner,) = [arg for arg in args if arg is not type(None)]
        write, read = _converters(inner)
        return (
            lambda src, depth: f"(None if {src} is None else {write(src, depth)})",
            lambda src, depth: f"(None if {src} is None else {read(src, depth)})",
        )
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return (lambda src, _: f"ref({src})"), (lambda src, _: f"pool[{src}]")
    if annotation in (AwareDatetime, datetime):
        return (lambda src, _: f"{src}.isoformat()"), (lambda src, _: f"instant({src})")
    if annotation is date:
        return (lambda src, _: f"{src}.isoformat()"), (lambda src, _: f"day({src})")
    if origin is tuple and (
        (len(args) == 2 and args[1] is Ellipsis and _plain(args[0]))
        or all(_plain(arg) for arg in args)
    ):
        # tuples pass as they are: the tuple-to-list step is JSON's
        return _as_is, lambda src, _: f"tuple({src})"
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        write_item, read_item = _converters(args[0])
        return (
            lambda src, depth: (
                f"tuple([{write_item(f'x{depth}', depth + 1)} for x{depth} in {src}])"
            ),
            lambda src, depth: (
                f"tuple([{read_item(f'x{depth}', depth + 1)} for x{depth} in {src}])"
            ),
        )
    if origin is dict and args and args[0] is str:
        write_value, read_value = _converters(args[1])
        return (
            lambda src, depth: (
                f"{{k{depth}: {write_value(f'x{depth}', depth + 1)} "
                f"for k{depth}, x{depth} in {src}.items()}}"
            ),
            lambda src, depth: (
                f"{{k{depth}: {read_value(f'x{depth}', depth + 1)} "
                f"for k{depth}, x{depth} in {src}.items()}}"
            ),
        )
    raise TypeError(f"the packed codec has no encoding for {annotation!r}")


class _Codec:
    """One model class: a function that writes its row and one that builds it back.

    Both are generated Python (as :mod:`dataclasses` generates ``__init__``): one tuple or
    dict display per row, no call per field; generic loops over the fields took twice as long.
    """

    def __init__(self, model: type[BaseModel]) -> None:
        if not model.model_config.get("frozen"):
            raise TypeError(f"only frozen models are packed, not {model.__qualname__}")
        names = tuple(model.model_fields)
        #: Leaf values (no model or dict in their fields: rows that hash) are interned by
        #: value: events decode equal windows as separate objects. Others are unique (a
        #: booking) or shared as one object (a change kept for idempotency): hashing their rows
        #: would be wasted.
        self.by_value = not any(
            _holds_models_or_dicts(field.annotation) for field in model.model_fields.values()
        )
        converters = [_converters(field.annotation) for field in model.model_fields.values()]
        written = "".join(
            f"{write(f'd[{name!r}]', 0)}, "
            for name, (write, _) in zip(names, converters, strict=True)
        )
        read = ", ".join(
            f"{name!r}: {read(f'r[{i}]', 0)}"
            for i, (name, (_, read)) in enumerate(zip(names, converters, strict=True), 1)
        )
        source = (
            "def row(m, tag, ref):\n"
            "    d = m.__dict__\n"
            f"    return (tag, {written})\n"
            "def build(r, pool):\n"
            "    m = new(Model)\n"
            f"    put(m, '__dict__', {{{read}}})\n"
            "    put(m, '__pydantic_fields_set__', fields_set)\n"
            "    put(m, '__pydantic_extra__', None)\n"
            "    put(m, '__pydantic_private__', None)\n"
            "    return m\n"
        )
        namespace: dict[str, Any] = {
            "new": object.__new__,
            "put": object.__setattr__,
            "Model": model,
            # One set shared by every model built: pydantic never changes a frozen model's set
            # in place (its copies copy it), and a set each was a tenth of the decode.
            "fields_set": set(names),
            "instant": datetime.fromisoformat,
            "day": date.fromisoformat,
        }
        exec(source, namespace)  # our own source, made from the class's fields
        #: a model, its tag and the packer's ``ref`` -> its row (the tag first)
        self.row: Callable[[BaseModel, int, Callable[[BaseModel], int]], Row] = namespace["row"]
        #: a row and the pool so far -> the model
        self.build: Callable[[list[Any], list[Any]], BaseModel] = namespace["build"]


def schema_fingerprint(models: Iterable[type[BaseModel]]) -> list[Any]:
    """The packed classes and their fields (and types), for the storage name of packed data."""
    return [
        [model.__qualname__, [[name, repr(field.annotation)] for name, field in fields.items()]]
        for model in models
        for fields in [model.model_fields]
    ]


class Codebook:
    """The classes one kind of packed data may hold (their order gives the rows' tags), with
    the code generated for each: made once, as a constant of the module that packs."""

    def __init__(self, models: Sequence[type[BaseModel]]) -> None:
        self.models = tuple(models)
        self.codecs = tuple(_Codec(model) for model in self.models)
        self.tags = {
            model: (codec, tag)
            for tag, (model, codec) in enumerate(zip(self.models, self.codecs, strict=True))
        }

    def fingerprint(self) -> list[Any]:
        return schema_fingerprint(self.models)

    def packer(self) -> Packer:
        return Packer(self)

    def unpack(self, rows: Iterable[list[Any]]) -> list[Any]:
        """The pool's models, in pool order (a row only refers to rows before it)."""
        codecs = self.codecs
        pool: list[Any] = []  # the builders read it by that name
        append = pool.append
        for row in rows:
            append(codecs[row[0]].build(row, pool))
        return pool


class Packer:
    """Collects a pool of rows; :meth:`ref` gives a model's index (equal values, once)."""

    def __init__(self, codebook: Codebook) -> None:
        self.codecs = codebook.tags
        self.pool: list[Row] = []
        self._by_id: dict[int, int] = {}
        self._by_row: dict[Row, int] = {}
        self._alive: list[BaseModel] = []  # keeps ids unique while packing

    def ref(self, model: BaseModel) -> int:
        found = self._by_id.get(id(model))
        if found is not None:
            return found
        codec, tag = self.codecs[type(model)]
        row = codec.row(model, tag, self.ref)
        index = self._by_row.get(row) if codec.by_value else None
        if index is None:
            index = len(self.pool)
            self.pool.append(row)
            if codec.by_value:
                self._by_row[row] = index
        self._by_id[id(model)] = index
        self._alive.append(model)
        return index

"""JSON encoding of dataclass trees (records and specs), driven by their type hints."""

from __future__ import annotations

import dataclasses
import operator
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import Enum
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


_PLAIN = frozenset({str, int, float, bool, type(None)})


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    """The fields encoded: all but those marked ``metadata={"transient": True}``."""
    return tuple(
        field.name for field in dataclasses.fields(cls) if not field.metadata.get("transient")
    )


@cache
def _frozen(cls: type) -> bool:
    return bool(cls.__dataclass_params__.frozen)  # type: ignore[attr-defined]


# Frozen dataclasses (the specs) never change, and a running task is encoded at each save: the
# encoding of the latest specs is remembered, keyed by identity. The entry holds the object
# itself, so its id cannot be reused while the entry lives; the oldest entries go past the limit
# (a few thousand: the tasks running or just changed, not every task of a large job).
_FROZEN_MEMO: dict[int, tuple[Any, Any]] = {}
FROZEN_MEMO_LIMIT = 4_096


def encode(value: Any) -> Any:
    """A JSON-ready form of `value`: dataclasses as dicts, enums as values, timedelta as seconds.

    The result may share parts with earlier results: treat it as read-only.
    """
    cls = type(value)
    if cls in _PLAIN:  # most values: checked first, the state is encoded often
        return value
    encoder = _ENCODERS.get(cls)
    if encoder is None:
        encoder = _ENCODERS[cls] = _encoder_for(cls)
    return encoder(value)


_ENCODERS: dict[type, Callable[[Any], Any]] = {}
"""How each type met so far is encoded: decided once per type, not at every value (a save
and each journal entry encode thousands of values)."""


def _encoder_for(cls: type) -> Callable[[Any], Any]:
    if dataclasses.is_dataclass(cls):
        names = _field_names(cls)
        values = operator.attrgetter(*names) if len(names) > 1 else None

        def fields_of(value: Any) -> dict[str, Any]:
            got = values(value) if values is not None else [getattr(value, n) for n in names]
            return {
                name: item if type(item) in _PLAIN else encode(item)
                for name, item in zip(names, got, strict=True)
            }

        return _remembered(fields_of) if _frozen(cls) else fields_of
    if issubclass(cls, Enum):
        return _enum_value
    if issubclass(cls, timedelta):
        return timedelta.total_seconds
    if issubclass(cls, datetime):
        return datetime.isoformat
    if issubclass(cls, Mapping):
        return _mapping
    if issubclass(cls, (list, tuple)):
        return _items
    return _itself


def _remembered(fields_of: Callable[[Any], dict[str, Any]]) -> Callable[[Any], Any]:
    def remembered(value: Any) -> Any:
        known = _FROZEN_MEMO.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        encoded = fields_of(value)
        _FROZEN_MEMO[id(value)] = (value, encoded)
        if len(_FROZEN_MEMO) > FROZEN_MEMO_LIMIT:
            del _FROZEN_MEMO[next(iter(_FROZEN_MEMO))]
        return encoded

    return remembered


def _enum_value(value: Enum) -> Any:
    return value.value


def _mapping(value: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(key): encode(item) for key, item in value.items()}


def _items(value: Sequence[Any]) -> list[Any]:
    return [encode(item) for item in value]


def _itself(value: Any) -> Any:
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(cls: type[T], data: Any) -> T:
    """Rebuild a value of type `cls` from `encode`'s output."""
    return typing.cast(T, _decode(cls, data))


def _decode(hint: Any, data: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _decode(inner, data)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = _hints(hint)
        known = {f.name for f in dataclasses.fields(hint)}
        return hint(
            **{key: _decode(hints[key], item) for key, item in data.items() if key in known}
        )
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(data)
    if hint is timedelta:
        return timedelta(seconds=data)
    if hint is datetime:
        return datetime.fromisoformat(data)
    if origin in (dict, Mapping, typing.Mapping):
        _, value_hint = typing.get_args(hint)
        return {key: _decode(value_hint, item) for key, item in data.items()}
    if origin in (list, Sequence, typing.Sequence):
        (item_hint,) = typing.get_args(hint)
        items = [_decode(item_hint, item) for item in data]
        return items if origin is list else tuple(items)
    if origin is tuple:
        args = typing.get_args(hint)
        return tuple(_decode(args[0], item) for item in data)
    return data

"""The models' shared equality, hash and repr (`backends.models.value.Value`) behave as the ones
`dataclass` would have compiled for each class, and every model still is a frozen dataclass."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from jobprep_release.backends import models
from jobprep_release.backends.models.common import ErrorCategory, ExecutionInfo, FailureInfo
from jobprep_release.backends.models.value import Value


@dataclass(frozen=True, slots=True)
class Plain:
    name: str
    size: int = 0
    secret: str = field(default="", repr=False)
    note: str = field(default="", compare=False)
    tags: tuple[str, ...] = field(default=(), hash=False)
    wait: timedelta | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Shared(Value):
    name: str
    size: int = 0
    secret: str = field(default="", repr=False)
    note: str = field(default="", compare=False)
    tags: tuple[str, ...] = field(default=(), hash=False)
    wait: timedelta | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class OneField(Value):
    value: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class NoField(Value):
    pass


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Holder(Value):
    items: list[object]


SAMPLES = [
    {"name": "a"},
    {"name": "a", "size": 2},
    {"name": "a", "secret": "s3cret"},
    {"name": "a", "note": "other note"},
    {"name": "a", "tags": ("x",)},
    {"name": "b", "wait": timedelta(seconds=3)},
]


def test_equality_hash_and_repr_are_the_dataclass_ones() -> None:
    for left in SAMPLES:
        plain, shared = Plain(**left), Shared(**left)  # type: ignore[arg-type]
        assert repr(shared) == repr(plain).replace("Plain(", "Shared(", 1)
        assert "s3cret" not in repr(shared)
        for right in SAMPLES:
            expected = Plain(**left) == Plain(**right)  # type: ignore[arg-type]
            assert (shared == Shared(**right)) is expected  # type: ignore[arg-type]
            assert (shared != Shared(**right)) is not expected  # type: ignore[arg-type]
            if expected:
                assert hash(shared) == hash(Shared(**right))  # type: ignore[arg-type]
        # The dataclass's hash is that of the tuple of the hashed fields: the same here.
        assert hash(shared) == hash(plain)


def test_other_classes_are_never_equal_and_one_field_compares_as_a_tuple() -> None:
    assert Shared("a") != Plain("a")
    assert Shared("a").__eq__(Plain("a")) is NotImplemented
    assert OneField(1.0) != Shared("a")
    nan = float("nan")
    # Tuples compare an object with itself as equal, as the dataclass's (nan,) == (nan,) does.
    assert OneField(nan) == OneField(nan)
    assert OneField(2.0) == OneField(2.0) and OneField(2.0) != OneField(3.0)
    assert NoField() == NoField() and hash(NoField()) == hash(())
    assert repr(NoField()) == "NoField()"


def test_recursive_repr_and_unhashable_fields_as_the_dataclass() -> None:
    holder = Holder([])
    holder.items.append(holder)
    assert repr(holder) == "Holder(items=[...])"
    with pytest.raises(TypeError):
        hash(Holder([]))


def test_models_are_frozen_slotted_dataclasses_on_value_with_nothing_compiled_twice() -> None:
    found = []
    for module_info in pkgutil.iter_modules(models.__path__):
        module = importlib.import_module(f"{models.__name__}.{module_info.name}")
        found += [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and value.__module__ == module.__name__
            and dataclasses.is_dataclass(value)
        ]
    assert len(found) >= 40
    for cls in found:
        assert issubclass(cls, Value), cls
        assert cls.__dataclass_params__.frozen, cls  # type: ignore[attr-defined]
        assert "__slots__" in cls.__dict__, cls
        assert not {"__eq__", "__hash__", "__repr__"} & set(cls.__dict__), cls
    failure = FailureInfo(ErrorCategory.USER_ERROR, "X", "m")
    info = ExecutionInfo(exit_code=1, failure_info=failure)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.exit_code = 2  # type: ignore[misc]
    assert dataclasses.replace(info, exit_code=2) != info
    assert dataclasses.replace(info, exit_code=1) == info
    assert repr(info).startswith("ExecutionInfo(start_time=None, end_time=None, exit_code=1, ")

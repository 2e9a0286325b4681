"""What azure-batch's models say about each REST property, and the generic operations built on it.

Every SDK model (typespec-generated) lists its REST properties (`properties`): the wire name, the
type (an object of another model, an array, a string, an enum string, an integer, a boolean, an
ISO 8601 duration or time), whether a create request must have it, and whether a create request
may send it at all. From that alone, with no per-property code:

- `conform` checks a request body against a model: ``MissingRequiredProperty`` and
  ``InvalidPropertyValue`` naming the property's path (`PropertyError`), numbers and booleans
  written as strings taken as the service's JSON reader takes them (the az CLI sends
  ``"targetDedicatedNodes": "1"``);
- `unreproduced` compares a request with what the project's specs reproduce of it, property by
  property (enum case, duration forms and the service's defaults normalised): whatever it lists
  the project would have dropped, so the endpoint refuses it;
- `with_defaults` and `as_json` give a model's JSON as the service returns it: the defaults it
  fills in (`DEFAULTS`) and durations in its form (``PT15M``; "unlimited" as .NET's
  ``TimeSpan.MaxValue``, ``P10675199DT2H48M5.4775807S``).

Source: the models of azure-batch 15 (api-version 2025-06-01) and the REST reference's
defaults for Add Pool, Add Job and Add Task.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any

from azure.batch import models
from azure.batch._utils.model_base import Model as SdkModel
from azure.batch.models import _models as sdk_models

from jobprep_release.backends.errors import InvalidRequest

Json = dict[str, Any]

UNLIMITED = "P10675199DT2H48M5.4775807S"
"""The service's "unlimited" duration (.NET's ``TimeSpan.MaxValue``)."""
_UNLIMITED_DAYS = 10675199
_DURATION = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)


# --- durations -------------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta | None:
    """An ISO 8601 duration; None for the service's "unlimited". `ValueError` when malformed."""
    upper = text.strip().upper()
    match = _DURATION.fullmatch(upper)
    if not match or upper in ("P", "PT") or upper.endswith("T"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT15M or P1DT2H")
    weeks, days, hours, minutes = (int(match[name] or 0) for name in "wdhm")
    seconds = float(match["s"] or 0)
    value = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    return limited(value)


def limited(value: timedelta | None) -> timedelta | None:
    """`value`, or None when it is the service's "unlimited" (or longer)."""
    return None if value is None or value.days >= _UNLIMITED_DAYS else value


def format_duration(value: timedelta | None) -> str:
    """A duration as the service writes it (``PT15M``, ``P7D``); None is "unlimited"."""
    if value is None:
        return UNLIMITED
    days, seconds, micros = value.days, value.seconds, value.microseconds
    text = "P" + (f"{days}D" if days else "")
    hours, rest = divmod(seconds, 3600)
    minutes, whole = divmod(rest, 60)
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if whole or micros:
        fraction = f".{micros:06d}".rstrip("0") if micros else ""
        clock += f"{whole}{fraction}S"
    if clock:
        text += "T" + clock
    return text if text != "P" else "PT0S"


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (``Z`` or an offset) as an aware datetime; `ValueError` when malformed."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- the properties of a model ---------------------------------------------------------------


class Kind(StrEnum):
    MODEL = "object"
    LIST = "array"
    MAP = "map of strings"
    TEXT = "string"
    CHOICE = "enum string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DURATION = "ISO 8601 duration"
    TIME = "ISO 8601 time"
    ANY = "value"


@dataclass(frozen=True, slots=True)
class Shape:
    """A property's type: `model` for objects, `item` for arrays, `choices` for enums."""

    kind: Kind
    model: type[SdkModel] | None = None
    item: Shape | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Property:
    attribute: str
    """The SDK's Python name (``vm_size``)."""
    name: str
    """The REST name (``vmSize``)."""
    shape: Shape
    required: bool
    """A create request must give it (the SDK types it as not optional)."""
    writable: bool
    """A create request may send it (the service sets the others: ``exactVersion``)."""


def is_model(value: Any) -> bool:
    """Whether `value` is an SDK model class."""
    return isinstance(value, type) and issubclass(value, SdkModel)


def _shape(hint: Any) -> tuple[Shape, bool]:
    """The shape of a type hint and whether it is optional."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        enums = [arg for arg in args if isinstance(arg, type) and issubclass(arg, enum.Enum)]
        if enums:
            return Shape(Kind.CHOICE, choices=tuple(str(m.value) for m in enums[0])), optional
        if len(args) == 1:
            return _shape(args[0])[0], optional
        return Shape(Kind.ANY), optional
    if origin is list:
        return Shape(Kind.LIST, item=_shape(typing.get_args(hint)[0])[0]), False
    if origin is dict:
        return Shape(Kind.MAP), False
    simple = {
        str: Kind.TEXT,
        int: Kind.INTEGER,
        float: Kind.NUMBER,
        bool: Kind.BOOLEAN,
        timedelta: Kind.DURATION,
        datetime: Kind.TIME,
    }
    if hint in simple:
        return Shape(simple[hint]), False
    if is_model(hint):
        return Shape(Kind.MODEL, model=hint), False
    return Shape(Kind.ANY), False


@cache
def properties(model: type) -> dict[str, Property]:
    """The model's REST properties by REST name, in the SDK's order."""
    model()  # the SDK computes its table of fields on first use
    hints = typing.get_type_hints(model, globalns={**vars(sdk_models), "_models": models})
    fields: dict[str, Any] = model._attr_to_rest_field  # type: ignore[attr-defined]
    found: dict[str, Property] = {}
    for attribute, field in fields.items():
        shape, optional = _shape(hints[attribute])
        visibility = field._visibility
        found[field._rest_name] = Property(
            attribute=attribute,
            name=field._rest_name,
            shape=shape,
            required=not optional,
            writable=visibility is None or "create" in visibility,
        )
    return found


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# --- checking a request ----------------------------------------------------------------------


class PropertyError(InvalidRequest):
    """A request property the service refuses: absent though required, or of the wrong form.

    `path` names it as the service does (``virtualMachineConfiguration.nodeAgentSKUId``,
    ``resourceFiles[0].filePath``); `reason` says what was expected (None when missing).
    """

    def __init__(self, path: str, reason: str | None = None) -> None:
        if reason is None:
            message = f"A required property was not specified in the request body: {path}"
            code = "MissingRequiredProperty"
        else:
            message = f"The value provided for {path} is invalid: {reason}"
            code = "InvalidPropertyValue"
        super().__init__(message, code=code)
        self.path = path
        self.reason = reason


def conform(model: type, document: Any, path: str = "") -> Json:
    """`document` checked against `model`, as JSON of the model's types; `PropertyError`
    otherwise. Nulls are left out; properties the model does not have are kept as sent."""
    if not isinstance(document, Mapping):
        raise PropertyError(path or "body", "expected an object")
    known = properties(model)
    result: Json = {}
    for name, value in document.items():
        if value is None:
            continue
        found = known.get(name)
        result[name] = value if found is None else _conform(found.shape, value, join(path, name))
    for found in known.values():
        if found.required and found.writable:
            value = result.get(found.name)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise PropertyError(join(path, found.name))
    return result


def _conform(shape: Shape, value: Any, path: str) -> Any:
    kind = shape.kind
    if kind is Kind.MODEL:
        assert shape.model is not None
        return conform(shape.model, value, path)
    if kind is Kind.LIST:
        if not isinstance(value, list):
            raise PropertyError(path, "expected an array")
        assert shape.item is not None
        return [_conform(shape.item, item, f"{path}[{index}]") for index, item in enumerate(value)]
    if kind is Kind.MAP:
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            raise PropertyError(path, "expected an object of strings")
        return dict(value)
    if kind is Kind.INTEGER:
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise PropertyError(path, "expected an integer")
        return value
    if kind is Kind.BOOLEAN:
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if not isinstance(value, bool):
            raise PropertyError(path, "expected true or false")
        return value
    if kind is Kind.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PropertyError(path, "expected a number")
        return value
    if kind is Kind.ANY:
        return value
    if not isinstance(value, str):
        raise PropertyError(path, f"expected a string ({kind.value})")
    try:
        if kind is Kind.DURATION:
            parse_duration(value)
        elif kind is Kind.TIME:
            parse_time(value)
    except ValueError as exc:
        raise PropertyError(path, str(exc)) from None
    if kind is Kind.CHOICE and value.lower() not in {c.lower() for c in shape.choices}:
        raise PropertyError(path, "expected one of " + ", ".join(shape.choices))
    return value


# --- comparing a request with what was kept of it --------------------------------------------


def _empty(value: Any) -> bool:
    if isinstance(value, Mapping):
        return all(_empty(item) for item in value.values())
    return value is None or value == []


def unreproduced(model: type, asked: Mapping[str, Any], kept: Mapping[str, Any]) -> list[str]:
    """The paths of `asked`'s properties that `kept` lacks or holds with another value.

    Both are JSON of `model` (`kept` with the service's defaults filled in, `with_defaults`).
    Values compare as the service reads them: enums without regard to case, durations by
    length, times by instant. A property absent from `kept` is named whole (``startTask``),
    not property by property.
    """
    return _unreproduced(model, asked, kept, "")


def _unreproduced(
    model: type, asked: Mapping[str, Any], kept: Mapping[str, Any], path: str
) -> list[str]:
    known = properties(model)
    missing: list[str] = []
    for name, value in asked.items():
        if _empty(value):
            continue
        where = join(path, name)
        other = kept.get(name)
        if other is None or _empty(other):
            missing.append(where)
            continue
        found = known.get(name)
        if found is None:
            missing += [] if value == other else [where]
        else:
            missing += _differences(found.shape, value, other, where)
    return missing


def _differences(shape: Shape, value: Any, other: Any, path: str) -> list[str]:
    if shape.kind is Kind.MODEL:
        assert shape.model is not None
        if not isinstance(value, Mapping) or not isinstance(other, Mapping):
            return [path]
        return _unreproduced(shape.model, value, other, path)
    if shape.kind is Kind.LIST:
        if not isinstance(value, list) or not isinstance(other, list) or len(value) != len(other):
            return [path]
        assert shape.item is not None
        return [
            difference
            for index, (item, kept) in enumerate(zip(value, other, strict=True))
            for difference in _differences(shape.item, item, kept, f"{path}[{index}]")
        ]
    return [] if same(shape, value, other) else [path]


def same(shape: Shape, value: Any, other: Any) -> bool:
    """Whether two JSON values of `shape` mean the same to the service."""
    try:
        if shape.kind is Kind.CHOICE:
            return str(value).lower() == str(other).lower()
        if shape.kind is Kind.DURATION:
            return parse_duration(str(value)) == parse_duration(str(other))
        if shape.kind is Kind.TIME:
            return parse_time(str(value)) == parse_time(str(other))
    except ValueError:
        return False
    return bool(value == other)


# --- the service's defaults and forms --------------------------------------------------------

_POOL = {
    "resizeTimeout": "PT15M",
    "targetDedicatedNodes": 0,
    "targetLowPriorityNodes": 0,
    "enableAutoScale": False,
    "enableInterNodeCommunication": False,
    "taskSlotsPerNode": 1,
    "taskSchedulingPolicy": {},
}
_JOB = {
    "priority": 0,
    "maxParallelTasks": -1,
    "allowTaskPreemption": False,
    "usesTaskDependencies": False,
    "onAllTasksComplete": "noaction",
    "onTaskFailure": "noaction",
    "constraints": {},
}
_TASK = {"requiredSlots": 1, "constraints": {}}

DEFAULTS: Mapping[type, Mapping[str, Any]] = {
    models.BatchPoolCreateOptions: _POOL,
    models.BatchPool: {**_POOL, "currentLowPriorityNodes": 0},
    models.BatchPoolSpecification: _POOL,
    models.BatchAutoPoolSpecification: {"keepAlive": False},
    models.BatchTaskSchedulingPolicy: {"nodeFillType": "spread", "jobDefaultOrder": "none"},
    models.BatchJobCreateOptions: _JOB,
    models.BatchJob: _JOB,
    models.BatchJobConstraints: {"maxWallClockTime": UNLIMITED, "maxTaskRetryCount": 0},
    models.BatchJobPreparationTask: {
        "id": "jobpreparation",
        "waitForSuccess": True,
        "rerunOnNodeRebootAfterSuccess": True,
        "constraints": {},
    },
    models.BatchJobReleaseTask: {
        "id": "jobrelease",
        "maxWallClockTime": "PT15M",
        "retentionTime": "P7D",
    },
    models.BatchTaskConstraints: {"maxWallClockTime": UNLIMITED, "retentionTime": "P7D"},
    models.BatchTaskCreateOptions: _TASK,
    models.BatchTask: _TASK,
    models.AutoUserSpecification: {"scope": "pool", "elevationLevel": "nonadmin"},
    models.BatchStartTask: {"maxTaskRetryCount": 0, "waitForSuccess": True},
    models.UserAccount: {"elevationLevel": "nonadmin"},
    models.BatchPoolResizeOptions: {
        "targetDedicatedNodes": 0,
        "targetLowPriorityNodes": 0,
        "resizeTimeout": "PT15M",
        "nodeDeallocationOption": "requeue",
    },
    sdk_models.BatchNodeRebootOptions: {"nodeRebootOption": "requeue"},
    models.NetworkConfiguration: {
        "dynamicVNetAssignmentScope": "none",
        "enableAcceleratedNetworking": False,
    },
    sdk_models.BatchNodeReimageOptions: {"nodeReimageOption": "requeue"},
}
"""Per model, the values the service gives properties a request leaves out (REST reference,
api-version 2025-06-01: Add Pool with its StartTask and UserAccount, Add Job, Add Task, Resize
Pool, Reboot Node, Reimage Node).
An object default (``{}``) is filled in with its own defaults."""


def with_defaults(model: type, document: Mapping[str, Any]) -> Json:
    """`document` (JSON of `model`) with the service's defaults for what it leaves out."""
    result: Json = dict(document)
    for name, value in DEFAULTS.get(model, {}).items():
        if result.get(name) is None:
            result[name] = dict(value) if isinstance(value, Mapping) else value
    known = properties(model)
    for name, value in result.items():
        found = known.get(name)
        if found is None:
            continue
        shape = found.shape
        if shape.kind is Kind.MODEL and isinstance(value, Mapping):
            assert shape.model is not None
            result[name] = with_defaults(shape.model, value)
        elif shape.kind is Kind.LIST and shape.item and shape.item.kind is Kind.MODEL:
            inner = shape.item.model
            assert inner is not None
            result[name] = [with_defaults(inner, item) for item in value]
    return result


def _canonical(model: type, document: Mapping[str, Any]) -> Json:
    """Durations in the service's form (the SDK writes ``PT15M00S``), recursively."""
    known = properties(model)
    result: Json = {}
    for name, value in document.items():
        found = known.get(name)
        result[name] = value if found is None else _canonical_value(found.shape, value)
    return result


def _canonical_value(shape: Shape, value: Any) -> Any:
    if shape.kind is Kind.DURATION and isinstance(value, str):
        return format_duration(parse_duration(value))
    if shape.kind is Kind.MODEL and isinstance(value, Mapping):
        assert shape.model is not None
        return _canonical(shape.model, value)
    if shape.kind is Kind.LIST and isinstance(value, list):
        assert shape.item is not None
        return [_canonical_value(shape.item, item) for item in value]
    return value


def as_json(model: Any, *, defaults: bool = True) -> Json:
    """An SDK model as the service's JSON: ``as_dict()``, with its defaults (`with_defaults`)
    unless `defaults` is false, durations in the service's form."""
    document: Json = model.as_dict()
    if defaults:
        document = with_defaults(type(model), document)
    return _canonical(type(model), document)

"""Evaluating a parsed autoscale formula against a pool's state and metric history.

Statements run in order; a name holds what was last assigned to it (a user's name as written:
``$x`` and ``x`` are two variables, inferred from the documentation's "the dollar sign is
optional"). The service-defined
variables start as the pool has them (`$TargetDedicatedNodes`, `$TargetLowPriorityNodes`: the
current targets; `$NodeDeallocationOption`: ``requeue``); the read-only ones (`$ActiveTasks`,
`$CurrentDedicatedNodes`, `$TaskSlotsPerNode`, ...) read as their value now, and the sampled ones
also answer the sample methods. ``stop()`` ends the evaluation, keeping what was assigned.
The ternary evaluates only the branch it takes; ``&&`` and ``||`` give 1 or 0.

The documented semantics (learn.microsoft.com, "Create a formula to automatically scale compute
nodes in a Batch pool"): the doubleVecList functions flatten their arguments into one vector;
``std`` is the sample standard deviation; ``percentile(v, p)`` the nearest-rank element;
``round`` rounds half to even (.NET's Math.Round); ``GetSample(count)`` the latest `count`
samples, newest first; ``GetSample(start [, end] [, percent])`` the samples in the window
between the two look-backs (time intervals back from now, or timestamps; half-open, so a
180-second window holds 6 samples of 30 s), failing with ``InsufficientSampleData`` when fewer
than `percent` of the window's samples are there; ``GetSamplePercent`` that percentage.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from jobprep_release.backends.docker.core.autoscale import names, parser
from jobprep_release.backends.docker.core.autoscale.errors import (
    INSUFFICIENT_SAMPLES,
    FormulaError,
    Position,
    evaluation_error,
)
from jobprep_release.backends.docker.core.autoscale.samples import SAMPLE_PERIOD, Sample
from jobprep_release.backends.docker.core.autoscale.values import (
    Interval,
    Timestamp,
    Value,
    Vector,
    number,
    type_name,
    written,
)


@dataclass(frozen=True, slots=True)
class Inputs:
    """What a formula reads: the time, the pool's targets, the read-only variables' values
    now (`names.MEASURED` and `names.PLAIN`), and the history (oldest first)."""

    now: float
    target_dedicated: float
    target_low_priority: float
    current: Mapping[str, float]
    samples: Sequence[Sample] = ()
    rand: Callable[[], float] = field(default=random.random)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the formula set: the targets (doubles, as assigned), the deallocation option, and
    the ``results`` string (``$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;
    $NodeDeallocationOption=requeue`` then the user's variables by name)."""

    target_dedicated: float
    target_low_priority: float
    deallocation: str
    results: str


def unmeasured(statements: Sequence[parser.Statement]) -> list[str]:
    """The service variables the formula reads that the core does not measure, in order."""
    found: list[str] = []
    for statement in statements:
        for node in _walk(statement.value):
            name = node.variable if isinstance(node, parser.Method) else None
            name = node.name if isinstance(node, parser.Name) else name
            if name in names.UNMEASURED and name not in found:
                found.append(name)
    return found


def _walk(node: parser.Expression) -> Iterator[parser.Expression]:
    yield node
    children: tuple[parser.Expression, ...] = ()
    if isinstance(node, parser.Unary):
        children = (node.operand,)
    elif isinstance(node, parser.Binary):
        children = (node.left, node.right)
    elif isinstance(node, parser.Ternary):
        children = (node.condition, node.then, node.otherwise)
    elif isinstance(node, parser.Call | parser.Method):
        children = node.arguments
    elif isinstance(node, parser.Member):
        children = (node.target,)
    for child in children:
        yield from _walk(child)


def evaluate(statements: Sequence[parser.Statement], inputs: Inputs) -> Outcome:
    """Run the statements; `FormulaError` when one fails (nothing is applied then)."""
    return _Evaluation(inputs).run(statements)


class _Stop(Exception):
    """stop() was called."""


class _Evaluation:
    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self.variables: dict[str, Value] = {
            names.TARGET_DEDICATED: float(inputs.target_dedicated),
            names.TARGET_LOW_PRIORITY: float(inputs.target_low_priority),
            names.DEALLOCATION: "requeue",
        }
        self.assigned: set[str] = set()

    def run(self, statements: Sequence[parser.Statement]) -> Outcome:
        for statement in statements:
            try:
                value = self.value(statement.value)
            except _Stop:
                break
            if statement.target is not None:
                self.assign(statement.target, value, statement.position)
        for alias, name in names.ALIASES.items():
            if alias in self.assigned and name not in self.assigned:
                self.variables[name] = self.variables[alias]
        return self.outcome()

    def assign(self, target: str, value: Value, position: Position) -> None:
        if target in names.SETTABLE or target in names.ALIASES:
            wanted = "string" if target == names.DEALLOCATION else "double"
            if type_name(value) != wanted:
                raise evaluation_error(
                    f"{target} takes a {wanted}, not a {type_name(value)}", position
                )
            if target == names.DEALLOCATION and value not in names.DEALLOCATION_OPTIONS:
                raise evaluation_error(
                    f"{target} is one of {', '.join(names.DEALLOCATION_OPTIONS)}", position
                )
        self.variables[target] = value
        self.assigned.add(target)

    def outcome(self) -> Outcome:
        dedicated = self.variables[names.TARGET_DEDICATED]
        low_priority = self.variables[names.TARGET_LOW_PRIORITY]
        deallocation = self.variables[names.DEALLOCATION]
        assert isinstance(dedicated, float) and isinstance(low_priority, float)
        assert isinstance(deallocation, str)
        user = sorted(
            (name for name in self.variables if name not in names.SETTABLE),
            key=lambda name: (name.lstrip("$").lower(), name),
        )
        user = [name for name in user if name not in names.ALIASES]
        ordered = [*names.SETTABLE, *user]
        results = ";".join(f"{name}={written(self.variables[name])}" for name in ordered)
        return Outcome(dedicated, low_priority, deallocation, results)

    # --- expressions -------------------------------------------------------------------------

    def value(self, node: parser.Expression) -> Value:
        if isinstance(node, parser.Number):
            return node.value
        if isinstance(node, parser.String):
            return node.value
        if isinstance(node, parser.Name):
            return self.name(node)
        if isinstance(node, parser.Unary):
            return _unary(node.operator, self.value(node.operand), node.position)
        if isinstance(node, parser.Binary):
            return self.binary(node)
        if isinstance(node, parser.Ternary):
            condition = self.double(node.condition, "the condition of ?:")
            return self.value(node.then if condition else node.otherwise)
        if isinstance(node, parser.Call):
            return self.call(node)
        if isinstance(node, parser.Method):
            return self.method(node)
        target = self.value(node.target)
        if not isinstance(target, Timestamp):
            raise evaluation_error(
                f"{node.member} is a member of a timestamp, not a {type_name(target)}",
                node.position,
            )
        return target.member(node.member)

    def double(self, node: parser.Expression, what: str) -> float:
        value = self.value(node)
        if not isinstance(value, float):
            raise evaluation_error(f"{what} is a {type_name(value)}, not a double", _at(node))
        return value

    def name(self, node: parser.Name) -> Value:
        name = node.name
        if name in names.INTERVALS:
            return Interval(names.INTERVALS[name])
        if name in names.DEALLOCATION_OPTIONS:
            return name
        if name in self.variables:
            return self.variables[name]
        if name in names.ALIASES:
            return self.variables[names.ALIASES[name]]
        if name in self.inputs.current:
            return float(self.inputs.current[name])
        raise evaluation_error(f"{name} is used before it is assigned", node.position)

    def binary(self, node: parser.Binary) -> Value:
        operator = node.operator
        if operator in ("&&", "||"):
            left = self.double(node.left, f"the left side of {operator}")
            if (operator == "&&" and not left) or (operator == "||" and left):
                return float(bool(left))
            return float(bool(self.double(node.right, f"the right side of {operator}")))
        return _binary(operator, self.value(node.left), self.value(node.right), node.position)

    # --- functions ---------------------------------------------------------------------------

    def call(self, node: parser.Call) -> Value:
        function, position = node.function, node.position
        arguments = [self.value(argument) for argument in node.arguments]
        if function == "stop":
            _arity(function, arguments, 0, 0, position)
            raise _Stop
        if function == "rand":
            _arity(function, arguments, 0, 0, position)
            return self.inputs.rand()
        if function == "time":
            _arity(function, arguments, 0, 1, position)
            if not arguments:
                return Timestamp(self.inputs.now)
            text = arguments[0]
            if not isinstance(text, str):
                raise evaluation_error("time() takes a string", position)
            return Timestamp(_parse_time(text, position))
        if function == "val":
            _arity(function, arguments, 2, 2, position)
            vector, index = _items(arguments[:1], function, position), arguments[1]
            if not isinstance(index, float) or index != int(index):
                raise evaluation_error("val() takes a whole index", position)
            if not 0 <= index < len(vector):
                raise evaluation_error(
                    f"val() index {number(index)} is outside a vector of {len(vector)}", position
                )
            return vector[int(index)]
        if function == "percentile":
            _arity(function, arguments, 2, 2, position)
            vector, share = _items(arguments[:1], function, position), arguments[1]
            if not isinstance(share, float) or not 0 <= share <= 100:
                raise evaluation_error("percentile() takes a percentage from 0 to 100", position)
            ordered = sorted(_nonempty(vector, function, position))
            return ordered[_rank(len(ordered), share)]
        if function in _ELEMENTWISE:
            _arity(function, arguments, 1, None, position)
            apply = _ELEMENTWISE[function]
            if len(arguments) == 1 and isinstance(arguments[0], float):
                return apply(arguments[0])
            return Vector(tuple(apply(item) for item in _items(arguments, function, position)))
        items = _items(arguments, function, position)
        return _REDUCERS[function](items, position)

    # --- sample methods ----------------------------------------------------------------------

    def method(self, node: parser.Method) -> Value:
        variable, method, position = node.variable, node.method, node.position
        arguments = [self.value(argument) for argument in node.arguments]
        history = [
            (sample.time, float(sample.values[variable]))
            for sample in self.inputs.samples
            if variable in sample.values
        ]
        if method == "GetSamplePeriod":
            _arity(method, arguments, 0, 0, position)
            return Interval(SAMPLE_PERIOD)
        if method == "Count":
            _arity(method, arguments, 0, 0, position)
            return float(len(history))
        if method == "HistoryBeginTime":
            _arity(method, arguments, 0, 0, position)
            if not history:
                raise FormulaError(
                    INSUFFICIENT_SAMPLES, f"No data in data set: {variable}", position
                )
            return Timestamp(history[0][0])
        if method == "GetSamplePercent":
            _arity(method, arguments, 1, 2, position)
            _, percent = self.window(history, arguments, position, method)
            return percent
        _arity(method, arguments, 1, 3, position)
        if isinstance(arguments[0], float):
            if len(arguments) != 1:
                raise evaluation_error("GetSample(count) takes one argument", position)
            wanted = arguments[0]
            if wanted != int(wanted) or wanted < 1:
                raise evaluation_error(
                    "GetSample(count) takes a whole count of 1 or more", position
                )
            if len(history) < wanted:
                raise FormulaError(
                    INSUFFICIENT_SAMPLES,
                    f"Insufficient data from data set: {variable} wanted {number(wanted)} "
                    f"samples, received {len(history)}",
                    position,
                )
            return Vector(tuple(value for _, value in reversed(history[-int(wanted) :])))
        required = 0.0
        last = arguments[-1]
        if isinstance(last, float):
            required = last
            arguments.pop()
        found, percent = self.window(history, arguments, position, method)
        if percent < required:
            raise FormulaError(
                INSUFFICIENT_SAMPLES,
                f"Insufficient data from data set: {variable} wanted {number(required)}%, "
                f"received {number(math.floor(percent))}%",
                position,
            )
        return Vector(tuple(reversed(found)))

    def window(
        self,
        history: list[tuple[float, float]],
        bounds: list[Value],
        position: Position,
        method: str,
    ) -> tuple[list[float], float]:
        """The values in the window `bounds` names (oldest first), and the percentage of the
        window's samples they are."""
        if not 1 <= len(bounds) <= 2:
            raise evaluation_error(f"{method} takes a start and an optional end", position)
        now = self.inputs.now
        times = [_moment(bound, now, method, position) for bound in bounds]
        if len(times) == 1:
            times.append(now)
        low, high = min(times), max(times)
        found = [value for time, value in history if low < time <= high]
        expected = math.floor((high - low) / SAMPLE_PERIOD + 1e-9)
        percent = 100.0 if expected == 0 else min(100.0, 100.0 * len(found) / expected)
        return found, percent


def _moment(bound: Value, now: float, method: str, position: Position) -> float:
    if isinstance(bound, Interval):
        return now - bound.seconds
    if isinstance(bound, Timestamp):
        return bound.epoch
    raise evaluation_error(
        f"{method} takes time intervals or timestamps, not a {type_name(bound)}", position
    )


def _at(node: parser.Expression) -> Position:
    return node.position


def _arity(
    name: str, arguments: Sequence[Value], low: int, high: int | None, position: Position
) -> None:
    if len(arguments) < low or (high is not None and len(arguments) > high):
        raise evaluation_error(f"{name}() does not take {len(arguments)} arguments", position)


def _items(arguments: Sequence[Value], function: str, position: Position) -> list[float]:
    """A doubleVecList as one vector."""
    items: list[float] = []
    for argument in arguments:
        if isinstance(argument, float):
            items.append(argument)
        elif isinstance(argument, Vector):
            items.extend(argument.items)
        else:
            raise evaluation_error(
                f"{function}() takes doubles and doubleVecs, not a {type_name(argument)}",
                position,
            )
    return items


def _nonempty(items: list[float], function: str, position: Position) -> list[float]:
    if not items:
        raise evaluation_error(f"{function}() of an empty vector", position)
    return items


def _rank(count: int, share: float) -> int:
    """The nearest-rank index of the `share` percentile among `count` sorted values."""
    return min(count - 1, max(0, math.ceil(share / 100 * count) - 1))


def _std(items: list[float], position: Position) -> float:
    _nonempty(items, "std", position)
    if len(items) == 1:
        return 0.0
    mean = sum(items) / len(items)
    return math.sqrt(sum((item - mean) ** 2 for item in items) / (len(items) - 1))


_REDUCERS: dict[str, Callable[[list[float], Position], float]] = {
    "avg": lambda items, at: sum(_nonempty(items, "avg", at)) / len(items),
    "len": lambda items, at: float(len(items)),
    "max": lambda items, at: max(_nonempty(items, "max", at)),
    "min": lambda items, at: min(_nonempty(items, "min", at)),
    "norm": lambda items, at: math.sqrt(sum(item * item for item in items)),
    "range": lambda items, at: max(_nonempty(items, "range", at)) - min(items),
    "std": _std,
    "sum": lambda items, at: float(sum(items)),
}


def _logarithm(base: float) -> Callable[[float], float]:
    def apply(value: float) -> float:
        if value > 0:
            return math.log(value, base) if base != math.e else math.log(value)
        return -math.inf if value == 0 else math.nan

    return apply


_ELEMENTWISE: dict[str, Callable[[float], float]] = {
    "lg": _logarithm(2.0),
    "ln": _logarithm(math.e),
    "log": _logarithm(10.0),
    "ceil": lambda value: float(math.ceil(value)),
    "floor": lambda value: float(math.floor(value)),
    "round": lambda value: float(round(value)),
}


def _parse_time(text: str, position: Position) -> float:
    """W3C-DTF (ISO 8601) or RFC 1123, as the documentation's time() takes."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise evaluation_error(f"time() cannot read '{text}'", position) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _divide(left: float, right: float) -> float:
    if right:
        return left / right
    # IEEE division, as .NET's doubles divide.
    return math.nan if left == 0 or math.isnan(left) else math.copysign(math.inf, left)


_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
}
_COMPARISON: dict[str, Callable[[float | str, float | str], bool]] = {
    "<": lambda a, b: a < b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">": lambda a, b: a > b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _comparable(value: Value) -> float | str | None:
    if isinstance(value, float | str):
        return value
    if isinstance(value, Timestamp):
        return value.epoch
    if isinstance(value, Interval):
        return value.seconds
    return None


def _binary(operator: str, left: Value, right: Value, position: Position) -> Value:
    if operator in _COMPARISON:
        a, b = _comparable(left), _comparable(right)
        if a is not None and b is not None and type(left) is type(right):
            return float(_COMPARISON[operator](a, b))
    else:
        result = _arithmetic(operator, left, right, position)
        if result is not None:
            return result
    raise evaluation_error(
        f"{type_name(left)} {operator} {type_name(right)} is not an operation of the language",
        position,
    )


def _arithmetic(operator: str, left: Value, right: Value, position: Position) -> Value | None:
    apply = _ARITHMETIC[operator]
    if isinstance(left, float) and isinstance(right, float):
        return apply(left, right)
    if isinstance(left, Vector) or isinstance(right, Vector):
        return _vector(apply, left, right, position)
    match operator, left, right:
        case "*", Interval(), float():
            return Interval(left.seconds * right)
        case "*", float(), Interval():
            return Interval(left * right.seconds)
        case "/", Interval(), float():
            return Interval(_divide(left.seconds, right))
        case (("+" | "-"), Interval(), Interval()):
            return Interval(apply(left.seconds, right.seconds))
        case "+", Interval(), Timestamp():
            return Timestamp(right.epoch + left.seconds)
        case (("+" | "-"), Timestamp(), Interval()):
            return Timestamp(apply(left.epoch, right.seconds))
        case "-", Timestamp(), Timestamp():
            return Interval(left.epoch - right.epoch)
    return None


def _vector(
    apply: Callable[[float, float], float], left: Value, right: Value, position: Position
) -> Vector | None:
    if isinstance(left, Vector) and isinstance(right, Vector):
        if len(left.items) != len(right.items):
            raise evaluation_error(
                f"vectors of {len(left.items)} and {len(right.items)} values", position
            )
        return Vector(tuple(apply(a, b) for a, b in zip(left.items, right.items, strict=True)))
    if isinstance(left, Vector) and isinstance(right, float):
        return Vector(tuple(apply(a, right) for a in left.items))
    if isinstance(left, float) and isinstance(right, Vector):
        return Vector(tuple(apply(left, b) for b in right.items))
    return None


def _unary(operator: str, operand: Value, position: Position) -> Value:
    if operator == "!" and isinstance(operand, float):
        return float(not operand)
    if operator == "-":
        if isinstance(operand, float):
            return -operand
        if isinstance(operand, Interval):
            return Interval(-operand.seconds)
        if isinstance(operand, Vector):
            return Vector(tuple(-item for item in operand.items))
    raise evaluation_error(f"{operator} does not apply to a {type_name(operand)}", position)

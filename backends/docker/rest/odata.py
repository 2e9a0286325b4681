"""List queries as the service takes them: ``$filter``, ``$select``, ``maxresults``, paging.

``$filter`` is a small OData expression language, evaluated here on the rendered JSON of each
item: comparisons (``eq ne gt ge lt le``) of a property path (``state``,
``executionInfo/exitCode``) with a literal (``'text'``, numbers, ``true``, ``false``, ``null``,
``datetime'2025-01-01T00:00:00Z'``), ``and``, ``or``, ``not``, parentheses, and
``startswith(path, 'text')``/``endswith(...)``. Text compares without regard to case, as
Batch ids are unique without regard to case. Anything else is refused with 400
``InvalidQueryParameterValue`` naming the parameter.

Pages hold at most ``maxresults`` items (default and maximum 1000); a page that is not the last
carries ``odata.nextLink``: the same query with a ``$skiptoken``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from jobprep_release.backends.docker.rest.errors import RestError

MAX_RESULTS = 1000
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<datetime>datetime'[^']*')"
    r"|(?P<number>-?\d+(?:\.\d+)?)(?![\w/])|(?P<name>[A-Za-z_$][\w/]*)|(?P<punct>[(),]))"
)
_COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
_FUNCTIONS = ("startswith", "endswith")

Item = Mapping[str, Any]
Predicate = Callable[[Item], bool]


def bad_query(parameter: str, value: str, reason: str) -> RestError:
    return RestError(
        400,
        "InvalidQueryParameterValue",
        f"Value for one of the query parameters specified in the request URI is invalid: "
        f"{parameter}: {reason}",
        [("QueryParameterName", parameter), ("QueryParameterValue", value), ("Reason", reason)],
    )


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class _Path:
    parts: tuple[str, ...]

    def value(self, item: Item) -> Any:
        current: Any = item
        for part in self.parts:
            if not isinstance(current, Mapping):
                return None
            current = current.get(part)
        return current


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any


_Operand = _Path | _Literal


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].isspace():
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"unexpected text at position {position}: {text[position:][:20]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append(_Token(kind, match[kind]))
        position = match.end()
    return tokens


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Bring two values to one type: text without case, times as times."""
    if isinstance(right, datetime) and isinstance(left, str):
        try:
            return _parse_time(left), right
        except ValueError:
            return None, right
    if isinstance(left, datetime) and isinstance(right, str):
        return _comparable(right, left)[::-1]
    if isinstance(left, str) and isinstance(right, str):
        return left.lower(), right.lower()
    return left, right


def _compare(op: str, left: Any, right: Any) -> bool:
    left, right = _comparable(left, right)
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        if op == "gt":
            return bool(left > right)
        if op == "ge":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


class _Parser:
    """Recursive descent over the tokens of one ``$filter``."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._at = 0

    def _peek(self) -> _Token | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _take(self) -> _Token:
        token = self._peek()
        if token is None:
            raise ValueError("the expression ends too early")
        self._at += 1
        return token

    def _keyword(self, *words: str) -> str | None:
        token = self._peek()
        if token is not None and token.kind == "name" and token.text.lower() in words:
            self._at += 1
            return token.text.lower()
        return None

    def _expect(self, text: str) -> None:
        token = self._take()
        if token.text != text:
            raise ValueError(f"expected {text!r}, found {token.text!r}")

    def parse(self) -> Predicate:
        predicate = self._or()
        if self._peek() is not None:
            raise ValueError(f"unexpected {self._take().text!r}")
        return predicate

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._keyword("or"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else lambda item: any(p(item) for p in parts)

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._keyword("and"):
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else lambda item: all(p(item) for p in parts)

    def _unary(self) -> Predicate:
        if self._keyword("not"):
            inner = self._unary()
            return lambda item: not inner(item)
        token = self._peek()
        if token is not None and token.text == "(":
            self._take()
            inner = self._or()
            self._expect(")")
            return inner
        function = self._keyword(*_FUNCTIONS)
        if function is not None:
            return self._function(function)
        return self._comparison()

    def _function(self, name: str) -> Predicate:
        self._expect("(")
        subject = self._operand()
        self._expect(",")
        argument = self._operand()
        self._expect(")")

        def test(item: Item) -> bool:
            value, prefix = _value(subject, item), _value(argument, item)
            if not isinstance(value, str) or not isinstance(prefix, str):
                return False
            if name == "startswith":
                return value.lower().startswith(prefix.lower())
            return value.lower().endswith(prefix.lower())

        return test

    def _comparison(self) -> Predicate:
        left = self._operand()
        op = self._keyword(*_COMPARISONS)
        if op is None:
            found = self._peek()
            raise ValueError(
                f"expected a comparison ({', '.join(_COMPARISONS)}) after an operand, found "
                f"{found.text if found else 'the end'!r}"
            )
        right = self._operand()
        return lambda item: _compare(op, _value(left, item), _value(right, item))

    def _operand(self) -> _Operand:
        token = self._take()
        if token.kind == "string":
            return _Literal(token.text[1:-1].replace("''", "'"))
        if token.kind == "datetime":
            return _Literal(_parse_time(token.text[len("datetime'") : -1]))
        if token.kind == "number":
            return _Literal(float(token.text) if "." in token.text else int(token.text))
        if token.kind == "name":
            lowered = token.text.lower()
            if lowered in ("true", "false"):
                return _Literal(lowered == "true")
            if lowered == "null":
                return _Literal(None)
            return _Path(tuple(token.text.split("/")))
        raise ValueError(f"unexpected {token.text!r}")


def _value(operand: _Operand, item: Item) -> Any:
    return operand.value(item) if isinstance(operand, _Path) else operand.value


def compile_filter(text: str | None) -> Predicate:
    """The predicate of a ``$filter`` (everything passes when there is none)."""
    if text is None or not text.strip():
        return lambda item: True
    try:
        return _Parser(_tokens(text)).parse()
    except ValueError as exc:
        raise bad_query("$filter", text, str(exc)) from None


def select(items: Sequence[Item], text: str | None) -> list[dict[str, Any]]:
    """Keep only the ``$select``ed top-level properties of each item."""
    if not text:
        return [dict(item) for item in items]
    names = {name.strip().split("/")[0] for name in text.split(",") if name.strip()}
    return [{key: value for key, value in item.items() if key in names} for item in items]


@dataclass(frozen=True, slots=True)
class Query:
    """The list parameters of one request."""

    path: str
    params: Mapping[str, str]

    @property
    def filter(self) -> str | None:
        return self.params.get("$filter")

    @property
    def select(self) -> str | None:
        return self.params.get("$select")

    def max_results(self) -> int:
        text = self.params.get("maxresults")
        if text is None:
            return MAX_RESULTS
        if not text.isdigit() or not 1 <= int(text) <= MAX_RESULTS:
            raise bad_query("maxresults", text, f"give a whole number from 1 to {MAX_RESULTS}")
        return int(text)

    def skip(self) -> int:
        text = self.params.get("$skiptoken") or self.params.get("$skipToken") or "0"
        if not text.isdigit():
            raise bad_query("$skiptoken", text, "not a token this endpoint gave")
        return int(text)


def page(query: Query, items: Sequence[Item], base_url: str) -> dict[str, Any]:
    """One page of a list answer: filter, then select, then cut at the skip token."""
    predicate = compile_filter(query.filter)
    kept = [item for item in items if predicate(item)]
    start, size = query.skip(), query.max_results()
    document: dict[str, Any] = {"value": select(kept[start : start + size], query.select)}
    if start + size < len(kept):
        params = {
            key: value
            for key, value in query.params.items()
            if key.lower() != "$skiptoken" and key != "api-version"
        }
        params["$skiptoken"] = str(start + size)
        params["api-version"] = query.params.get("api-version", "")
        document["odata.nextLink"] = (
            f"{base_url}{query.path}?{urlencode(params, quote_via=quote, safe='$,')}"
        )
    return document

"""List queries as the service takes them: ``$filter``, ``$select``, ``maxresults``, paging.

``$filter`` is a small OData expression language, evaluated here on the rendered JSON of each
item: comparisons (``eq ne gt ge lt le``) of a property path (``state``,
``executionInfo/exitCode``) with a literal (``'text'``, numbers, ``true``, ``false``, ``null``,
``datetime'2025-01-01T00:00:00Z'``), ``and``, ``or``, ``not``, parentheses, and
``startswith(path, 'text')``/``endswith(...)``. Text compares without regard to case, as
Batch ids are unique without regard to case. Anything else is refused with 400
``InvalidQueryParameterValue`` naming the parameter.

Query parameters are named without regard to case, as the service takes them (``maxResults``,
``$FILTER``). Pages hold at most ``maxresults`` items (1 to 1000, default 1000; anything else is
400 ``InvalidQueryParameterValue`` naming ``maxresults``); a page that is not the last carries
``odata.nextLink``: the same query with a ``$skiptoken``. ``$select`` names top-level properties
of the listed type; a name the type does not have is refused the same way, naming ``$select``
(inferred: the Batch error-code reference gives this code for any invalid query value).

A list is a `Listing`: the items as cheap views, how to render one (through azure-batch's models,
the expensive part) and, optionally, a cheap per-item index holding the properties a filter
usually names. `page` evaluates ``$filter`` on the index when every property the filter names is
indexed (else on the rendered item), stops as soon as it knows whether another page follows, and
renders only the items of the page asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode

from jobprep_release.backends.docker.core.pace import Pace
from jobprep_release.backends.docker.rest.errors import RestError

MAX_RESULTS = 1000
SLICE = 0.005
"""Seconds of work after which `page_sliced` hands the event loop back."""
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<datetime>datetime'[^']*')"
    r"|(?P<number>-?\d+(?:\.\d+)?)(?![\w/])|(?P<name>[A-Za-z_$][\w/]*)|(?P<punct>[(),]))"
)
_COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
_FUNCTIONS = ("startswith", "endswith")

Item = Mapping[str, Any]
Predicate = Callable[[Item], bool]
T = TypeVar("T")


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
        self.paths: set[str] = set()

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
            self.paths.add(token.text)
            return _Path(tuple(token.text.split("/")))
        raise ValueError(f"unexpected {token.text!r}")


def _value(operand: _Operand, item: Item) -> Any:
    return operand.value(item) if isinstance(operand, _Path) else operand.value


@dataclass(frozen=True, slots=True)
class Filter:
    """A compiled ``$filter``: its predicate and the property paths it names (``a/b``)."""

    predicate: Predicate | None
    paths: frozenset[str] = frozenset()


def parse_filter(text: str | None) -> Filter:
    """Compile a ``$filter``; a syntax error is 400 ``InvalidQueryParameterValue``."""
    if text is None or not text.strip():
        return Filter(None)
    try:
        parser = _Parser(_tokens(text))
        predicate = parser.parse()
    except ValueError as exc:
        raise bad_query("$filter", text, str(exc)) from None
    return Filter(predicate, frozenset(parser.paths))


def selected(text: str | None, names: Sequence[str] | None = None) -> list[str] | None:
    """The top-level properties a ``$select`` keeps (None: all). With `names` (the listed
    type's properties), a name it does not have is 400 ``InvalidQueryParameterValue``; names
    match without regard to case and come back as the type spells them."""
    if not text:
        return None
    asked = [name.strip().split("/")[0] for name in text.split(",") if name.strip()]
    if names is None:
        return asked
    known = {name.lower(): name for name in names}
    unknown = [name for name in asked if name.lower() not in known]
    if unknown:
        raise bad_query("$select", text, f"the property {unknown[0]!r} does not exist")
    return [known[name.lower()] for name in asked]


def select(
    items: Sequence[Item], text: str | None, names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Keep only the ``$select``ed top-level properties of each item (see `selected`)."""
    keep = selected(text, names)
    if keep is None:
        return [dict(item) for item in items]
    wanted = set(keep)
    return [{key: value for key, value in item.items() if key in wanted} for item in items]


@dataclass(frozen=True, slots=True)
class Query:
    """The list parameters of one request; `params` as sent (names in any case)."""

    path: str
    params: Mapping[str, str]

    def get(self, name: str) -> str | None:
        """A parameter by name without regard to case (the first one sent)."""
        wanted = name.lower()
        for key, value in self.params.items():
            if key.lower() == wanted:
                return value
        return None

    @property
    def filter(self) -> str | None:
        return self.get("$filter")

    @property
    def select(self) -> str | None:
        return self.get("$select")

    def max_results(self) -> int:
        text = self.get("maxresults")
        if text is None:
            return MAX_RESULTS
        if not text.isdigit() or not 1 <= int(text) <= MAX_RESULTS:
            raise bad_query("maxresults", text, f"give a whole number from 1 to {MAX_RESULTS}")
        return int(text)

    def skip(self) -> int:
        text = self.get("$skiptoken") or "0"
        if not text.isdigit():
            raise bad_query("$skiptoken", text, "not a token this endpoint gave")
        return int(text)


def _identity(item: Any) -> dict[str, Any]:
    return dict(item)


@dataclass(frozen=True, slots=True)
class Listing(Generic[T]):
    """What a list answer is made of: the items (cheap views, in the service's order),
    `render` (one item's JSON: the expensive part), and optionally `index` (a cheap document
    holding the properties named in `indexed`, as ``a/b`` paths, with the values `render`
    gives them) and `names` (the listed type's top-level properties, for ``$select``)."""

    items: Sequence[T]
    render: Callable[[T], dict[str, Any]] = _identity
    index: Callable[[T], Item] | None = None
    indexed: frozenset[str] = field(default_factory=frozenset)
    names: Sequence[str] | None = None
    index_at: Callable[[int], Item] | None = None
    """The index of the item at a position, in place of `index`, for items costly to make
    (a large job's task views): a filter then reads only the index, never the item."""
    render_at: Callable[[int], dict[str, Any]] | None = None
    """The rendering of the item at a position, in place of `render` (a large job's tasks
    rendered from a snapshot of their records, whatever happens between two slices)."""


Window = tuple[list[dict[str, Any]], int | None]
"""The rendered items of a page, and the next page's skip (None: the last page)."""


def _window_steps(query: Query, listing: Listing[T]) -> Generator[None, None, Window]:
    """`Window` of the page asked for, pausing (a bare ``yield``) after each item it reads, so
    a caller may hand the event loop back between items (`page_sliced`)."""
    the_filter = parse_filter(query.filter)
    start, size = query.skip(), query.max_results()
    items = listing.items
    render = _render_at(listing)
    if the_filter.predicate is None:
        shown = []
        for position in range(start, min(start + size, len(items))):
            shown.append(render(position))
            yield
        return shown, start + size if start + size < len(items) else None
    predicate = the_filter.predicate
    index = _index_at(listing) if the_filter.paths <= listing.indexed else None
    shown, matched = [], 0
    for position in range(len(items)):
        document = index(position) if index is not None else render(position)
        yield
        if not predicate(document):
            continue
        if matched == start + size:
            return shown, matched
        if matched >= start:
            shown.append(render(position) if index is not None else dict(document))
        matched += 1
    return shown, None


def _advance(steps: Generator[None, None, Window]) -> Window | None:
    """One step of `_window_steps`: the window once it is done, else None."""
    try:
        next(steps)
    except StopIteration as done:
        window: Window = done.value
        return window
    return None


def _window(query: Query, listing: Listing[T]) -> Window:
    steps = _window_steps(query, listing)
    while (window := _advance(steps)) is None:
        pass
    return window


async def _window_sliced(query: Query, listing: Listing[T]) -> Window:
    steps = _window_steps(query, listing)
    pace = Pace(SLICE)
    while (window := _advance(steps)) is None:
        await pace.step()
    return window


def _render_at(listing: Listing[T]) -> Callable[[int], dict[str, Any]]:
    """How to render the item at a position."""
    if listing.render_at is not None:
        return listing.render_at
    render, items = listing.render, listing.items
    return lambda position: render(items[position])


def _index_at(listing: Listing[T]) -> Callable[[int], Item] | None:
    """How to read the index of the item at a position (None: the listing has no index)."""
    if listing.index_at is not None:
        return listing.index_at
    index, items = listing.index, listing.items
    if index is None:
        return None
    return lambda position: index(items[position])


def page(query: Query, items: Sequence[Item] | Listing[Any], base_url: str) -> dict[str, Any]:
    """One page of a list answer: filter, cut at the skip token, render, select.

    `items` is a `Listing`, or the rendered items themselves (each kept as it is)."""
    listing = items if isinstance(items, Listing) else Listing(items)
    keep = selected(query.select, listing.names)  # a bad $select is refused before any work
    return _document(query, base_url, keep, _window(query, listing))


async def page_sliced(query: Query, listing: Listing[Any], base_url: str) -> dict[str, Any]:
    """`page`, handing the event loop back every `SLICE` seconds of work: a page of a large
    list (a job of 10,000 tasks) never holds the loop long. `listing` must stay readable
    across those pauses (a `render_at` and an `index_at` over a snapshot of the items)."""
    keep = selected(query.select, listing.names)
    return _document(query, base_url, keep, await _window_sliced(query, listing))


def _document(
    query: Query, base_url: str, keep: list[str] | None, window: Window
) -> dict[str, Any]:
    shown, next_skip = window
    if keep is not None:
        wanted = set(keep)
        shown = [{key: value for key, value in item.items() if key in wanted} for item in shown]
    document: dict[str, Any] = {"value": shown}
    if next_skip is not None:
        params = {
            key: value
            for key, value in query.params.items()
            if key.lower() not in ("$skiptoken", "api-version")
        }
        params["$skiptoken"] = str(next_skip)
        params["api-version"] = query.get("api-version") or ""
        document["odata.nextLink"] = (
            f"{base_url}{query.path}?{urlencode(params, quote_via=quote, safe='$,')}"
        )
    return document

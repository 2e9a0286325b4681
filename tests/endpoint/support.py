"""Helpers of the endpoint's tests: signed raw requests, the official examples, shape checks."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from azure.batch import models
from azure.batch.aio import BatchClient
from azure.core.exceptions import HttpResponseError, ResponseNotReadError
from azure.core.rest import HttpRequest
from multidict import CIMultiDict

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "batch-rest-examples"
"""The official REST examples, beside the repository in the project's own workspace only (a
clone elsewhere has none): tests that compare with them are marked `needs_examples`."""
API_VERSION = "2025-06-01"

needs_examples = pytest.mark.skipif(
    not EXAMPLES.is_dir(),
    reason=f"compares with the official REST examples, which are not here ({EXAMPLES}); "
    "tests/endpoint/test_shapes.py checks every answer against azure-batch's models without them",
)


def example(name: str) -> dict[str, Any]:
    """One official example (request parameters and responses by status)."""
    document: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return document


def example_status(name: str) -> int:
    return int(next(iter(example(name)["responses"])))


def example_response(name: str) -> dict[str, Any]:
    """The example's success response: headers by name, and ``body`` when it has one."""
    response: dict[str, Any] = next(iter(example(name)["responses"].values()))
    return response


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any
    """Parsed JSON when the answer is JSON, else the bytes."""

    def json(self) -> dict[str, Any]:
        assert isinstance(self.body, dict), self.body
        return self.body


async def call(
    client: BatchClient,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """One request through the SDK's pipeline (so signed as the SDK signs), any answer."""
    request = HttpRequest(
        method,
        path,
        params={"api-version": API_VERSION, **(params or {})},
        json=body,
        headers=dict(headers or {}),
    )
    response: Any
    try:
        response = await client.send_request(request, stream=True)
    except HttpResponseError as exc:
        assert exc.response is not None
        response = exc.response
    try:
        raw = response.content  # read already when the pipeline read an error's body
    except ResponseNotReadError:
        raw = await response.read()
    content_type = response.headers.get("Content-Type", "")
    parsed: Any = json.loads(raw) if raw and content_type.startswith("application/json") else raw
    return Answer(response.status_code, CIMultiDict(response.headers), parsed)


def assert_like(
    actual: Any, expected: Any, where: str = "", not_applicable: frozenset[str] = frozenset()
) -> None:
    """`actual` has every property of the example `expected` (unless named not applicable,
    ``value[].startTask``), each of the same JSON type, recursively."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where or 'the body'} should be an object: {actual!r}"
        for key, value in expected.items():
            path = f"{where}.{key}" if where else key
            if path in not_applicable:
                continue
            assert key in actual, f"{path} is missing from {sorted(actual)}"
            assert_like(actual[key], value, path, not_applicable)
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where} should be an array: {actual!r}"
        if expected:
            assert actual, f"{where} should not be empty"
            for item in actual:
                assert_like(item, expected[0], f"{where}[]", not_applicable)
    else:
        assert _json_type(actual) == _json_type(expected), (
            f"{where}: {actual!r} is a {_json_type(actual)}, the example has a "
            f"{_json_type(expected)} ({expected!r})"
        )


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def assert_headers_like(answer: Answer, example_name: str, not_applicable: set[str]) -> None:
    """Every header of the example's response (but ``body``) is in the answer."""
    for name in example_response(example_name):
        if name in ("body", "request-id") or name in not_applicable:
            continue
        assert name.lower() in {key.lower() for key in answer.headers}, (
            f"{name} missing from {sorted(answer.headers)}"
        )


def walk_model(model: Any, where: str = "") -> None:
    """Read every property of an SDK model, recursively: each must have its declared type
    (times as aware datetimes, durations as timedeltas, numbers as ints), not a raw string."""
    fields = getattr(type(model), "_attr_to_rest_field", None)
    if fields is None:
        return
    hints = typing.get_type_hints(type(model), localns={"_models": models})
    for name in fields:
        value = getattr(model, name)
        if value is None:
            continue
        path = f"{where}.{name}"
        expected = _plain(hints[name])
        if expected is datetime:
            assert is_time(value), f"{path}: {value!r} is not a time"
        elif expected in (timedelta, bool, int):
            assert isinstance(value, expected), f"{path}: {value!r} is not a {expected}"
        if isinstance(value, list):
            for item in value:
                walk_model(item, f"{path}[]")
        else:
            walk_model(value, path)


def _plain(annotation: Any) -> Any:
    """`X` of ``Optional[X]``; None for unions of several types (str enums)."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return _plain(args[0]) if len(args) == 1 else None
    return annotation


def is_time(value: Any) -> bool:
    return isinstance(value, datetime) and value.tzinfo is not None


async def wait_until(
    check: Callable[[], Awaitable[bool]], limit: float = 60.0, every: float = 0.1
) -> None:
    with anyio.fail_after(limit):
        while not await check():
            await anyio.sleep(every)


def linux_pool(pool_id: str, nodes: int = 1) -> models.BatchPoolCreateOptions:
    """Add Pool options for a Linux pool of `nodes` dedicated nodes, as the README's example."""
    return models.BatchPoolCreateOptions(
        id=pool_id,
        vm_size="standard_d1_v2",
        target_dedicated_nodes=nodes,
        virtual_machine_configuration=models.VirtualMachineConfiguration(
            image_reference=models.BatchVmImageReference(
                publisher="canonical", offer="ubuntu-24_04-lts", sku="server"
            ),
            node_agent_sku_id="batch.node.ubuntu 24.04",
        ),
    )

"""The endpoint's JSON encoding of its answers (`rest.app.encoded`): the text ``json.dumps``
writes, a long list's items encoded in slices with the event loop handed back between."""

from __future__ import annotations

import json
from typing import Any

import anyio
import anyio.lowlevel

from jobprep_release.backends.docker.rest.app import SLICED_FROM, encoded


def _task(number: int) -> dict[str, Any]:
    return {
        "id": f"task{number:05d}",
        "url": f"https://account.region.batch.azure.com/jobs/job/tasks/task{number:05d}",
        "state": "completed",
        "displayName": 't\u00e2che \u2013 "quoted" \\ back',
        "executionInfo": {"exitCode": number % 3, "retryCount": 0, "failureInfo": None},
        "environmentSettings": [{"name": "A", "value": "1"}],
        "constraints": {"maxTaskRetryCount": 0, "maxWallClockTime": "P10675199DT2H48M5.4775807S"},
        "score": number / 7,
    }


def _page(count: int) -> dict[str, Any]:
    return {
        "odata.metadata": "https://account.region.batch.azure.com/$metadata#tasks",
        "value": [_task(n) for n in range(count)],
        "odata.nextLink": "https://account.region.batch.azure.com/jobs/job/tasks?$skiptoken=1000",
    }


async def test_a_page_is_the_text_json_dumps_writes() -> None:
    for document in (
        _page(1000),
        _page(SLICED_FROM),
        _page(SLICED_FROM - 1),
        _page(0),
        {"value": [_task(1)] * SLICED_FROM},  # "value" alone
        {"odata.metadata": "m", "value": 3},  # not a list
        [_task(1)],
        {"running": 1, "value": []},
    ):
        assert await encoded(document) == json.dumps(document)


async def test_a_long_page_hands_the_loop_back_while_it_is_encoded() -> None:
    document = _page(20_000)  # ~150 ms of json.dumps here: many 5 ms slices
    turns = 0
    done = False

    async def other_task() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as group:
        group.start_soon(other_task)
        await anyio.lowlevel.checkpoint()
        before = turns
        text = await encoded(document)
        done = True
    assert text == json.dumps(document)
    assert turns - before >= 5, f"the loop ran other tasks {turns - before} times meanwhile"

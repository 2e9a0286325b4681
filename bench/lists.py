"""List Tasks on the endpoint over the fake executor: event-loop time of one page.

``python -m bench.lists [--tasks 10000] [--rounds 5]``: the endpoint (the real aiohttp app over
the Batch core and the `FakeExecutor`, no engine) holds one job of `--tasks` tasks, every one
completed on one of two nodes; then List Tasks is asked for a 1,000-item page (``maxresults``)
without ``$filter``, with a ``$filter`` every task passes (``state eq 'completed'``), a
selective one (``startswith(id, 'task09')``), one that names a property the per-item index
does not hold (``nodeInfo/poolId``), and the last page through ``$skiptoken``. Each figure is
the median, over rounds, of the CPU time the event loop's thread spent in the handler
(``time.thread_time``), measured by a middleware around it; nothing else runs meanwhile.
"""

from __future__ import annotations

import argparse
import base64
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import structlog
from aiohttp import web
from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.rest import HttpRequest

from jobprep_release.backends.base import JobSpec, PoolSpec, TaskSpec
from jobprep_release.backends.docker.core import FakeExecutor
from jobprep_release.backends.docker.rest import EndpointSettings, running_endpoint

KEY = base64.b64encode(b"bench-lists-key-0123456789abcdef").decode()
QUERIES = {
    "no $filter": {},
    "$filter state eq 'completed' (all pass)": {"$filter": "state eq 'completed'"},
    "$filter startswith(id, 'task09') (1,000 pass)": {"$filter": "startswith(id, 'task09')"},
    "$filter nodeInfo/poolId (not indexed; all pass)": {"$filter": "nodeInfo/poolId eq 'pool'"},
    "last page ($skiptoken)": {"$skiptoken": "LAST"},
}


def _timing() -> tuple[list[float], Callable[..., Awaitable[web.StreamResponse]]]:
    spent: list[float] = []

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.thread_time()
        try:
            return await handler(request)
        finally:
            spent.append(time.thread_time() - started)

    return spent, middleware


async def _get(client: BatchClient, url: str, params: dict[str, str]) -> tuple[int, Any]:
    response = await client.send_request(HttpRequest("GET", url, params=params))
    return response.status_code, response.json()


async def run(count: int, rounds: int) -> dict[str, float]:
    spent, middleware = _timing()
    fake = FakeExecutor()
    settings = EndpointSettings(
        account="bench", key=KEY, port=0, executor=fake, middlewares=[middleware]
    )
    async with running_endpoint(settings) as running:
        service = running.service
        assert service is not None
        pool = PoolSpec(id="pool", vm_size="standard_d1_v2", target_dedicated_nodes=2)
        await service.create_pool(pool)
        await service.create_job(JobSpec(id="job", pool_id="pool"))
        specs = [TaskSpec(id=f"task{i:05d}", command_line="/bin/true") for i in range(count)]
        for start in range(0, count, 1000):
            await service.add_tasks("job", specs[start : start + 1000])
        with anyio.fail_after(600):
            while (await service.get_task_counts("job")).completed < count:
                await anyio.sleep(0.2)
        results: dict[str, float] = {}
        credential = AzureNamedKeyCredential(running.account, running.key)
        async with BatchClient(running.url, credential) as client:
            for name, params in QUERIES.items():
                samples = []
                for _ in range(rounds):
                    query = {"api-version": "2025-06-01", "maxresults": "1000", **params}
                    if query.get("$skiptoken") == "LAST":
                        query["$skiptoken"] = str(count - 1000)
                    spent.clear()
                    url = f"{running.url}/jobs/job/tasks"
                    status, body = await _get(client, url, query)
                    assert status == 200, body
                    assert len(body["value"]) == 1000, (name, len(body["value"]))
                    samples.append(spent[-1])
                results[name] = statistics.median(samples)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lists", description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    results = anyio.run(run, args.tasks, args.rounds)
    print(f"List Tasks, one 1,000-item page of {args.tasks:,} tasks (event-loop CPU, median):")
    for name, seconds in results.items():
        print(f"  {name:50} {seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    main()

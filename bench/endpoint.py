"""Benchmark 6: the local endpoint at 10,000 tasks: event-loop time of its requests, and stalls.

The endpoint is the real aiohttp app over the Batch core and the `FakeExecutor` (no engine:
every process ends at once, so only the endpoint's and the core's own work is measured), and
every request comes from azure-batch's client over HTTP. One job on a pool of two nodes is
given `tasks` tasks through Add Task Collection, 100 a request (the service's limit), and they
run to completion. Measured, as the CPU time the event loop's thread spent in each handler's
own steps (``time.thread_time`` around each step of the request's task, `_TimedTask`, read by a
middleware; neither the machine's load nor other tasks running while a handler waits or hands
the loop back between slices inflate it):

- Add Task Collection of 100 tasks, each request (the last 10 are at about `tasks` tasks);
- List Tasks, one 1,000-item page (``maxresults``) without ``$filter``, with a ``$filter`` every
  task passes (``state eq 'completed'``), a selective one (``startswith(id, 'task09')``), one
  naming a property the per-item index does not hold (``nodeInfo/poolId``), and the last page
  through ``$skiptoken``;
- List Nodes before any task and at `tasks` tasks (it must not grow with them).

Then the same scenario runs again with asyncio's debug mode and ``slow_callback_duration`` of
20 ms, which reports every callback that took longer by the wall clock; as in the CLI's loop check
(`bench.loopcheck.StepClock`), each is judged on the time the process held the loop, the
wall-clock time less the loop thread's wait for a core, and a stall is one held over 20 ms.

``python -m bench.endpoint [--tasks 10000] [--rounds 5]`` prints the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import structlog
from aiohttp import web
from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.rest import HttpRequest

from bench.common import Result, verdict
from bench.loopcheck import SlowCallbacks, Stall, StepClock, stall_table
from jobprep_release.backends.base import JobSpec, PoolSpec
from jobprep_release.backends.docker.core import FakeExecutor
from jobprep_release.backends.docker.rest import EndpointSettings, running_endpoint

KEY = base64.b64encode(b"bench-lists-key-0123456789abcdef").decode()
API = "2025-06-01"
TARGET_MS = 50.0
STALL = 0.020
"""Seconds: a callback holding the loop longer than this is a stall."""
QUERIES = {
    "no `$filter`": {},
    "`$filter` state eq 'completed' (all pass)": {"$filter": "state eq 'completed'"},
    "`$filter` startswith(id, 'task09') (1,000 pass)": {"$filter": "startswith(id, 'task09')"},
    "`$filter` nodeInfo/poolId (not indexed; all pass)": {"$filter": "nodeInfo/poolId eq 'pool'"},
    "last page (`$skiptoken`)": {"$skiptoken": "LAST"},
}


@dataclass(slots=True)
class Figures:
    add_collection: list[float] = field(default_factory=list)
    """Seconds of loop time of each Add Task Collection request, in order."""
    pages: dict[str, float] = field(default_factory=dict)
    """Median seconds of loop time of each List Tasks page kind."""
    nodes_before: float = 0.0
    nodes_after: float = 0.0


class _TimedTask(asyncio.tasks._PyTask):  # type: ignore[name-defined,misc]
    """asyncio's Task (its Python implementation), counting the CPU time of its own steps:
    a handler that hands the loop back between slices of its work is charged for its slices,
    not for what other tasks did meanwhile."""

    cpu_done = 0.0
    """CPU seconds of the steps ended so far."""
    step_began: float | None = None

    def _Task__step(self, exc: BaseException | None = None) -> None:
        self.step_began = time.thread_time()
        try:
            super()._Task__step(exc)
        finally:
            self.cpu_done += time.thread_time() - self.step_began
            self.step_began = None

    def cpu(self) -> float:
        """CPU seconds of its steps, the one running now included."""
        running = 0.0 if self.step_began is None else time.thread_time() - self.step_began
        return self.cpu_done + running


def _timed_task(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
    return _TimedTask(coro, loop=loop, **kwargs)  # type: ignore[no-any-return]


def _own_cpu() -> float:
    task = asyncio.current_task()
    return task.cpu() if isinstance(task, _TimedTask) else time.thread_time()


def _timing() -> tuple[list[float], Callable[..., Awaitable[web.StreamResponse]]]:
    spent: list[float] = []

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = _own_cpu()
        try:
            return await handler(request)
        finally:
            spent.append(_own_cpu() - started)

    return spent, middleware


async def _send(
    client: BatchClient, method: str, url: str, params: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json; odata=minimalmetadata"} if body else None
    request = HttpRequest(method, url, params=params, json=body, headers=headers)
    response = await client.send_request(request)
    return response.status_code, response.json() if response.content else None


async def scenario(count: int, rounds: int, *, slow: float = 0.0) -> Figures:
    """The scenario; with `slow`, the loop reports callbacks over `slow` seconds."""
    if slow:
        asyncio.get_running_loop().slow_callback_duration = slow
    else:  # asyncio's own tasks in the stall check: its report names them
        asyncio.get_running_loop().set_task_factory(_timed_task)
    spent, middleware = _timing()
    figures = Figures()
    settings = EndpointSettings(
        account="bench", key=KEY, port=0, executor=FakeExecutor(), middlewares=[middleware]
    )
    async with running_endpoint(settings) as running:
        service = running.service
        assert service is not None
        await service.create_pool(PoolSpec(id="pool", target_dedicated_nodes=2))
        await service.create_job(JobSpec(id="job", pool_id="pool"))
        credential = AzureNamedKeyCredential(running.account, running.key)
        version = {"api-version": API}
        async with BatchClient(running.url, credential) as client:

            async def timed(
                method: str, path: str, params: dict[str, str], body: Any = None
            ) -> Any:
                spent.clear()
                status, answer = await _send(client, method, running.url + path, params, body)
                assert status < 300, (path, status, answer)
                return spent[-1], answer

            async def list_nodes() -> float:
                samples = []
                for _ in range(rounds):
                    seconds, _ = await timed("GET", "/pools/pool/nodes", version)
                    samples.append(seconds)
                return statistics.median(samples)

            figures.nodes_before = await list_nodes()
            for start in range(0, count, 100):
                body = {
                    "value": [
                        {"id": f"task{n:05d}", "commandLine": "/bin/true"}
                        for n in range(start, min(start + 100, count))
                    ]
                }
                seconds, _ = await timed("POST", "/jobs/job/addtaskcollection", version, body)
                figures.add_collection.append(seconds)
            with anyio.fail_after(600):
                while (await service.get_task_counts("job")).completed < count:
                    await anyio.sleep(0.1)
            figures.nodes_after = await list_nodes()
            for name, params in QUERIES.items():
                samples = []
                for _ in range(rounds):
                    query = {**version, "maxresults": "1000", **params}
                    if query.get("$skiptoken") == "LAST":
                        query["$skiptoken"] = str(count - 1000)
                    seconds, answer = await timed("GET", "/jobs/job/tasks", query)
                    assert len(answer["value"]) == 1000, (name, len(answer["value"]))
                    samples.append(seconds)
                figures.pages[name] = statistics.median(samples)
    return figures


CLIENT = "task bench.endpoint"
"""How the stall check names the bench's own client code (the scenario's task)."""


def stalls(count: int) -> list[Stall]:
    """The scenario in asyncio debug mode: every callback over `STALL` seconds of wall-clock
    time, with the loop thread's CPU time and wait for a core during it."""
    logger = logging.getLogger("asyncio")
    handler = SlowCallbacks()
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with StepClock() as clock:
            handler.clock = clock
            anyio.run(
                lambda: scenario(count, 1, slow=STALL),
                backend_options={"debug": True},
            )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    return handler.stalls


def bench(count: int = 10_000, rounds: int = 5) -> Result:
    figures = anyio.run(scenario, count, rounds)
    every = stalls(count)
    # The bench's client (azure-batch, reading 1,000-task pages) shares the endpoint's loop
    # here; a real client is another process: its callbacks are shown, not counted.
    client = [stall for stall in every if stall.where.startswith(CLIENT)]
    found = [stall for stall in every if not stall.where.startswith(CLIENT)]
    held = [stall for stall in found if stall.held > STALL]
    ms = 1000
    adds = figures.add_collection
    last_adds = statistics.median(adds[-10:])
    page_worst = max(figures.pages.values())
    nodes_flat = figures.nodes_after <= figures.nodes_before * 1.5 + 0.001
    targets = {
        f"endpoint: one 1,000-item List Tasks page at {count:,} tasks under 50 ms "
        "(every `$filter` kind)": page_worst * ms < TARGET_MS,
        f"endpoint: Add Task Collection of 100 at {count:,} tasks under 50 ms": last_adds * ms
        < TARGET_MS,
        "endpoint: List Nodes does not grow with the tasks": nodes_flat,
        f"endpoint: no loop stall over 20 ms at {count:,} tasks": not held,
    }
    print(
        f"  endpoint: page worst {page_worst * ms:.1f} ms, add 100 {last_adds * ms:.1f} ms, "
        f"list nodes {figures.nodes_before * ms:.1f} -> {figures.nodes_after * ms:.1f} ms, "
        f"{len(found)} slow callbacks by the wall clock, {len(held)} held over "
        f"{STALL * ms:g} ms",
        flush=True,
    )
    rows = [
        "| request | event-loop CPU time, median |",
        "| --- | --- |",
        *(
            f"| List Tasks, one 1,000-item page, {name} | {seconds * ms:.1f} ms |"
            for name, seconds in figures.pages.items()
        ),
        f"| Add Task Collection of 100, the last 10 (at about {count:,} tasks) | "
        f"{last_adds * ms:.1f} ms (max {max(adds[-10:]) * ms:.1f}) |",
        f"| Add Task Collection of 100, all {len(adds)} requests | "
        f"{statistics.median(adds) * ms:.1f} ms (max {max(adds) * ms:.1f}) |",
        f"| List Nodes (2 nodes), no tasks | {figures.nodes_before * ms:.1f} ms |",
        f"| List Nodes (2 nodes), {count:,} tasks | {figures.nodes_after * ms:.1f} ms |",
    ]
    body = "\n".join(
        [
            f"The endpoint over the fake executor (no engine), one job of {count:,} tasks on 2 "
            "nodes, every request from azure-batch's client; CPU time of the event loop's "
            "thread in each handler (median of the rounds).",
            "",
            *rows,
            "",
            f"Stalls: the same scenario in asyncio debug mode, `slow_callback_duration` "
            f"{STALL * ms:g} ms: {len(found)} callback(s) of the endpoint over it by the wall "
            f"clock, {len(held)} of them held by the process over {STALL * ms:g} ms (judged "
            "on the time held: the wall-clock time less the loop thread's wait for a core, "
            "as in section 7).",
            "",
            *stall_table(found),
            "",
            f"The bench's own client in the same loop (not counted): {len(client)} callback(s) "
            "over it"
            + (f", the longest {max(s.wall for s in client) * ms:.0f} ms." if client else "."),
            "",
            *(f"- {name}: {verdict(met)}" for name, met in targets.items()),
        ]
    )
    names = list(targets)
    figures = {
        names[0]: ", ".join(f"{s * ms:.0f} ms" for s in figures.pages.values())
        + " (no `$filter`, then each `$filter` kind, then the last page)",
        names[1]: f"{last_adds * ms:.1f} ms",
        names[2]: f"{figures.nodes_before * ms:.1f} ms with no tasks, "
        f"{figures.nodes_after * ms:.1f} ms at {count:,}",
        names[3]: f"{len(held)} stall(s)"
        + (f", the longest held {max(s.held for s in held) * ms:.0f} ms" if held else "")
        + f" ({len(found)} over {STALL * ms:g} ms by the wall clock)",
    }
    return Result(f"6. The local endpoint at {count:,} tasks", body, targets, figures)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.endpoint", description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(bench(args.tasks, args.rounds).body)


if __name__ == "__main__":
    main()

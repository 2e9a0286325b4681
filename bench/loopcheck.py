"""Is anything blocking the event loop? asyncio's debug mode over runs of the docker backend.

The loop runs with ``debug=True`` (what ``PYTHONASYNCIODEBUG=1`` sets) and a
``slow_callback_duration`` of 20 ms; asyncio then logs every callback or task step that held
the loop longer (a stall), and this module collects those records. Two runs of the CLI's flow
(`run_sample` with ``--yes``, in process, on the real engine): the default sample (2 nodes, 8
tasks) and 10,000 tasks on 4 nodes x 4 slots, where per-step costs that grow with the task
count show. (The endpoint's stalls are measured by `bench.endpoint`.)
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from bench.common import Result, scratch, unique_id, verdict
from jobprep_release.backends.docker import DockerBackend, DockerSettings
from jobprep_release.console import Console
from jobprep_release.flow import run_sample
from jobprep_release.options import Answer, SampleOptions

SLOW = 0.020
"""Seconds: a callback holding the loop longer than this is reported."""


@dataclass(slots=True)
class SlowCallbacks(logging.Handler):
    found: list[tuple[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self)

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Executing %s took %.3f seconds" and isinstance(record.args, tuple):
            handle, seconds = record.args
            if isinstance(seconds, float):
                self.found.append((_where(str(handle)), seconds))

    def __hash__(self) -> int:
        return id(self)


def _where(handle: str) -> str:
    """The task (anyio names tasks after their function) or callback a handle ran."""
    if task := re.search(r"name='([^']+)'", handle):
        return f"task {task[1]}"
    if callback := re.search(r"<Handle ([\w.<>]+)", handle):
        return f"callback {callback[1]}"
    return handle[:120]


async def _sample(pool_id: str, job_id: str, state: Path, tasks: int) -> None:
    asyncio.get_running_loop().slow_callback_duration = SLOW
    async with DockerBackend(DockerSettings(state_dir=state)) as backend:
        options = SampleOptions(pool_id=pool_id, job_id=job_id)
        if tasks:
            options = SampleOptions(
                pool_id=pool_id,
                job_id=job_id,
                node_count=4,
                task_count=tasks,
                task_slots_per_node=4,
            )
        await run_sample(backend, Console(Answer.YES, out=io.StringIO()), options)


def summary(found: list[tuple[str, float]]) -> list[str]:
    grouped: dict[str, list[float]] = defaultdict(list)
    for where, seconds in found:
        grouped[where].append(seconds)
    rows = ["| callback | count | longest | total |", "| --- | --- | --- | --- |"]
    for where, times in sorted(grouped.items(), key=lambda item: -sum(item[1])):
        rows.append(
            f"| `{where}` | {len(times)} | {max(times) * 1000:.0f} ms | "
            f"{sum(times) * 1000:.0f} ms |"
        )
    return rows if found else ["(none)"]


def bench(tasks: int) -> Result:
    logger = logging.getLogger("asyncio")
    handler = SlowCallbacks()
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.WARNING)
    sections: list[str] = []
    clean: dict[str, bool] = {}
    stalls: dict[str, tuple[int, float]] = {}
    try:
        for label, count in (
            ("default sample (2 nodes, 8 tasks)", 0),
            (f"{tasks:,} tasks on 4 nodes x 4 slots", tasks),
        ):
            handler.found.clear()
            pool_id, job_id = unique_id("dbg"), unique_id("dbgjob")
            # Set-up and clean-up (blocking docker-py calls of the bench) stay off the loop.
            with scratch(pool_id) as state:
                anyio.run(_sample, pool_id, job_id, state, count, backend_options={"debug": True})
            clean[label] = not handler.found
            stalls[label] = (len(handler.found), max((s for _, s in handler.found), default=0.0))
            sections += [
                f"{label}: {len(handler.found)} slow callback(s) over {SLOW * 1000:g} ms",
                "",
                *summary(handler.found),
                "",
            ]
            print(f"  loop check, {label}: {len(handler.found)} slow callbacks", flush=True)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    targets = {f"CLI flow: no loop stall over 20 ms, {label}": ok for label, ok in clean.items()}
    body = "\n".join(
        [
            f"The CLI's flow in process on the real engine, asyncio debug mode, "
            f"`slow_callback_duration` = {SLOW * 1000:g} ms.",
            "",
            *sections,
            *(f"- {name}: {verdict(met)}" for name, met in targets.items()),
        ]
    )
    return Result(
        "7. Stalls of the event loop in the CLI's flow (asyncio debug mode)",
        body,
        targets,
        {
            f"CLI flow: no loop stall over 20 ms, {label}": f"{count} stall(s)"
            + (f", the longest {longest * 1000:.0f} ms" if count else "")
            for label, (count, longest) in stalls.items()
        },
    )

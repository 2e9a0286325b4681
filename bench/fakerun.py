"""The app's sample flow over the Batch core on the fake executor: no engine, any task count.

``python -m bench.fakerun TASKS [--nodes 4] [--slots 4] [--debug-loop MS]`` runs `run_sample`
(the CLI's flow, ``--yes``) against a `DockerBackend` whose core drives a `FakeExecutor` (every
process ends at once) and keeps its state in a real `StateStore` in a temporary directory, so
state writes, the journal, the scheduler and every read the flow makes are the product's; only
the containers are not there. The fake keeps no per-process records for tests
(``FakeExecutor(records=False)``): the service and the Docker executor keep none either. It
prints one JSON line: the loop's slow callbacks (with ``--debug-loop``) and the wall time. The
caller reads the peak RSS from the child's rusage.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import tempfile
import time
from pathlib import Path

import anyio
import structlog

from jobprep_release.backends.docker import DockerBackend, DockerSettings
from jobprep_release.backends.docker.core import CoreSettings, FakeExecutor
from jobprep_release.backends.docker.core.service import BatchService
from jobprep_release.backends.docker.core.store import StateStore
from jobprep_release.console import Console
from jobprep_release.flow import run_sample
from jobprep_release.options import Answer, SampleOptions


class FakeNodesBackend(DockerBackend):
    """`DockerBackend` with the fake executor under its core and no engine."""

    async def __aenter__(self) -> FakeNodesBackend:
        directory = self.settings.state_dir
        assert directory is not None
        self._store = StateStore(directory, "bench-fake-engine")
        await self._store.acquire()
        self._service = BatchService(FakeExecutor(records=False), self._store, CoreSettings())
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        await self._group.start(self._service.run)
        return self


class _Slow(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Executing %s took %.3f seconds" and isinstance(record.args, tuple):
            self.found.append(float(record.args[1]))


async def _main(tasks: int, nodes: int, slots: int, slow_ms: float) -> dict[str, object]:
    if slow_ms:
        asyncio.get_running_loop().slow_callback_duration = slow_ms / 1000
    with tempfile.TemporaryDirectory(prefix="jobprep-bench-fake-") as directory:
        options = SampleOptions(
            pool_id="fakepool",
            job_id="fakejob",
            node_count=nodes,
            task_count=tasks,
            task_slots_per_node=slots,
        )
        started = time.perf_counter()
        async with FakeNodesBackend(DockerSettings(state_dir=Path(directory))) as backend:
            outcome = await run_sample(backend, Console(Answer.YES, out=io.StringIO()), options)
        wall = time.perf_counter() - started
    return {"succeeded": outcome.succeeded, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fakerun", description=__doc__)
    parser.add_argument("tasks", type=int)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--debug-loop", type=float, default=0.0, metavar="MS")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    slow = _Slow()
    if args.debug_loop:
        logging.getLogger("asyncio").addHandler(slow)
        logging.getLogger("asyncio").setLevel(logging.WARNING)
    result = anyio.run(
        _main,
        args.tasks,
        args.nodes,
        args.slots,
        args.debug_loop,
        backend_options={"debug": bool(args.debug_loop)},
    )
    result["slow_callbacks_ms"] = [round(s * 1000, 1) for s in slow.found]
    print(json.dumps(result))


if __name__ == "__main__":
    main()

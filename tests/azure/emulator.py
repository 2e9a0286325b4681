"""The Batch service the azure backend's tests talk to: the project's own endpoint (the real REST
app over the Batch core) on the fake executor and a fake clock, behind a fault injector.

No Docker engine: nodes are `FakeExecutor` nodes, and a process does what `SampleScript` says
of its command line. The sample's three command lines (``echo "..." > file``, ``echo "..." >>
file``, ``rm file``, each in ``/bin/bash -c '...'`` with ``$AZ_BATCH_*`` variables) act on the
fake node's files; any other command line exits 0 and does nothing. A process takes
`SampleScript.seconds` of the fake clock (0 by default: it ends as soon as it starts); time moves
only when a test says so (`Emulator.advance`), or by `seconds_per_read` before each read
request (a GET).

    async with running_emulator() as batch:
        async with make_backend(batch.url) as backend: ...
        batch.inject("GET", "/pools/p1", 429, headers={"Retry-After": "1"})
        batch.calls("POST", "/pools")          # what the client sent
        batch.fake.starts                       # what ran, where, in order
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
from aiohttp import web
from aiohttp.typedefs import Handler

from jobprep_release.backends.docker.core import FakeClock, FakeExecutor, FakeOutcome, FakeStart
from jobprep_release.backends.docker.core.executor import NodeSetup
from jobprep_release.backends.docker.core.service import BatchService
from jobprep_release.backends.docker.rest import EndpointSettings, running_endpoint
from jobprep_release.backends.docker.rest.faults import FaultInjector, Recorded
from tests.azure.support import ACCOUNT, KEY

_VARIABLE = re.compile(r"\$\{?(AZ_BATCH_\w+?)\}?(?=\W|$)")
_ECHO = re.compile(r'echo "(?P<text>[^"]*)" (?P<op>>>?) ?"?(?P<path>[^"\s]+)"?')
_RM = re.compile(r'rm (?P<force>-f )?"?(?P<path>[^"\s]+)"?')


class RecordingExecutor(FakeExecutor):
    """The fake executor, remembering every node it created (`created`, in order), since a
    deleted pool's nodes leave `nodes`."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.created: list[str] = []

    def create_node(self, node: NodeSetup) -> None:
        if node.node_id not in self.nodes:
            self.created.append(node.node_id)
        super().create_node(node)


@dataclass
class SampleScript:
    """What a fake process does: the sample's command lines act on the node's files."""

    fake: FakeExecutor
    seconds: float = 0.0

    def __call__(self, start: FakeStart) -> FakeOutcome:
        argv = start.argv
        if len(argv) != 3 or argv[0] not in ("/bin/bash", "/bin/sh") or argv[1] != "-c":
            return FakeOutcome(duration=self.seconds)
        script = _VARIABLE.sub(lambda m: start.environment.get(m[1], ""), argv[2].strip())
        if echo := _ECHO.fullmatch(script):
            written = {echo["path"]: echo["text"].encode() + b"\n"}
            if echo["op"] == ">>":
                return FakeOutcome(duration=self.seconds, appends=written)
            return FakeOutcome(duration=self.seconds, files=written)
        if rm := _RM.fullmatch(script):
            node = self.fake.nodes[start.node_id]
            if rm["path"] not in node.files:
                return FakeOutcome(exit_code=0 if rm["force"] else 1, duration=self.seconds)
            del node.files[rm["path"]]
            node.modes.pop(rm["path"], None)
            node.times.pop(rm["path"], None)
        return FakeOutcome(duration=self.seconds)


@dataclass
class Emulator:
    """A served endpoint and what is under it."""

    url: str
    service: BatchService
    fake: RecordingExecutor
    clock: FakeClock
    script: SampleScript
    faults: FaultInjector
    seconds_per_read: float = 0.0

    @property
    def requests(self) -> list[Recorded]:
        return self.faults.requests

    def calls(self, method: str, path: str) -> list[Recorded]:
        return self.faults.calls(method, path)

    def inject(self, method: str, path: str, status: int | None = None, **options: object) -> None:
        self.faults.inject(method, path, status, **options)  # type: ignore[arg-type]

    async def settle(self) -> None:
        """Let the service do whatever it can do without time passing."""
        for _ in range(3):
            await anyio.wait_all_tasks_blocked()

    async def advance(self, seconds: float) -> None:
        """Move the fake clock, and let the service catch up."""
        await self.settle()
        self.clock.advance(seconds)
        await self.settle()

    def task_starts(self, job_id: str) -> list[FakeStart]:
        """The job's tasks (not its preparation or release) as they started, in order."""
        special = {"jobpreparation", "jobrelease"}
        return [
            start
            for start in self.fake.starts
            if start.environment.get("AZ_BATCH_JOB_ID") == job_id and start.task_id not in special
        ]

    @web.middleware
    async def _time_per_read(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.seconds_per_read and request.method == "GET":
            # A second at a time: processes that end start the next ones meanwhile, as they
            # would while the clock runs (one jump would end only the processes running now).
            left = self.seconds_per_read
            while left > 0:
                await self.advance(min(left, 1.0))
                left -= 1.0
        return await handler(request)


@asynccontextmanager
async def running_emulator(
    *, seconds: float = 0.0, seconds_per_read: float = 0.0
) -> AsyncIterator[Emulator]:
    """The endpoint over a fresh fake executor and clock, processes taking `seconds`, the
    clock moving `seconds_per_read` before each GET. Enter and leave it in one task."""
    clock = FakeClock()
    fake = RecordingExecutor(clock)
    script = SampleScript(fake, seconds)
    fake.outcome = script
    faults = FaultInjector()
    holder: list[Emulator] = []

    @web.middleware
    async def time_per_read(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await holder[0]._time_per_read(request, handler)

    settings = EndpointSettings(
        account=ACCOUNT,
        key=KEY,
        port=0,
        executor=fake,
        clock=clock,
        middlewares=(faults.middleware, time_per_read),
    )
    async with running_endpoint(settings) as running:
        assert isinstance(running.service, BatchService)
        emulator = Emulator(
            running.url, running.service, fake, clock, script, faults, seconds_per_read
        )
        holder.append(emulator)
        await emulator.settle()
        yield emulator


async def serve_in_own_task(**options: float) -> tuple[Emulator, Callable[[], Awaitable[None]]]:
    """Start `running_emulator(**options)` in a task of its own (so that a fixture, whose set-up
    and tear-down run in different tasks, can hold it); returns it and the function that
    stops it."""
    ready: asyncio.Future[Emulator] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def serve() -> None:
        async with running_emulator(**options) as emulator:
            ready.set_result(emulator)
            await stop.wait()

    task = asyncio.create_task(serve())

    def failed_to_start(done: asyncio.Task[None]) -> None:
        if not ready.done():
            error = None if done.cancelled() else done.exception()
            ready.set_exception(error or RuntimeError("the emulator did not start"))

    task.add_done_callback(failed_to_start)
    emulator = await ready

    async def close() -> None:
        stop.set()
        await task

    return emulator, close

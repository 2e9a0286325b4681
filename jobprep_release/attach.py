"""The docker backend shared between processes: hold the engine's state, or attach to its holder.

`SharedDockerBackend` is what the CLI uses for `--backend docker`. Entering it takes the
engine's state as `DockerBackend` does; when another process holds the state and serves it
(`backends.docker.sharing`: a CLI run, `status` or `serve`), it attaches instead: the run goes
through the holder's Batch REST endpoint with the azure backend's code, at once, rather than
waiting for its turn. So runs started together on one engine run together, on the one
scheduler that drives the engine, as clients of one Batch service do. The app composes the two
backends here; neither imports the other.

An attached run says so in one line on stderr, naming the holder's pid; its transcript is
otherwise the sample's. Its pools get the run's node image (``--image``, else the docker
backend's default) as the endpoint takes a Docker image: `imageReference.virtualMachineImageId`.
Deletions are waited for, as the docker backend does, so that nothing of the run is left when it
ends. If the holder ends while the run uses it (killed, or stopped with Ctrl-C), the run says so
in one line and opens the state again: it now holds it (or attaches to the process that took it
first) and makes the call that failed there, going on where it was (the holder wrote the state
as it stopped, and the exactly-once journal covers a holder that was killed). An error left
over from a vanished holder outside a Batch call ends the run with `HolderVanished`: one line,
exit status 3; running it again carries on where it stopped.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.to_thread

from jobprep_release.backends.base import BatchBackend, ImageReference, PoolSpec
from jobprep_release.backends.docker import DEFAULT_NODE_IMAGE, DockerBackend, DockerSettings
from jobprep_release.backends.docker.backend import StateHeld
from jobprep_release.backends.docker.sharing import POLL, AttachLease, ServiceFile, read_service
from jobprep_release.backends.errors import BackendUnavailable, find_project_error

if TYPE_CHECKING:
    from collections.abc import Callable

ATTACHED_OPTIONS: dict[str, Any] = {"retry_connect": 1, "poll_interval": 0.2}
"""A service on this machine either answers or is gone: a refused connection is not retried
for long. It answers at once: polled every 0.2 s (the docker backend polls its own service
every 0.05 s in process; the azure backend polls a loopback endpoint every 0.5 s)."""


class HolderVanished(BackendUnavailable):
    """The process whose service an attached run used ended while the run used it."""


class SharedDockerBackend:
    """A `BatchBackend`: the docker backend, or the service of the process holding its state."""

    name = "docker"

    def __init__(self, settings: DockerSettings) -> None:
        self.settings = settings
        self.poll_interval = DockerBackend.poll_interval
        """The opened backend's (set once opened)."""
        self._inner: Any = None
        self._holder: DockerBackend | None = None
        self._lease: AttachLease | None = None
        self._held: StateHeld | None = None
        self.attached: ServiceFile | None = None
        """The service this run attached to (None: this run holds the state)."""
        self._tasks: anyio.abc.TaskGroup | None = None
        self._released: anyio.Event | None = None
        self._held_in_task = False

    def __getattr__(self, name: str) -> Any:
        # Every Batch operation goes to whichever backend is open (`_call`).
        if name.startswith("_") or self._inner is None:
            raise AttributeError(name)
        target = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(target):
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._call(name, *args, **kwargs)

        return call

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """`name` of the open backend; when the holder this run is attached to ended under
        it, the state is opened again (`_take_over`) and the call made there."""
        try:
            return await getattr(self._inner, name)(*args, **kwargs)
        except BackendUnavailable:
            held = self._held
            if held is None or not await self._vanished(held):
                raise
        await self._take_over(held)
        return await getattr(self._inner, name)(*args, **kwargs)

    async def _take_over(self, held: StateHeld) -> None:
        """The holder ended while this run used it: drop the link to it and open the state
        again, holding it now (or attached to the process that took it first). A docker
        backend is entered and left in one task, so the state is now held in a task of this
        backend's own group (`_hold`), whatever task made the call."""
        print(
            f"The process serving the docker backend's state (pid {held.service.pid}) ended: "
            "this run goes on without it",
            file=sys.stderr,
            flush=True,
        )
        with anyio.CancelScope(shield=True):
            await self._inner.__aexit__(None, None, None)
        if self._lease is not None:
            self._lease.release()
        self._inner = self._lease = self._held = self.attached = None
        if self._tasks is None or self._released is None:
            raise RuntimeError("SharedDockerBackend is used outside `async with`")
        await self._tasks.start(self._hold, self._released)

    async def _hold(
        self, released: anyio.Event, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        await self._open()
        holder = self._holder if self._inner is self._holder else None
        if holder is not None:
            self._held_in_task = True
        task_status.started()
        if holder is not None:
            try:
                await released.wait()
            finally:
                # Not under a shield of ours: the backend leaves its own task group, which
                # must be the innermost scope then.
                await holder.__aexit__(None, None, None)

    async def __aenter__(self) -> SharedDockerBackend:
        # The group first: a docker backend opened now nests its own group inside it.
        self._released = anyio.Event()
        self._tasks = anyio.create_task_group()
        await self._tasks.__aenter__()
        try:
            await self._open()
        except BaseException:
            self._tasks.cancel_scope.cancel()
            await self._tasks.__aexit__(None, None, None)
            self._tasks = None
            raise
        return self

    async def _open(self) -> None:
        while True:
            docker = DockerBackend(self.settings, attach=True)
            try:
                await docker.__aenter__()
            except StateHeld as held:
                if await self._attach(held):
                    return
                await anyio.sleep(POLL)  # the holder is stopping: try again
                continue
            self._inner = self._holder = docker
            self.poll_interval = docker.poll_interval
            return

    async def _attach(self, held: StateHeld) -> bool:
        from jobprep_release import logs
        from jobprep_release.backends.azure import build_azure_backend

        lease = AttachLease(held.store)
        if not await anyio.to_thread.run_sync(lease.take):
            return False
        if await anyio.to_thread.run_sync(read_service, held.store) != held.service:
            lease.release()
            return False
        service = held.service
        logs.register_secret(service.key)
        azure = build_azure_backend(
            endpoint=service.url,
            account=service.account,
            key=service.key,
            environ={},
            **ATTACHED_OPTIONS,
        )
        try:
            await azure.__aenter__()
        except BaseException:
            lease.release()
            raise
        self._inner, self._lease, self._held, self.attached = azure, lease, held, service
        self.poll_interval = azure.poll_interval
        print(
            f"The docker backend's state is held by pid {service.pid}: this run uses that "
            f"process's Batch service at {service.url}",
            file=sys.stderr,
            flush=True,
        )
        return True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._held_in_task and self._released is not None:
                self._released.set()  # `_hold` leaves the docker backend in its own task
            elif self._inner is not None:
                await self._inner.__aexit__(exc_type, exc, tb)
        finally:
            if self._lease is not None:
                self._lease.release()
            if self._tasks is not None and self._released is not None:
                self._released.set()
                await self._tasks.__aexit__(None, None, None)
                self._tasks = None
        if self._held is not None and exc is not None:
            error = find_project_error(exc)
            if isinstance(error, BackendUnavailable) and await self._vanished(self._held):
                raise HolderVanished(
                    f"the process serving the docker backend's state (pid "
                    f"{self._held.service.pid}), which this run used, ended while the run used it",
                    hint="run again: it carries on where this run stopped",
                ) from exc

    @staticmethod
    async def _vanished(held: StateHeld) -> bool:
        """Whether the holder no longer serves the state (it ended, or is stopping)."""
        return await anyio.to_thread.run_sync(read_service, held.store) != held.service

    async def linger(self, say: Callable[[str], None]) -> None:
        """As the holder: wait until the runs attached to this process's service end."""
        if self._holder is not None:
            await self._holder.linger(say)

    async def withdraw(self) -> None:
        """As the holder: let no other run attach from now on (see `DockerBackend.withdraw`)."""
        if self._holder is not None:
            await self._holder.withdraw()

    async def wait_for_change(self, at_most: float) -> None:
        """The open backend's: holding the state, the docker backend's (woken by its core);
        attached, the azure backend's (a sleep: the holder's endpoint pushes nothing)."""
        await self._call("wait_for_change", at_most)

    async def create_pool(self, spec: PoolSpec) -> None:
        if self.attached is not None and spec.image_reference is None:
            # The endpoint runs any marketplace image on its own node image: name the run's.
            image = ImageReference(virtual_machine_image_id=spec.image or DEFAULT_NODE_IMAGE)
            spec = dataclasses.replace(spec, image=None, image_reference=image)
        await self._call("create_pool", spec)

    async def delete_pool(self, pool_id: str, *, wait: bool = True) -> None:
        # Waited for when attached, as the docker backend always does: the run ends once
        # nothing of the pool is left, and the holder does not stop with a deletion under way.
        await self._call("delete_pool", pool_id, wait=wait or self.attached is not None)

    async def delete_job(self, job_id: str, *, wait: bool = True) -> None:
        await self._call("delete_job", job_id, wait=wait or self.attached is not None)


def shared_docker_backend(settings: DockerSettings) -> BatchBackend:
    """The CLI's docker backend (see the module's docstring)."""
    backend: BatchBackend = SharedDockerBackend(settings)
    return backend

"""`DockerBackend`: the Batch core over the Docker node executor, as a `BatchBackend`.

Entering it connects to the engine, takes the state lock, and starts the service (its executor's
node links and its scheduler) in a task group; leaving it stops them and writes the state. Nodes
and the tasks on them keep running between runs of the app. Holding the state, it serves it to
other processes (`sharing`): a loopback endpoint started on the first connection, published
beside the lock; with `attach`, a backend that finds the state held by a process that publishes
its service raises `StateHeld` instead of waiting, for the app to attach to that process.

A call that changes state is shielded from cancellation for the change itself only (`_atomic`),
never for what it waits on: an image pull before a pool is created, a deletion's wait for
release tasks. So the first Ctrl-C stops the caller at once wherever it is, and what was
asked for is either not begun or carried through by the service.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType

import anyio
import anyio.abc
import anyio.to_thread
import structlog

from jobprep_release.backends.administration import PoolNodeCounts, SupportedImage
from jobprep_release.backends.base import (
    AutoScaleRun,
    ComputeNode,
    DisableJobOption,
    DisableSchedulingOption,
    Job,
    JobSpec,
    JobUpdate,
    NodeDeallocationOption,
    NodeLogsRequest,
    NodeLogsUpload,
    Pool,
    PoolSpec,
    PoolUpdate,
    PrepReleaseStatus,
    StartTaskSpec,
    Task,
    TaskConstraints,
    TaskCounts,
    TaskSpec,
)
from jobprep_release.backends.docker.core.kernel import CoreSettings
from jobprep_release.backends.docker.core.service import BatchService
from jobprep_release.backends.docker.core.store import StateStore, default_state_dir
from jobprep_release.backends.docker.node.engine import STATE_LABEL, Engine
from jobprep_release.backends.docker.node.executor import DockerExecutor
from jobprep_release.backends.docker.settings import DockerSettings
from jobprep_release.backends.docker.sharing import (
    LazyEndpoint,
    Publication,
    ServiceFile,
    claim,
    read_service,
)
from jobprep_release.backends.errors import BackendError

log = structlog.get_logger("jobprep_release.docker")

CHANGE_GAP = 0.005
CHANGE_BURST = 4
"""`DockerBackend.wait_for_change` returns at a change at most once per `CHANGE_GAP` seconds
on average, `CHANGE_BURST` at once (a token bucket): at 10,000 tasks the state changes every
few milliseconds, and a caller woken at each change would poll in a hot loop; a few changes
close together (the sample's last release task ending, then its job completing) are each seen
at once."""

ADD_TASKS_CHUNK = 500
"""Tasks added in one go: a collection of 10,000 at once would hold the event loop ~80 ms."""


class StateHeld(BackendError):
    """The engine's state is held by another process, which serves it at `service`."""

    def __init__(self, service: ServiceFile, store: StateStore) -> None:
        super().__init__(f"the docker backend's state is held by pid {service.pid}")
        self.service = service
        self.store = store


def _atomic() -> anyio.CancelScope:
    """A change, once asked for, is carried through: cancelling (Ctrl-C) the caller midway
    must not leave, say, a job terminating with half of its release tasks started. Only for
    changes that do not wait (they end in well under a second)."""
    return anyio.CancelScope(shield=True)


class DockerBackend:
    """Azure Batch semantics on a Docker engine: each node a container, state kept on disk."""

    name = "docker"
    poll_interval = 0.05

    def __init__(
        self, settings: DockerSettings | None = None, *, attach: bool = False, lazy: bool = True
    ) -> None:
        """`attach`: raise `StateHeld` when another process holds the state and serves it,
        rather than wait for it. `lazy`: serve the state to other processes on a loopback
        socket started on the first connection (`serve` publishes its own endpoint instead,
        with `publish`)."""
        self.settings = settings or DockerSettings()
        self._attach = attach
        self._lazy = lazy
        self._engine: Engine | None = None
        self._store: StateStore | None = None
        self._service: BatchService | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._publication: Publication | None = None
        self._endpoint: LazyEndpoint | None = None
        self._tokens = float(CHANGE_BURST)
        self._counted = -math.inf
        """The waits' token bucket (`CHANGE_BURST`) and when it was last filled up."""

    @property
    def engine(self) -> Engine:
        """The Docker engine the backend drives (its `limiter` bounds the threads it uses)."""
        if self._engine is None:
            raise RuntimeError("DockerBackend is used outside `async with`")
        return self._engine

    @property
    def service(self) -> BatchService:
        if self._service is None:
            raise RuntimeError("DockerBackend is used outside `async with`")
        return self._service

    async def __aenter__(self) -> DockerBackend:
        self._engine = await Engine.connect(self.settings.docker_host)
        try:
            engine_id = await self._engine.engine_id()
            self._store = StateStore(self.settings.state_dir or default_state_dir(), engine_id)
            await self._acquire(self._store)
            self._publication = Publication(self._store)
            identity = await anyio.to_thread.run_sync(claim, self._store)
            self._engine.scope = {STATE_LABEL: identity}
            core_settings = CoreSettings(
                account_name=self.settings.account_name,
                default_image=self.settings.image,
                storage=self.settings.storage,
            )
            executor = DockerExecutor(self._engine)
            self._service = BatchService(executor, self._store, core_settings)
            self._group = anyio.create_task_group()
            await self._group.__aenter__()
            await self._group.start(self._service.run)
            if self._lazy:
                self._endpoint = LazyEndpoint(self.settings.account_name)
                self._group.start_soon(self._endpoint.serve, self._service, self._group)
                endpoint = self._endpoint
                await anyio.to_thread.run_sync(
                    self._publication.publish, endpoint.url, endpoint.account, endpoint.key
                )
        except BaseException:
            await self._teardown()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self._teardown()

    async def _acquire(self, store: StateStore) -> None:
        """Take the state's lock, waiting while another process holds it (`StateStore.acquire`);
        with `attach`, `StateHeld` as soon as the holder publishes a service this process can
        reach (one in another network namespace is waited for, saying why); a state directory
        that cannot be made or written is `StateUnreadable` naming it."""

        async def published() -> str | None:
            service = await anyio.to_thread.run_sync(read_service, store)
            if service is None:
                return None
            if not service.reachable():
                return service.unreachable()
            raise StateHeld(service, store)

        await store.acquire(published if self._attach else None)

    def publish(self, url: str, account: str, key: str) -> None:
        """Tell other processes where this process serves the state (`serve`'s endpoint)."""
        if self._publication is None:
            raise RuntimeError("DockerBackend is used outside `async with`")
        self._publication.publish(url, account, key)

    async def linger(self, say: Callable[[str], None]) -> None:
        """Wait until no run attached to this process's service still uses it (saying so in
        one line through `say` if any does); from then on none can attach. Cancel to stop
        waiting."""
        if self._publication is None:
            return
        endpoint = self._endpoint
        await self._publication.wait_for_attached(
            say, endpoint.connections if endpoint is not None else lambda: 0
        )

    async def withdraw(self) -> None:
        """Stop other processes from attaching to this process's service from now on (the
        runs attached already keep it until the backend closes): for a holder that is
        stopping before its end, as on Ctrl-C, so that a run started meanwhile waits for the
        state and then holds it, rather than attach to a service about to go away."""
        if self._publication is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._publication.withdraw)

    async def _teardown(self) -> None:
        if self._publication is not None:
            # Withdrawn first: while the lock is still held, no new run may attach.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._publication.withdraw)
        if self._group is not None:
            self._group.cancel_scope.cancel()
            await self._group.__aexit__(None, None, None)
            self._group = None
        with anyio.CancelScope(shield=True):
            if self._endpoint is not None:
                self._endpoint.close()
                self._endpoint = None
            if self._service is not None:
                await self._service.close()
            if self._store is not None:
                await anyio.to_thread.run_sync(self._store.close)  # folds in the WAL
                self._store.release()
            if self._publication is not None:
                self._publication.release()
                self._publication = None
            if self._engine is not None:
                await self._engine.close()

    async def wait_for_change(self, at_most: float) -> None:
        """Return once the state has changed (`BatchService.next_change`: the core sees every
        change) since the call, or after `at_most` seconds; a change beyond the rate that
        `CHANGE_GAP` and `CHANGE_BURST` allow is seen when the rate does (late, never missed).
        A change between the caller's look and this call is not seen; there is none when the
        look is the reads the flow's waits make (task counts, nodes, the job), which never
        yield the loop."""
        change = self.service.next_change()
        with anyio.move_on_after(at_most):
            await change.wait()
            delay = self._take_return()
            if delay > 0:
                await anyio.sleep(delay)

    def _take_return(self) -> float:
        """Spend a token of the waits' bucket: the seconds to wait for it (0 if one was left)."""
        now = anyio.current_time()
        refill = (now - self._counted) / CHANGE_GAP
        self._tokens = min(CHANGE_BURST, self._tokens + refill) - 1
        self._counted = now
        return max(-self._tokens, 0) * CHANGE_GAP

    async def create_pool(self, spec: PoolSpec) -> None:
        await self.service.prepare_pool(spec)  # a pull may take minutes: not shielded
        with _atomic():
            await self.service.create_pool(spec)

    async def get_pool(self, pool_id: str) -> Pool:
        return await self.service.get_pool(pool_id)

    async def get_pool_spec(self, pool_id: str) -> PoolSpec:
        await self.service.get_pool(pool_id)  # adopts a pool known by its labels
        return self.service.pool_spec(pool_id)

    async def update_pool(self, pool_id: str, update: PoolUpdate) -> None:
        with _atomic():
            await self.service.update_pool(pool_id, update)

    async def replace_pool_properties(
        self, pool_id: str, start_task: StartTaskSpec | None, metadata: Mapping[str, str]
    ) -> None:
        with _atomic():
            await self.service.replace_pool_properties(pool_id, start_task, metadata)

    async def resize_pool(self, pool_id: str, target_dedicated_nodes: int) -> None:
        with _atomic():
            await self.service.resize_pool(pool_id, target_dedicated_nodes)

    async def enable_auto_scale(
        self, pool_id: str, formula: str | None, interval: timedelta | None = None
    ) -> None:
        with _atomic():
            await self.service.enable_auto_scale(pool_id, formula, interval)

    async def evaluate_auto_scale(self, pool_id: str, formula: str) -> AutoScaleRun:
        return await self.service.evaluate_auto_scale(pool_id, formula)

    async def disable_auto_scale(self, pool_id: str) -> None:
        with _atomic():
            await self.service.disable_auto_scale(pool_id)

    async def delete_pool(self, pool_id: str, *, wait: bool = True) -> None:
        # Deletion is done before this returns, whether or not the caller waits; cancelled
        # while it waits, the service carries the deletion on (a later call waits for it).
        with _atomic():
            deletion = await self.service.start_delete_pool(pool_id)
        await deletion.wait()

    async def list_nodes(self, pool_id: str) -> list[ComputeNode]:
        return await self.service.list_nodes(pool_id)

    async def find_job(self, job_id: str) -> Job | None:
        return await self.service.find_job(job_id)

    async def create_job(self, spec: JobSpec) -> None:
        with _atomic():
            await self.service.create_job(spec)

    async def get_job(self, job_id: str) -> Job:
        return await self.service.get_job(job_id)

    async def get_job_spec(self, job_id: str) -> JobSpec:
        return self.service.job_spec(job_id)

    async def add_tasks(self, job_id: str, tasks: Sequence[TaskSpec]) -> None:
        """Add `tasks` in collections of `ADD_TASKS_CHUNK`, each added whole (the loop runs
        between two; an interrupted run's next run adds the ones missing, as on Azure, whose
        collections are 100 tasks at most)."""
        for first in range(0, len(tasks), ADD_TASKS_CHUNK):
            with _atomic():
                await self.service.add_tasks(job_id, tasks[first : first + ADD_TASKS_CHUNK])

    async def get_task_counts(self, job_id: str) -> TaskCounts:
        return await self.service.get_task_counts(job_id)

    async def list_tasks(self, job_id: str) -> list[Task]:
        return await self.service.list_tasks(job_id)

    async def get_task(self, job_id: str, task_id: str) -> Task:
        return await self.service.get_task(job_id, task_id)

    async def terminate_task(self, job_id: str, task_id: str) -> None:
        with _atomic():
            await self.service.terminate_task(job_id, task_id)

    async def reboot_node(self, pool_id: str, node_id: str) -> None:
        with _atomic():
            await self.service.reboot_node(pool_id, node_id)

    async def reimage_node(self, pool_id: str, node_id: str) -> None:
        with _atomic():
            await self.service.reimage_node(pool_id, node_id)

    async def read_node_file(self, pool_id: str, node_id: str, path: str) -> bytes:
        return await self.service.read_node_file(pool_id, node_id, path)

    async def upload_node_logs(
        self, pool_id: str, node_id: str, request: NodeLogsRequest
    ) -> NodeLogsUpload:
        return await self.service.upload_node_logs(pool_id, node_id, request)

    # --- pool sizes and node administration (`administration.NodeAdministration`) ----------

    async def set_pool_targets(
        self,
        pool_id: str,
        target_dedicated_nodes: int,
        target_low_priority_nodes: int = 0,
        *,
        resize_timeout: timedelta | None = None,
        deallocation: NodeDeallocationOption = NodeDeallocationOption.REQUEUE,
    ) -> None:
        with _atomic():
            await self.service.set_pool_targets(
                pool_id,
                target_dedicated_nodes,
                target_low_priority_nodes,
                resize_timeout=resize_timeout,
                deallocation=deallocation,
            )

    async def stop_pool_resize(self, pool_id: str) -> None:
        with _atomic():
            await self.service.stop_pool_resize(pool_id)

    async def remove_nodes(
        self,
        pool_id: str,
        node_ids: Sequence[str],
        *,
        resize_timeout: timedelta | None = None,
        deallocation: NodeDeallocationOption = NodeDeallocationOption.REQUEUE,
    ) -> None:
        with _atomic():
            await self.service.remove_nodes(
                pool_id, node_ids, resize_timeout=resize_timeout, deallocation=deallocation
            )

    async def disable_node_scheduling(
        self,
        pool_id: str,
        node_id: str,
        option: DisableSchedulingOption = DisableSchedulingOption.REQUEUE,
    ) -> None:
        with _atomic():
            await self.service.disable_node_scheduling(pool_id, node_id, option)

    async def enable_node_scheduling(self, pool_id: str, node_id: str) -> None:
        with _atomic():
            await self.service.enable_node_scheduling(pool_id, node_id)

    async def preempt_node(self, pool_id: str, node_id: str) -> None:
        """Evict a spot/low-priority node, as Azure does (a local operation)."""
        with _atomic():
            await self.service.preempt_node(pool_id, node_id)

    async def get_node(self, pool_id: str, node_id: str) -> ComputeNode:
        return await self.service.get_node(pool_id, node_id)

    async def list_pool_node_counts(self) -> list[PoolNodeCounts]:
        return await self.service.list_pool_node_counts()

    async def list_supported_images(self) -> list[SupportedImage]:
        return await self.service.list_supported_images()

    async def terminate_job(self, job_id: str, reason: str | None = None) -> None:
        with _atomic():
            await self.service.terminate_job(job_id, reason)

    async def list_prep_release_status(self, job_id: str) -> list[PrepReleaseStatus]:
        return await self.service.list_prep_release_status(job_id)

    async def delete_job(self, job_id: str, *, wait: bool = True) -> None:
        # As delete_pool; the wait may be long (release tasks run up to 15 minutes).
        with _atomic():
            deletion = await self.service.start_delete_job(job_id)
        await deletion.wait()

    async def update_job(self, job_id: str, update: JobUpdate) -> None:
        with _atomic():
            await self.service.update_job(job_id, update)

    async def replace_job(self, job_id: str, update: JobUpdate) -> None:
        with _atomic():
            await self.service.replace_job(job_id, update)

    async def disable_job(self, job_id: str, option: DisableJobOption) -> None:
        with _atomic():
            await self.service.disable_job(job_id, option)

    async def enable_job(self, job_id: str) -> None:
        with _atomic():
            await self.service.enable_job(job_id)

    async def update_task(self, job_id: str, task_id: str, constraints: TaskConstraints) -> None:
        with _atomic():
            await self.service.update_task(job_id, task_id, constraints)

    async def reactivate_task(self, job_id: str, task_id: str) -> None:
        with _atomic():
            await self.service.reactivate_task(job_id, task_id)

    async def delete_task(self, job_id: str, task_id: str) -> None:
        with _atomic():
            await self.service.delete_task(job_id, task_id)

    async def delete_node_file(
        self, pool_id: str, node_id: str, path: str, *, recursive: bool = False
    ) -> None:
        await self.service.delete_node_file(pool_id, node_id, path, recursive=recursive)

    async def delete_task_file(
        self, job_id: str, task_id: str, path: str, *, recursive: bool = False
    ) -> None:
        await self.service.delete_task_file(job_id, task_id, path, recursive=recursive)


async def node_reachable_host(docker_host: str | None = None) -> str:
    """The host's address that node containers reach it at (the engine's bridge gateway): a
    storage emulator listening there serves both the app and the tasks on nodes."""
    engine = await Engine.connect(docker_host)
    try:
        return await engine.bridge_gateway()
    finally:
        await engine.close()

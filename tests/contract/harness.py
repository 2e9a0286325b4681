"""The contract suite's harness: one pool on any backend, jobs made for a test, waits.

Backends are opened by name: ``docker`` always (a real engine), ``azure`` only when the
``AZURE_BATCH_*`` variables point at a real account. Everything a test creates is deleted
when it ends, pass or fail.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from jobprep_release.backends.base import (
    BatchBackend,
    ComputeNode,
    ContainerConfiguration,
    Job,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobSpec,
    JobState,
    NodeFillType,
    NodeState,
    PoolSpec,
    PrepReleaseStatus,
    StartTaskSpec,
    Task,
    TaskState,
    UserAccount,
)
from jobprep_release.backends.docker.core.storage import LinkedStorage
from jobprep_release.backends.errors import NotFound

AZURE_VARIABLES = ("AZURE_BATCH_ENDPOINT", "AZURE_BATCH_ACCOUNT", "AZURE_BATCH_ACCESS_KEY")
WAIT_LIMIT = 120.0

BackendOpener = Callable[[], AbstractAsyncContextManager[BatchBackend]]


def azure_configured() -> bool:
    return all(os.environ.get(name) for name in AZURE_VARIABLES)


def opener(name: str, state_dir: Path, storage: LinkedStorage | None = None) -> BackendOpener:
    """Opens the named backend (imported only when used): ``docker``, ``endpoint`` (the azure
    backend on a local endpoint backed by Docker) or ``azure`` (a real account); `storage`,
    the storage account linked to the local account (docker and endpoint)."""

    @asynccontextmanager
    async def open_backend() -> AsyncIterator[BatchBackend]:
        from jobprep_release.backends.docker import DockerSettings

        settings = DockerSettings(state_dir=state_dir, storage=storage)
        if name == "endpoint":
            from tests.endpoint.harness import azure_on_endpoint

            async with azure_on_endpoint(state_dir, settings) as on_endpoint:
                yield on_endpoint
        elif name == "docker":
            from jobprep_release.backends.docker import DockerBackend

            async with DockerBackend(settings) as docker:
                yield docker
        else:
            from jobprep_release.backends.azure import build_azure_backend

            async with build_azure_backend(environ=os.environ, poll_interval=2.0) as azure:
                yield azure

    return open_backend


@dataclass
class Batch:
    """One pool on one backend, and the jobs a test made on it."""

    backend: BatchBackend
    pool_id: str
    node_ids: list[str]
    jobs: list[str] = field(default_factory=list)

    async def create_job(
        self,
        prep: str | JobPreparationTaskSpec | None = None,
        release: str | JobReleaseTaskSpec | None = None,
        **options: Any,
    ) -> str:
        job_id = f"{self.pool_id}-job{len(self.jobs) + 1}"
        preparation = JobPreparationTaskSpec(prep) if isinstance(prep, str) else prep
        releasing = JobReleaseTaskSpec(release) if isinstance(release, str) else release
        spec = JobSpec(id=job_id, pool_id=self.pool_id, preparation=preparation, release=releasing)
        await self.backend.create_job(replace(spec, **options))
        self.jobs.append(job_id)
        return job_id

    async def tasks_settled(self, job_id: str, limit: float = WAIT_LIMIT) -> dict[str, Task]:
        """The job's tasks once none is preparing or running and none is active."""
        with anyio.fail_after(limit):
            while True:
                counts = await self.backend.get_task_counts(job_id)
                if counts.active == 0 and counts.running == 0:
                    return {task.id: task for task in await self.backend.list_tasks(job_id)}
                await anyio.sleep(self.backend.poll_interval)

    async def task_in(self, job_id: str, task_id: str, *states: TaskState) -> Task:
        with anyio.fail_after(WAIT_LIMIT):
            while (task := await self.backend.get_task(job_id, task_id)).state not in states:
                await anyio.sleep(self.backend.poll_interval)
        return task

    async def job_in(self, job_id: str, state: JobState, limit: float = WAIT_LIMIT) -> Job:
        with anyio.fail_after(limit):
            while (job := await self.backend.get_job(job_id)).state is not state:
                await anyio.sleep(self.backend.poll_interval)
        return job

    async def nodes_idle(self, limit: float = WAIT_LIMIT) -> list[str]:
        return [node.id for node in await self.nodes_in(NodeState.IDLE, limit=limit)]

    async def nodes_in(self, *states: NodeState, limit: float = WAIT_LIMIT) -> list[ComputeNode]:
        """The pool's nodes once every one is in one of `states`."""
        with anyio.fail_after(limit):
            while True:
                nodes = await self.backend.list_nodes(self.pool_id)
                if nodes and all(node.state in states for node in nodes):
                    return nodes
                await anyio.sleep(self.backend.poll_interval)

    async def reboot(self, node_id: str) -> ComputeNode:
        """Reboot the node and return it once it is idle again after a later boot (its
        `last_boot_time` moved on; watching for it to leave `idle` can miss a reboot that
        ends between two reads)."""
        (before,) = [n for n in await self.backend.list_nodes(self.pool_id) if n.id == node_id]
        await self.backend.reboot_node(self.pool_id, node_id)
        with anyio.fail_after(WAIT_LIMIT):
            while True:
                (node,) = [
                    n for n in await self.backend.list_nodes(self.pool_id) if n.id == node_id
                ]
                booted = node.last_boot_time is not None and (
                    before.last_boot_time is None or node.last_boot_time > before.last_boot_time
                )
                if booted and node.state is NodeState.IDLE:
                    return node
                await anyio.sleep(0.05)

    async def prep_release(self, job_id: str) -> dict[str, PrepReleaseStatus]:
        statuses = await self.backend.list_prep_release_status(job_id)
        return {status.node_id: status for status in statuses}

    async def shared_file(self, node_id: str, name: str) -> str | None:
        try:
            data = await self.backend.read_node_file(self.pool_id, node_id, f"shared/{name}")
        except NotFound:
            return None
        return data.decode()


@asynccontextmanager
async def pool(
    open_backend: BackendOpener,
    *,
    nodes: int = 1,
    slots: int = 1,
    fill: NodeFillType = NodeFillType.PACK,
    start_task: StartTaskSpec | None = None,
    ready: bool = True,
    user_accounts: tuple[UserAccount, ...] = (),
    low_priority: int = 0,
    container_configuration: ContainerConfiguration | None = None,
) -> AsyncIterator[Batch]:
    """A pool (with `ready`, once every node is idle) on a fresh backend connection; all
    deleted afterwards."""
    pool_id = f"Contract-{uuid.uuid4().hex[:8]}"
    async with open_backend() as backend:
        spec = PoolSpec(
            id=pool_id,
            target_dedicated_nodes=nodes,
            target_low_priority_nodes=low_priority,
            task_slots_per_node=slots,
            node_fill_type=fill,
            start_task=start_task,
            user_accounts=user_accounts,
            container_configuration=container_configuration,
        )
        await backend.create_pool(spec)
        batch = Batch(backend=backend, pool_id=pool_id, node_ids=[])
        try:
            if ready:
                batch.node_ids = await batch.nodes_idle(limit=WAIT_LIMIT * 10)
            yield batch
        finally:
            with anyio.CancelScope(shield=True):
                for job_id in batch.jobs:
                    with contextlib.suppress(NotFound):
                        await backend.delete_job(job_id)
                await backend.delete_pool(pool_id)

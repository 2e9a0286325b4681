"""`BatchService`: a small Batch service (pools, nodes, jobs, tasks, scheduler, outcomes,
persistence) over any `NodeExecutor`, answering in the backend-neutral models.

It imports nothing of Docker: the same service runs on node containers (`DockerExecutor`),
or in memory on a fake clock (`FakeExecutor`), behind the in-process `DockerBackend` or the
REST endpoint. It is driven by calls and by the executor's events; every change a caller asks
for is saved before the call returns, and a process is recorded (and saved) before it starts,
so a service that crashes between any two steps loses nothing and runs nothing twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta

import anyio
import anyio.abc

from jobprep_release.backends.administration import (
    PoolNodeCounts,
    SupportedImage,
    local_catalogue,
)
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
    NodeState,
    Pool,
    PoolSpec,
    PoolUpdate,
    PrepReleaseStatus,
    StartTaskSpec,
    Task,
    TaskConstraints,
    TaskContainerExecutionInfo,
    TaskCounts,
    TaskSpec,
)
from jobprep_release.backends.docker.core import (
    autopools,
    autoscaling,
    deletions,
    environment,
    jobs,
    multiinstance,
    nodelogs,
    outcomes,
    pools,
    processes,
    rules,
    scheduler,
    schedules,
    tokens,
    views,
)
from jobprep_release.backends.docker.core.clock import Clock, SystemClock
from jobprep_release.backends.docker.core.executor import (
    NOT_FOUND,
    FileInfo,
    NodeExecutor,
    ProcessExit,
)
from jobprep_release.backends.docker.core.kernel import Core, CoreSettings, Deletion
from jobprep_release.backends.docker.core.multiinstance import Subtask
from jobprep_release.backends.docker.core.records import NodeRecord, fill_histories
from jobprep_release.backends.docker.core.store import Store
from jobprep_release.backends.errors import BackendError, Conflict, InvalidRequest, NotFound
from jobprep_release.backends.schedules import JobSchedule, JobScheduleSpec


class BatchService:
    """The service. Start `run` in a task group (`await group.start(service.run)`) before
    anything else; `close` when done. Also the executor's `ExecutorListener`."""

    def __init__(
        self,
        executor: NodeExecutor,
        store: Store,
        settings: CoreSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._core = Core(executor, store, clock or SystemClock(), settings or CoreSettings())
        self._loaded = False
        self._autoscaler = autoscaling.Autoscaler(self._core)

    # --- lifecycle ---------------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Load the state, take back every node, then schedule until cancelled."""
        core = self._core
        await core.load()
        processes.replay(core, await core.store.journal())
        self._loaded = True
        fill_histories(core.state, core.now())
        if tokens.ensure_key(core):
            await core.persist()  # before any task is given a token signed with it
        async with anyio.create_task_group() as group:
            core.group = group
            await group.start(core.executor.run, self)
            await pools.drop_vanished_pools(core)
            processes.index_in_flight(core)
            for pool in core.state.pools.values():
                for node in pool.nodes:
                    if node.state is NodeState.PREEMPTED:
                        continue  # its VM is gone (`pools.preempt_node`)
                    # Nothing runs on a node until it has said hello to this service; a node
                    # leaving when its tasks end stays leaving.
                    if node.deallocation is None:
                        node.state = NodeState.STARTING
                    core.executor.create_node(core.setup(pool, node))
            group.start_soon(core.saver)
            group.start_soon(scheduler.sweep, core)
            group.start_soon(self._autoscaler.run)
            autopools.watch_all(core)
            group.start_soon(schedules.run, core, self.create_pool)
            deletions.resume(core)
            core.poke()
            task_status.started()
            await scheduler.run(core)

    async def close(self) -> None:
        """Save the state (when it was loaded: a state that could not be read stays as it
        was, never replaced by an empty one) and let the executor go."""
        if self._loaded:
            await self._core.persist()
        await self._core.executor.close()

    def next_change(self) -> anyio.Event:
        """An event set at the state's next change: any save-worthy change (a task or node
        state, a job's completion, a record added or removed), as `Core.next_change`."""
        return self._core.next_change()

    # --- pools and nodes ---------------------------------------------------------------------

    async def prepare_pool(self, spec: PoolSpec) -> None:
        """What creating the pool would wait for before changing anything: its node image,
        pulled when absent (`NotFound` ``ImageNotFound``). Cancelling it changes nothing."""
        image = spec.image or self._core.settings.default_image
        if image is not None:
            await self._core.executor.check_image(image)

    async def create_pool(self, spec: PoolSpec) -> None:
        """Create a pool and start its nodes; `AlreadyExists` (``PoolExists``). With
        `enable_auto_scale` its targets are ignored: its formula (checked first, as Enable
        Autoscale checks it) is evaluated soon after and sets them."""
        formula = spec.auto_scale_formula
        if not spec.enable_auto_scale:
            await pools.create_pool(self._core, spec)
            return
        if formula is None:
            raise InvalidRequest(
                "A required property was not specified in the request body: autoScaleFormula",
                code="MissingRequiredProperty",
            )
        autoscaling.compile_checked(formula)
        interval = spec.auto_scale_evaluation_interval
        if interval is not None:
            autoscaling.check_interval(interval)
        unscaled = replace(spec, target_dedicated_nodes=0, target_low_priority_nodes=0)
        await pools.create_pool(self._core, unscaled)
        pool = self._core.pool(spec.id)
        await self._autoscaler.begin(pool, formula, interval, restart=True)

    async def update_pool(self, pool_id: str, update: PoolUpdate) -> None:
        """Update Pool; `InvalidRequest` (``PropertyCannotBeUpdated``) for a property the
        service changes only on an empty pool, while it has nodes."""
        await pools.update_pool(self._core, pool_id, update)

    async def replace_pool_properties(
        self, pool_id: str, start_task: StartTaskSpec | None, metadata: Mapping[str, str]
    ) -> None:
        """Replace Pool Properties: the start task (None removes it) and all the metadata."""
        await pools.replace_pool_properties(self._core, pool_id, start_task, metadata)

    async def list_pools(self) -> list[Pool]:
        """Every pool, ordered by id as the service lists them (its recorded List Pools pages
        hold pools made in another order by their ids)."""
        ordered = sorted(self._core.state.pools.items())  # keyed by the lower-cased id
        return [views.pool_view(pool) for _, pool in ordered]

    async def get_pool(self, pool_id: str) -> Pool:
        """The pool (adopted from the executor when the state lost it); `NotFound`."""
        await pools.adopt(self._core, pool_id)
        return views.pool_view(self._core.pool(pool_id))

    async def resize_pool(
        self, pool_id: str, target_dedicated_nodes: int, resize_timeout: timedelta | None = None
    ) -> None:
        """Resize Pool; 409 ``OperationInvalidForCurrentState`` while autoscale sets the
        pool's targets (the documentation: disable autoscale, then resize)."""
        autoscaling.refuse_if_autoscaled(self._core.pool(pool_id))
        await pools.resize_pool(self._core, pool_id, target_dedicated_nodes, resize_timeout)

    async def enable_auto_scale(
        self, pool_id: str, formula: str | None, interval: timedelta | None = None
    ) -> None:
        """Enable Autoscale, or change the formula or interval (`autoscaling`): 400
        ``AutoScalingFormulaSyntaxError`` (`autoscaling.FormulaRefused`), 409
        ``PoolBeingResized``, `NotSupported` for a metric the core does not measure."""
        await self._autoscaler.enable(pool_id, formula, interval)

    async def disable_auto_scale(self, pool_id: str) -> None:
        """Disable Autoscale: the targets stay as the last evaluation set them."""
        await self._autoscaler.disable(pool_id)

    async def evaluate_auto_scale(self, pool_id: str, formula: str) -> AutoScaleRun:
        """Evaluate Autoscale: the formula's run now, not applied; 409
        ``OperationInvalidForCurrentState`` unless autoscale is enabled on the pool."""
        return self._autoscaler.evaluate(pool_id, formula)

    async def begin_delete_pool(self, pool_id: str) -> None:
        """Delete Pool: the pool is ``deleting`` (recorded and saved) when this returns, and
        removed in the background; `NotFound`, `Conflict` (``PoolBeingDeleted``)."""
        await deletions.begin_delete_pool(self._core, pool_id)

    async def delete_pool(self, pool_id: str) -> None:
        """Delete the pool, or carry on deleting it; returns when it is gone."""
        await deletions.delete_pool(self._core, pool_id)

    async def start_delete_pool(self, pool_id: str) -> Deletion:
        """The state change of `delete_pool`: the pool is ``deleting`` (saved) and its removal
        under way when this returns; `Deletion.wait` waits for it to end."""
        return await deletions.start_delete_pool(self._core, pool_id)

    async def list_nodes(self, pool_id: str) -> list[ComputeNode]:
        executor = self._core.executor
        pool = self._core.pool(pool_id)
        return [
            views.node_view(node, executor.node_address(node.id), pool.spec) for node in pool.nodes
        ]

    async def get_node(self, pool_id: str, node_id: str) -> ComputeNode:
        node = self._core.find_node(pool_id, node_id)
        address = self._core.executor.node_address(node.id)
        return views.node_view(node, address, self._core.pool(pool_id).spec)

    async def reboot_node(self, pool_id: str, node_id: str) -> None:
        await pools.reboot_node(self._core, pool_id, node_id)

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
        """Resize Pool with both targets (autoscale sets them through `pools.resize_pool`);
        `Conflict` (``PoolBeingResized``) unless the pool is steady, (``OperationInvalidFor
        CurrentState``) while autoscale sets its targets."""
        autoscaling.refuse_if_autoscaled(self._core.pool(pool_id))
        await pools.resize_pool(
            self._core,
            pool_id,
            target_dedicated_nodes,
            resize_timeout,
            target_low_priority_nodes=target_low_priority_nodes,
            deallocation=deallocation,
        )

    async def stop_pool_resize(self, pool_id: str) -> None:
        await pools.stop_resize(self._core, pool_id)

    async def remove_nodes(
        self,
        pool_id: str,
        node_ids: Sequence[str],
        *,
        resize_timeout: timedelta | None = None,
        deallocation: NodeDeallocationOption = NodeDeallocationOption.REQUEUE,
    ) -> None:
        await pools.remove_nodes(self._core, pool_id, node_ids, resize_timeout, deallocation)

    async def disable_node_scheduling(
        self,
        pool_id: str,
        node_id: str,
        option: DisableSchedulingOption = DisableSchedulingOption.REQUEUE,
    ) -> None:
        await pools.disable_scheduling(self._core, pool_id, node_id, option)

    async def enable_node_scheduling(self, pool_id: str, node_id: str) -> None:
        await pools.enable_scheduling(self._core, pool_id, node_id)

    async def preempt_node(self, pool_id: str, node_id: str) -> None:
        """Evict a spot/low-priority node (a local operation: `pools.preempt_node`)."""
        await pools.preempt_node(self._core, pool_id, node_id)

    async def list_pool_node_counts(self) -> list[PoolNodeCounts]:
        return [views.node_counts(pool) for pool in self._core.state.pools.values()]

    async def list_supported_images(self) -> list[SupportedImage]:
        """The local catalogue (`administration.local_catalogue`): what any pool runs on."""
        return local_catalogue(self._core.settings.default_image)

    async def reimage_node(self, pool_id: str, node_id: str) -> None:
        await pools.reimage_node(self._core, pool_id, node_id)

    async def upload_node_logs(
        self, pool_id: str, node_id: str, request: NodeLogsRequest
    ) -> NodeLogsUpload:
        return await nodelogs.upload(self._core, pool_id, node_id, request)

    # --- jobs and tasks ----------------------------------------------------------------------

    async def create_job(self, spec: JobSpec) -> None:
        """Add Job; with `spec.auto_pool`, its pool is created first (`autopools`) and, unless
        kept alive, deleted once the job completes or is deleted."""
        if spec.auto_pool is None:
            await jobs.create_job(self._core, spec)
            return
        core = self._core
        spec = await autopools.create(core, spec, self.create_pool)
        try:
            await jobs.create_job(core, spec)
        except Exception:
            await autopools.abandon(core, spec.pool_id)
            raise
        if core.pool(spec.pool_id).auto_pool_job is not None:
            core.spawn(autopools.watch, core, spec.pool_id)

    async def list_jobs(self) -> list[Job]:
        return [views.job_view(job) for job in self._core.state.jobs.values()]

    async def find_job(self, job_id: str) -> Job | None:
        job = self._core.state.jobs.get(job_id.lower())
        return None if job is None else views.job_view(job)

    async def get_job(self, job_id: str) -> Job:
        return views.job_view(self._core.job(job_id))

    async def add_tasks(self, job_id: str, tasks: Sequence[TaskSpec]) -> None:
        await jobs.add_tasks(self._core, job_id, tasks)

    async def get_task_counts(self, job_id: str) -> TaskCounts:
        return jobs.task_counts(self._core, job_id)

    async def list_tasks(self, job_id: str) -> list[Task]:
        return [views.task_view(task) for task in self._core.job(job_id).tasks.values()]

    async def task_views(self, job_id: str) -> views.TaskViews:
        """`list_tasks`, each view made when first read (`views.TaskViews`)."""
        return views.TaskViews(list(self._core.job(job_id).tasks.values()))

    async def get_task(self, job_id: str, task_id: str) -> Task:
        core = self._core
        return views.task_view(core.task(core.job(job_id), task_id))

    async def terminate_task(self, job_id: str, task_id: str) -> None:
        """End a task: an active one completes without running, a running one is killed."""
        await jobs.terminate_task(self._core, job_id, task_id)

    async def terminate_job(self, job_id: str, reason: str | None = None) -> None:
        """`terminating` now, `completed` once release tasks ended; `Conflict` when done."""
        await jobs.terminate_job(self._core, job_id, reason)

    async def list_prep_release_status(self, job_id: str) -> list[PrepReleaseStatus]:
        return jobs.prep_release_status(self._core, job_id)

    async def update_job(self, job_id: str, update: JobUpdate) -> None:
        """Update Job: the properties given replace the job's (`jobs.update_job`)."""
        await jobs.update_job(self._core, job_id, update, replace_all=False)

    async def replace_job(self, job_id: str, update: JobUpdate) -> None:
        """Replace Job: every updatable property replaced, the ones not given by defaults."""
        await jobs.update_job(self._core, job_id, update, replace_all=True)

    async def disable_job(self, job_id: str, option: DisableJobOption) -> None:
        """Disable Job: ``disabling`` now, ``disabled`` once no task of it runs."""
        await jobs.disable_job(self._core, job_id, option)

    async def enable_job(self, job_id: str) -> None:
        """Enable Job: a disabled job is active again."""
        await jobs.enable_job(self._core, job_id)

    async def update_task(self, job_id: str, task_id: str, constraints: TaskConstraints) -> None:
        """Update Task: the task's constraints replaced."""
        await jobs.update_task(self._core, job_id, task_id, constraints)

    async def begin_delete_job(self, job_id: str) -> None:
        """Delete Job: the job is ``deleting`` (recorded and saved) when this returns; its
        running tasks are ended, its release tasks run, then its files are removed and it is
        forgotten, in the background; `NotFound`, `Conflict` (``JobBeingDeleted``)."""
        await deletions.begin_delete_job(self._core, job_id)

    async def delete_job(self, job_id: str) -> None:
        """Delete the job, or carry on deleting it; returns when it is gone."""
        await deletions.delete_job(self._core, job_id)

    async def start_delete_job(self, job_id: str) -> Deletion:
        """The state change of `delete_job`: the job is ``deleting`` (saved) and its deletion
        (ending its tasks, its release tasks, its files) under way when this returns;
        `Deletion.wait` waits for it to end."""
        return await deletions.start_delete_job(self._core, job_id)

    # --- job schedules (`schedules`) ----------------------------------------------------------

    async def create_job_schedule(self, spec: JobScheduleSpec) -> None:
        """Add Job Schedule; `AlreadyExists` (``JobScheduleExists``)."""
        await schedules.create(self._core, spec, self.create_pool)

    async def list_job_schedules(self) -> list[JobSchedule]:
        core = self._core
        return [schedules.view(core, record) for record in core.state.schedules.values()]

    async def get_job_schedule(self, schedule_id: str) -> JobSchedule:
        """One job schedule; `NotFound` (``JobScheduleNotFound``)."""
        return schedules.view(self._core, schedules.find(self._core, schedule_id))

    def job_schedule_spec(self, schedule_id: str) -> JobScheduleSpec:
        return schedules.find(self._core, schedule_id).spec

    async def update_job_schedule(
        self, schedule_id: str, spec: JobScheduleSpec, *, replace_all: bool
    ) -> None:
        """Update (PATCH, `spec` merged by the caller) or Replace (PUT) Job Schedule."""
        await schedules.update(
            self._core, schedule_id, spec, self.create_pool, replace_all=replace_all
        )

    async def disable_job_schedule(self, schedule_id: str) -> None:
        await schedules.disable(self._core, schedule_id)

    async def enable_job_schedule(self, schedule_id: str) -> None:
        await schedules.enable(self._core, schedule_id, self.create_pool)

    async def terminate_job_schedule(self, schedule_id: str) -> None:
        await schedules.terminate(self._core, schedule_id, self.create_pool)

    async def begin_delete_job_schedule(self, schedule_id: str) -> None:
        await schedules.begin_delete(self._core, schedule_id, self.create_pool)

    async def list_schedule_jobs(self, schedule_id: str) -> list[Job]:
        """List Jobs from Job Schedule; `NotFound` (``JobScheduleNotFound``)."""
        return [views.job_view(job) for job in schedules.schedule_jobs(self._core, schedule_id)]

    async def list_subtasks(self, job_id: str, task_id: str) -> list[Subtask]:
        """List Subtasks of a multi-instance task (none for another task); `NotFound`."""
        core = self._core
        return multiinstance.subtasks(core.task(core.job(job_id), task_id))

    def set_account_url(self, url: str) -> None:
        """The URL clients reach the service at (tasks' ``AZ_BATCH_ACCOUNT_URL``, for tasks
        started from now on); ``http://localhost/<account>`` until an endpoint sets it."""
        self._core.account_url = url

    def task_token_job(self, token: str) -> str | None:
        """The job a task's authentication token grants access to; None when `token` is not
        one this service gave a task (`tokens`)."""
        return tokens.job_of(self._core, token)

    # --- specs: what was asked, for an endpoint that shows it ---------------------------------

    def pool_spec(self, pool_id: str) -> PoolSpec:
        """The pool's spec (as created, with its current target); `NotFound` when absent."""
        return self._core.pool(pool_id).spec

    def job_spec(self, job_id: str) -> JobSpec:
        """The job's spec as created; `NotFound` (``JobNotFound``) when absent."""
        return self._core.job(job_id).spec

    def task_spec(self, job_id: str, task_id: str) -> TaskSpec:
        """The task's spec as added; `NotFound` (``JobNotFound``/``TaskNotFound``) when absent."""
        core = self._core
        return core.task(core.job(job_id), task_id).spec

    # --- files -------------------------------------------------------------------------------

    def _node(self, pool_id: str, node_id: str) -> NodeRecord:
        return self._core.find_node(pool_id, node_id)

    async def read_node_file(self, pool_id: str, node_id: str, path: str) -> bytes:
        """A file's bytes, `path` relative to the node's root; `NotFound`, `InvalidRequest`."""
        node = self._node(pool_id, node_id)
        return await self._core.executor.read_file(node.id, rules.confined(path))

    def stream_node_file(
        self, pool_id: str, node_id: str, path: str, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """A file's bytes from `start`, `length` of them (all when None), streamed
        (`NodeExecutor.stream_file`); `NotFound`, `InvalidRequest`."""
        node = self._node(pool_id, node_id)
        return self._core.executor.stream_file(node.id, rules.confined(path), start, length)

    async def node_file_properties(self, pool_id: str, node_id: str, path: str) -> FileInfo:
        """A file's or directory's properties, `path` relative to the node's root."""
        node = self._node(pool_id, node_id)
        return await self._core.executor.stat_file(node.id, rules.confined(path))

    async def list_node_files(
        self, pool_id: str, node_id: str, directory: str, *, recursive: bool
    ) -> list[FileInfo]:
        """What `directory` (relative to the node's root; "" for the root) holds."""
        node = self._node(pool_id, node_id)
        relative = rules.confined(directory) if directory else ""
        return await self._core.executor.list_files(node.id, relative, recursive=recursive)

    async def delete_node_file(
        self, pool_id: str, node_id: str, path: str, *, recursive: bool = False
    ) -> None:
        """Delete Node File: a file, or a directory (with `recursive`, and everything in it;
        without, only an empty one: REST "If recursive is false then the directory must be
        empty or deletion will fail"), `path` relative to the node's root. `NotFound`
        (``FileNotFound``); `InvalidRequest` for a path leaving the root; `Conflict` for a
        directory that is not empty (Inferred code ``OperationInvalidForCurrentState``)."""
        node = self._node(pool_id, node_id)
        relative = rules.confined(path)
        executor = self._core.executor
        info = await executor.stat_file(node.id, relative)
        listed = info.is_directory and not recursive
        if listed and await executor.list_files(node.id, relative, recursive=False):
            raise Conflict(
                f"{path} is a directory that is not empty; delete it with recursive",
                code="OperationInvalidForCurrentState",
            )
        await executor.remove_tree(node.id, f"{environment.NODE_ROOT}/{relative}")

    async def delete_task_file(
        self, job_id: str, task_id: str, path: str, *, recursive: bool = False
    ) -> None:
        """Delete Task File: `path` relative to the task's directory on the node where it ran
        (as `delete_node_file`); `NotFound` when the task has no files."""
        pool_id, node_id, directory = self.task_location(job_id, task_id)
        await self.delete_node_file(
            pool_id, node_id, f"{directory}/{rules.confined(path)}", recursive=recursive
        )

    async def reactivate_task(self, job_id: str, task_id: str) -> None:
        """Reactivate Task: a failed task is active again, its retry count 0."""
        await jobs.reactivate_task(self._core, job_id, task_id)

    async def delete_task(self, job_id: str, task_id: str) -> None:
        """Delete Task: ended if running, forgotten, its files on its node removed."""
        await jobs.delete_task(self._core, job_id, task_id)

    def task_location(self, job_id: str, task_id: str) -> tuple[str, str, str]:
        """Where a task's files are: (pool id, node id, task dir relative to the node root).

        `NotFound` (``FileNotFound``) when the task never ran or its files were removed.
        """
        core = self._core
        job = core.job(job_id)
        task = core.task(job, task_id)
        if task.node_id is None or task.files_removed:
            raise NotFound(f"task {task_id} has no files", code="FileNotFound")
        directory = environment.relative_to_root(environment.task_dir(job.spec.id, task.spec.id))
        return job.spec.pool_id, task.node_id, directory

    # --- the executor's events (ExecutorListener) ---------------------------------------------

    def on_node_state(self, node_id: str, state: NodeState) -> None:
        pools.on_node_state(self._core, node_id, state)

    def on_node_hello(self, node_id: str, boot: int) -> None:
        unsettled = pools.on_node_hello(self._core, node_id, boot)
        if unsettled:
            self._core.spawn(self._query, node_id, unsettled)

    async def _query(self, node_id: str, keys: list[str]) -> None:
        with contextlib.suppress(BackendError):  # the node's next hello asks again
            await self._core.executor.query_processes(node_id, keys)

    def on_node_lost(self, node_id: str) -> None:
        pools.on_node_lost(self._core, node_id)

    def on_process_started(
        self,
        node_id: str,
        key: str,
        start: float,
        container: TaskContainerExecutionInfo | None = None,
    ) -> None:
        processes.started(self._core, key, start, container)

    def on_process_exited(self, node_id: str, key: str, exit: ProcessExit) -> None:
        flight = self._core.in_flight.get(key)
        if flight is None or key in self._core.uploading:
            return
        if exit.container is not None:
            processes.record_container(self._core, key, exit.container)
        if exit.why != NOT_FOUND and outcomes.output_files(self._core, flight):
            # Output files are uploaded after the process exits, before the task completes.
            self._core.uploading.add(key)
            self._core.spawn(outcomes.upload_then_exit, self._core, key, flight, exit)
            return
        outcomes.on_exit(self._core, key, flight, exit.code, exit.start, exit.end, exit.why)

    def on_process_lost(self, node_id: str, key: str) -> None:
        flight = self._core.in_flight.get(key)
        if flight is not None:
            outcomes.on_lost(self._core, key, flight)

    def on_process_absent(self, node_id: str, key: str) -> None:
        if key in self._core.in_flight:
            self._core.spawn(processes.resend, self._core, key)

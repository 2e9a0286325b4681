"""`AzureBackend`: `BatchBackend` on real Azure Batch, through azure-batch's async client.

Every SDK call goes through `AzureBackend._call`, which bounds it in time and translates SDK errors
at the boundary. Transient failures (429, 5xx, dropped connections) are retried inside the HTTP
pipeline by `BoundedRetryPolicy`, a bounded number of times.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

import anyio
from azure.batch import models
from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

from jobprep_release.backends.administration import PoolNodeCounts, SupportedImage
from jobprep_release.backends.azure.retry import BoundedRetryPolicy
from jobprep_release.backends.azure.sdk_errors import Redactor, translate
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
    check_id,
)
from jobprep_release.backends.errors import (
    AlreadyExists,
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    ServiceError,
    WaitTimeout,
)
from jobprep_release.backends.schema.requests import (
    job_create_options,
    job_replacement,
    job_spec,
    job_update_options,
    pool_create_options,
    pool_replace_options,
    pool_spec,
    pool_update_options,
    task_constraints,
    task_create_options,
    wire_value,
)
from jobprep_release.backends.schema.results import (
    auto_scale_run_view,
    job_view,
    node_view,
    pool_node_counts_view,
    pool_view,
    prep_release_view,
    supported_image_view,
    task_counts_view,
    task_view,
)

MAX_TASKS_PER_REQUEST = 100
TASK_SELECT = ["id", "state", "executionInfo", "nodeInfo"]
NODE_SELECT = [
    "id",
    "state",
    "runningTasksCount",
    "schedulingState",
    "isDedicated",
    "endpointConfiguration",
    "startTaskInfo",
    "lastBootTime",
]
JOB_SELECT = ["id", "poolInfo", "state", "previousState", "executionInfo"]
DEFAULT_TERMINATE_REASON = "UserTerminate"

# Pipeline defaults: a handful of retries with short exponential backoff, instead of azure-core's
# ten retries that can add up to minutes per call.
DEFAULT_PIPELINE: dict[str, Any] = {
    "retry_total": 5,
    "retry_status": 5,
    "retry_backoff_factor": 0.5,
    "retry_backoff_max": 20,
}

Credential = AzureNamedKeyCredential | AsyncTokenCredential


def _check_key(credential: Credential) -> None:
    """A shared key must be base64: the SDK would otherwise fail while signing, later."""
    if not isinstance(credential, AzureNamedKeyCredential):
        return
    try:
        base64.b64decode(credential.named_key.key.encode(), validate=True)
    except (binascii.Error, ValueError):
        raise AuthenticationFailed(
            f"the access key for Batch account {credential.named_key.name!r} is not valid base64",
            hint="copy a key from the Batch account's Keys page into AZURE_BATCH_ACCESS_KEY",
        ) from None


class AzureBackend:
    """The sample's Batch operations on an Azure Batch account."""

    name = "azure"
    poll_interval = 10.0

    def __init__(
        self,
        endpoint: str,
        credential: Credential,
        *,
        owns_credential: bool = False,
        call_timeout: float = 120.0,
        add_tasks_timeout: float = 300.0,
        lro_timeout: float = 1800.0,
        lro_poll_interval: int = 5,
        poll_interval: float | None = None,
        **pipeline: Any,
    ) -> None:
        """`pipeline` goes to `BatchClient` (``transport``, ``retry_total``, ...).

        `owns_credential`: close the credential on exit (one this package created).
        `call_timeout` bounds each call; `add_tasks_timeout` the whole of `add_tasks`;
        `lro_timeout` the waits of `delete_pool` and `delete_job`. `poll_interval` overrides
        the app's 10 s between polls (for a local stand-in of the service).
        """
        _check_key(credential)
        if poll_interval is not None:
            self.poll_interval = poll_interval
        self.endpoint = endpoint.rstrip("/")
        self._credential = credential
        self._owns_credential = owns_credential
        self._call_timeout = call_timeout
        self._add_tasks_timeout = add_tasks_timeout
        self._lro_timeout = lro_timeout
        self._lro_poll_interval = lro_poll_interval
        secret = credential.named_key.key if isinstance(credential, AzureNamedKeyCredential) else ""
        self._redact = Redactor((secret,))
        options = {**DEFAULT_PIPELINE, **pipeline}
        retry_keys = [key for key in options if key.startswith("retry_")]
        retry = {key: options.pop(key) for key in retry_keys}
        options.setdefault("retry_policy", BoundedRetryPolicy(**retry))
        self._client = BatchClient(self.endpoint, credential, **options)

    def __repr__(self) -> str:
        return f"AzureBackend(endpoint={self.endpoint!r})"

    async def __aenter__(self) -> AzureBackend:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self._client.close()
        finally:
            if self._owns_credential and not isinstance(self._credential, AzureNamedKeyCredential):
                await self._credential.close()

    async def wait_for_change(self, at_most: float) -> None:
        """Sleep `at_most` seconds: the Batch service pushes no change to its clients (every
        wait polls it; `BatchBackend.wait_for_change`)."""
        await anyio.sleep(at_most)

    @asynccontextmanager
    async def _call(self, action: str, *, limit: float | None = None) -> AsyncIterator[None]:
        """Bound the enclosed SDK work in time (`limit` seconds) and translate its errors."""
        limit = limit if limit is not None else self._call_timeout
        try:
            with anyio.fail_after(limit):
                yield
        except TimeoutError as exc:
            raise ServiceError(
                f"{action}: the Batch service at {self.endpoint} did not finish within {limit:g} s"
            ) from exc
        except AzureError as exc:
            raise translate(
                exc,
                action=action,
                endpoint=self.endpoint,
                redact=self._redact,
            ) from exc

    async def _wait_for(self, poller: Any, action: str) -> None:
        """Wait for an SDK poller, which reports failure by status rather than raising."""
        try:
            with anyio.fail_after(self._lro_timeout):
                await poller.result()
        except TimeoutError as exc:
            raise WaitTimeout(f"{action}: not done after {self._lro_timeout:g} s") from exc
        status = str(poller.status())
        if status.lower() != "succeeded":
            raise ServiceError(
                f"{action}: the operation ended with status {status}", code="OperationFailed"
            )

    # --- pools -------------------------------------------------------------------------------

    async def create_pool(self, spec: PoolSpec) -> None:
        options = pool_create_options(spec)
        async with self._call(f"create pool {spec.id}"):
            await self._client.create_pool(options)

    async def get_pool(self, pool_id: str) -> Pool:
        async with self._call(f"get pool {pool_id}"):
            pool = await self._client.get_pool(pool_id)
        return pool_view(pool)

    async def get_pool_spec(self, pool_id: str) -> PoolSpec:
        async with self._call(f"get pool {pool_id}"):
            pool = await self._client.get_pool(pool_id)
        return pool_spec(pool)

    async def update_pool(self, pool_id: str, update: PoolUpdate) -> None:
        options = pool_update_options(update)
        async with self._call(f"update pool {pool_id}"):
            await self._client.update_pool(pool_id, options)

    async def replace_pool_properties(
        self, pool_id: str, start_task: StartTaskSpec | None, metadata: Mapping[str, str]
    ) -> None:
        options = pool_replace_options(start_task, metadata)
        async with self._call(f"replace the properties of pool {pool_id}"):
            await self._client.replace_pool_properties(pool_id, options)

    async def resize_pool(self, pool_id: str, target_dedicated_nodes: int) -> None:
        options = models.BatchPoolResizeOptions(target_dedicated_nodes=target_dedicated_nodes)
        async with self._call(f"resize pool {pool_id}"):
            # Only the request: the interface starts a resize and does not wait for its end.
            await self._client.begin_resize_pool(
                pool_id, options, polling_interval=self._lro_poll_interval
            )

    async def enable_auto_scale(
        self, pool_id: str, formula: str | None, interval: timedelta | None = None
    ) -> None:
        options = models.BatchPoolEnableAutoScaleOptions(
            auto_scale_formula=formula, auto_scale_evaluation_interval=interval
        )
        async with self._call(f"enable autoscale on pool {pool_id}"):
            await self._client.enable_pool_auto_scale(pool_id, options)

    async def evaluate_auto_scale(self, pool_id: str, formula: str) -> AutoScaleRun:
        options = models.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=formula)
        async with self._call(f"evaluate autoscale on pool {pool_id}"):
            run = await self._client.evaluate_pool_auto_scale(pool_id, options)
        view = auto_scale_run_view(run)
        assert view is not None
        return view

    async def disable_auto_scale(self, pool_id: str) -> None:
        async with self._call(f"disable autoscale on pool {pool_id}"):
            await self._client.disable_pool_auto_scale(pool_id)

    async def delete_pool(self, pool_id: str, *, wait: bool = True) -> None:
        action = f"delete pool {pool_id}"
        async with self._call(action):
            poller = await self._client.begin_delete_pool(
                pool_id, polling_interval=self._lro_poll_interval
            )
        if wait:
            await self._wait_for(poller, action)

    async def list_nodes(self, pool_id: str) -> list[ComputeNode]:
        async with self._call(f"list nodes of pool {pool_id}"):
            nodes = [node async for node in self._client.list_nodes(pool_id, select=NODE_SELECT)]
        return [node_view(node) for node in nodes]

    # --- jobs --------------------------------------------------------------------------------

    async def find_job(self, job_id: str) -> Job | None:
        # The id goes into an OData filter: only a valid id may, so no quote can break out.
        check_id("job", job_id)
        async with self._call(f"look for job {job_id}"):
            jobs = [
                job
                async for job in self._client.list_jobs(
                    filter=f"id eq '{job_id}'", select=JOB_SELECT
                )
            ]
        return job_view(jobs[0]) if jobs else None

    async def create_job(self, spec: JobSpec) -> None:
        options = job_create_options(spec)
        async with self._call(f"create job {spec.id}"):
            await self._client.create_job(options)

    async def get_job(self, job_id: str) -> Job:
        async with self._call(f"get job {job_id}"):
            job = await self._client.get_job(job_id, select=JOB_SELECT)
        return job_view(job)

    async def get_job_spec(self, job_id: str) -> JobSpec:
        async with self._call(f"get job {job_id}"):
            job = await self._client.get_job(job_id)
        return job_spec(job)

    async def terminate_job(self, job_id: str, reason: str | None = None) -> None:
        options = models._models.BatchJobTerminateOptions(  # not re-exported in 15.1.0
            termination_reason=reason or DEFAULT_TERMINATE_REASON
        )
        async with self._call(f"terminate job {job_id}"):
            # Only the request: the caller polls `get_job` until the job is completed.
            await self._client.begin_terminate_job(
                job_id, options, polling_interval=self._lro_poll_interval
            )

    async def delete_job(self, job_id: str, *, wait: bool = True) -> None:
        action = f"delete job {job_id}"
        async with self._call(action):
            poller = await self._client.begin_delete_job(
                job_id, polling_interval=self._lro_poll_interval
            )
        if wait:
            await self._wait_for(poller, action)

    async def update_job(self, job_id: str, update: JobUpdate) -> None:
        async with self._call(f"update job {job_id}"):
            await self._client.update_job(job_id, job_update_options(update))

    async def replace_job(self, job_id: str, update: JobUpdate) -> None:
        pool_id = update.pool_id or (await self.get_job(job_id)).pool_id
        async with self._call(f"replace job {job_id}"):
            await self._client.replace_job(job_id, job_replacement(update, pool_id))

    async def disable_job(self, job_id: str, option: DisableJobOption) -> None:
        options = models.BatchJobDisableOptions(disable_tasks=option.value)
        async with self._call(f"disable job {job_id}"):
            # Only the request: the caller polls `get_job` for ``disabled``.
            await self._client.begin_disable_job(
                job_id, options, polling_interval=self._lro_poll_interval
            )

    async def enable_job(self, job_id: str) -> None:
        async with self._call(f"enable job {job_id}"):
            await self._client.begin_enable_job(job_id, polling_interval=self._lro_poll_interval)

    async def list_prep_release_status(self, job_id: str) -> list[PrepReleaseStatus]:
        async with self._call(f"list preparation and release status of job {job_id}"):
            entries = [
                entry
                async for entry in self._client.list_job_preparation_and_release_task_status(job_id)
            ]
        return [prep_release_view(entry) for entry in entries]

    # --- tasks -------------------------------------------------------------------------------

    async def add_tasks(self, job_id: str, tasks: Sequence[TaskSpec]) -> None:
        _check_task_ids(tasks)
        action = f"add tasks to job {job_id}"
        options = [task_create_options(task) for task in tasks]
        async with self._call(action, limit=self._add_tasks_timeout):
            for start in range(0, len(options), MAX_TASKS_PER_REQUEST):
                await self._add_chunk(job_id, options[start : start + MAX_TASKS_PER_REQUEST])

    async def _add_chunk(self, job_id: str, chunk: list[models.BatchTaskCreateOptions]) -> None:
        """One addtaskcollection request; tasks refused with a server error are sent again.

        The pipeline already retries whole requests that fail with 5xx; this loop covers the
        per-task ``servererror`` results of a request that succeeded, and is bounded by the
        caller's timeout and `attempts`.
        """
        pending = chunk
        attempts = 5
        for attempt in range(attempts):
            result = await self._client.create_task_collection(
                job_id, models.BatchTaskGroup(task_values=pending)
            )
            retry_ids = _raise_task_errors(job_id, result.result_values or [])
            pending = [task for task in pending if task.id in retry_ids]
            if not pending:
                return
            await anyio.sleep(min(0.2 * 2.0**attempt, 5.0))
        raise ServiceError(
            f"add tasks to job {job_id}: the service kept failing to add "
            f"{', '.join(task.id for task in pending)}",
            code="ServerError",
        )

    async def get_task_counts(self, job_id: str) -> TaskCounts:
        async with self._call(f"count tasks of job {job_id}"):
            result = await self._client.get_job_task_counts(job_id)
        return task_counts_view(result)

    async def list_tasks(self, job_id: str) -> list[Task]:
        async with self._call(f"list tasks of job {job_id}"):
            tasks = [task async for task in self._client.list_tasks(job_id, select=TASK_SELECT)]
        return [task_view(task) for task in tasks]

    async def get_task(self, job_id: str, task_id: str) -> Task:
        async with self._call(f"get task {task_id} of job {job_id}"):
            task = await self._client.get_task(job_id, task_id, select=TASK_SELECT)
        return task_view(task)

    async def update_task(self, job_id: str, task_id: str, constraints: TaskConstraints) -> None:
        task = models.BatchTask(constraints=task_constraints(constraints))
        async with self._call(f"update task {task_id} of job {job_id}"):
            await self._client.replace_task(job_id, task_id, task)

    async def reactivate_task(self, job_id: str, task_id: str) -> None:
        async with self._call(f"reactivate task {task_id} of job {job_id}"):
            await self._client.reactivate_task(job_id, task_id)

    async def delete_task(self, job_id: str, task_id: str) -> None:
        async with self._call(f"delete task {task_id} of job {job_id}"):
            await self._client.delete_task(job_id, task_id)

    async def delete_task_file(
        self, job_id: str, task_id: str, path: str, *, recursive: bool = False
    ) -> None:
        relative = _node_relative_path(path)
        async with self._call(f"delete {relative} of task {task_id} of job {job_id}"):
            await self._client.delete_task_file(
                job_id, task_id, relative, recursive=recursive or None
            )

    async def terminate_task(self, job_id: str, task_id: str) -> None:
        async with self._call(f"terminate task {task_id} of job {job_id}"):
            await self._client.terminate_task(job_id, task_id)

    # --- nodes -------------------------------------------------------------------------------

    async def reboot_node(self, pool_id: str, node_id: str) -> None:
        # The options body is required by the 15.1.0 client, as for terminate.
        options = models._models.BatchNodeRebootOptions(node_reboot_kind="requeue")
        async with self._call(f"reboot node {node_id}"):
            # Only the request: the caller watches the node's state.
            await self._client.begin_reboot_node(
                pool_id, node_id, options, polling_interval=self._lro_poll_interval
            )

    async def reimage_node(self, pool_id: str, node_id: str) -> None:
        options = models._models.BatchNodeReimageOptions(node_reimage_option="requeue")
        async with self._call(f"reimage node {node_id}"):
            await self._client.begin_reimage_node(
                pool_id, node_id, options, polling_interval=self._lro_poll_interval
            )

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
        options = models.BatchPoolResizeOptions(
            target_dedicated_nodes=target_dedicated_nodes,
            target_low_priority_nodes=target_low_priority_nodes,
            resize_timeout=resize_timeout,
            node_deallocation_option=deallocation.value,
        )
        async with self._call(f"resize pool {pool_id}"):
            await self._client.begin_resize_pool(
                pool_id, options, polling_interval=self._lro_poll_interval
            )

    async def stop_pool_resize(self, pool_id: str) -> None:
        async with self._call(f"stop resizing pool {pool_id}"):
            await self._client.begin_stop_pool_resize(
                pool_id, polling_interval=self._lro_poll_interval
            )

    async def remove_nodes(
        self,
        pool_id: str,
        node_ids: Sequence[str],
        *,
        resize_timeout: timedelta | None = None,
        deallocation: NodeDeallocationOption = NodeDeallocationOption.REQUEUE,
    ) -> None:
        options = models.BatchNodeRemoveOptions(
            node_ids=list(node_ids),
            resize_timeout=resize_timeout,
            node_deallocation_option=deallocation.value,
        )
        async with self._call(f"remove nodes from pool {pool_id}"):
            await self._client.begin_remove_nodes(
                pool_id, options, polling_interval=self._lro_poll_interval
            )

    async def disable_node_scheduling(
        self,
        pool_id: str,
        node_id: str,
        option: DisableSchedulingOption = DisableSchedulingOption.REQUEUE,
    ) -> None:
        options = models.BatchNodeDisableSchedulingOptions(
            node_disable_scheduling_option=option.value
        )
        async with self._call(f"disable scheduling on node {node_id}"):
            await self._client.disable_node_scheduling(pool_id, node_id, options)

    async def enable_node_scheduling(self, pool_id: str, node_id: str) -> None:
        async with self._call(f"enable scheduling on node {node_id}"):
            await self._client.enable_node_scheduling(pool_id, node_id)

    async def get_node(self, pool_id: str, node_id: str) -> ComputeNode:
        async with self._call(f"get node {node_id}"):
            node = await self._client.get_node(pool_id, node_id)
        return node_view(node)

    async def list_pool_node_counts(self) -> list[PoolNodeCounts]:
        async with self._call("list pool node counts"):
            entries = [entry async for entry in self._client.list_pool_node_counts()]
        return [pool_node_counts_view(entry) for entry in entries]

    async def list_supported_images(self) -> list[SupportedImage]:
        async with self._call("list supported images"):
            images = [image async for image in self._client.list_supported_images()]
        return [supported_image_view(image) for image in images]

    # --- files -------------------------------------------------------------------------------

    async def delete_node_file(
        self, pool_id: str, node_id: str, path: str, *, recursive: bool = False
    ) -> None:
        relative = _node_relative_path(path)
        async with self._call(f"delete {relative} on node {node_id}"):
            await self._client.delete_node_file(
                pool_id, node_id, relative, recursive=recursive or None
            )

    async def upload_node_logs(
        self, pool_id: str, node_id: str, request: NodeLogsRequest
    ) -> NodeLogsUpload:
        options = models.UploadBatchServiceLogsOptions(
            container_url=request.container_url,
            start_time=request.start_time,
            end_time=request.end_time,
        )
        async with self._call(f"upload the Batch service logs of node {node_id}"):
            result = await self._client.upload_node_logs(pool_id, node_id, options)
        return NodeLogsUpload(
            virtual_directory_name=result.virtual_directory_name,
            number_of_files_uploaded=result.number_of_files_uploaded,
        )

    async def read_node_file(self, pool_id: str, node_id: str, path: str) -> bytes:
        relative = _node_relative_path(path)
        action = f"read {relative} on node {node_id}"
        async with self._call(action):
            try:
                stream = await self._client.download_node_file(pool_id, node_id, relative)
                return b"".join([chunk async for chunk in stream])
            except ResourceNotFoundError as exc:
                # Downloads are streamed, so the SDK did not parse the error body: do it here
                # to tell a missing file from a missing node or pool.
                code, message = await _streamed_error(exc)
                raise NotFound(
                    self._redact(f"{action}: {message or 'no such file'}"),
                    code=code or "FileNotFound",
                ) from exc


def _node_relative_path(path: str) -> str:
    """`path` when it stays inside the node's root, else `InvalidRequest` before any request."""
    posix = PurePosixPath(path.replace("\\", "/"))
    if not path or posix.is_absolute() or ".." in posix.parts or posix == PurePosixPath("."):
        raise InvalidRequest(
            f"invalid node file path {path!r}: give a path relative to the node's task root, "
            "without '..' (e.g. shared/job_prep_and_release.txt)",
            code="InvalidPath",
        )
    return posix.as_posix()


def _check_task_ids(tasks: Sequence[TaskSpec]) -> None:
    seen: set[str] = set()
    for task in tasks:
        check_id("task", task.id)
        folded = task.id.lower()  # Batch ids are unique without regard to case
        if folded in seen:
            raise InvalidRequest(
                f"task id {task.id!r} appears more than once in the request",
                code="DuplicateTaskId",
            )
        seen.add(folded)


def _raise_task_errors(job_id: str, results: Sequence[models.BatchTaskCreateResult]) -> set[str]:
    """Raise for the first task the service refused; return ids refused by a server error."""
    retry_ids: set[str] = set()
    for result in results:
        status = wire_value(result.status)
        if status == "success":
            continue
        if status == "servererror":
            retry_ids.add(result.task_id)
            continue
        code = result.error.code if result.error else None
        message = (
            str(result.error.message).splitlines()[0]
            if result.error and result.error.message
            else "refused by the service"
        )
        text = f"add task {result.task_id} to job {job_id}: {message}"
        if code == "TaskExists":
            raise AlreadyExists(text, code=code)
        raise InvalidRequest(text, code=code)
    return retry_ids


async def _streamed_error(exc: HttpResponseError) -> tuple[str | None, str | None]:
    """The service's error code and message from a streamed error response, when readable."""
    if exc.error is not None:
        return exc.error.code, exc.error.message
    if exc.response is None:
        return None, None
    try:
        document = json.loads(await exc.response.read())  # type: ignore[attr-defined]
    except (AzureError, ValueError, TypeError):
        return None, None
    if not isinstance(document, dict):
        return None, None
    message = document.get("message")
    if isinstance(message, dict):
        message = message.get("value")
    code = document.get("code")
    return (
        code if isinstance(code, str) else None,
        message.splitlines()[0] if isinstance(message, str) and message else None,
    )

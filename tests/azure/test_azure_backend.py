"""Every `AzureBackend` method through the real SDK and real HTTP, against the project's Batch
endpoint over the fake executor (`tests.azure.emulator`): no Docker engine, time moved by hand."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from jobprep_release.backends.azure import AzureBackend
from jobprep_release.backends.base import (
    AllocationState,
    AutoUserScope,
    BatchBackend,
    ElevationLevel,
    ExecutionResult,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobSpec,
    JobState,
    NodeFillType,
    NodeState,
    OnAllTasksComplete,
    PoolSpec,
    PrepReleaseTaskState,
    ResourceFile,
    TaskConstraints,
    TaskSpec,
    TaskState,
    UserIdentity,
)
from jobprep_release.backends.errors import (
    AlreadyExists,
    Conflict,
    InvalidRequest,
    NotFound,
)
from jobprep_release.backends.schema.shapes import parse_duration
from tests.azure.emulator import Emulator
from tests.azure.support import make_backend

POOL = "JobPrepReleaseSamplePool"
JOB = "JobPrepReleaseSampleJob"
SHARED_FILE = "shared/job_prep_and_release.txt"
PREP = (
    '/bin/bash -c \'echo "$AZ_BATCH_NODE_ID tasks:" > '
    '"$AZ_BATCH_NODE_SHARED_DIR/job_prep_and_release.txt"\''
)
TASK = (
    '/bin/bash -c \'echo "  $AZ_BATCH_TASK_ID" >> '
    '"$AZ_BATCH_NODE_SHARED_DIR/job_prep_and_release.txt"\''
)
RELEASE = "/bin/bash -c 'rm \"$AZ_BATCH_NODE_SHARED_DIR/job_prep_and_release.txt\"'"


def sample_job(job_id: str = JOB, pool_id: str = POOL) -> JobSpec:
    return JobSpec(
        id=job_id,
        pool_id=pool_id,
        preparation=JobPreparationTaskSpec(command_line=PREP),
        release=JobReleaseTaskSpec(command_line=RELEASE),
    )


def sample_tasks(count: int) -> list[TaskSpec]:
    return [TaskSpec(id=f"task{n:03d}", command_line=TASK) for n in range(1, count + 1)]


def with_durations(document: Any) -> Any:
    """`document` with its ISO 8601 durations as timedeltas, to compare them by value."""
    if isinstance(document, dict):
        return {
            name: parse_duration(value)
            if name in ("maxWallClockTime", "retentionTime")
            else with_durations(value)
            for name, value in document.items()
        }
    if isinstance(document, list):
        return [with_durations(item) for item in document]
    return document


async def run_until_tasks_complete(
    emulator: Emulator, backend: AzureBackend, job_id: str, count: int
) -> None:
    """Poll as the sample does, moving the fake clock a second between polls."""
    for _ in range(50):
        counts = await backend.get_task_counts(job_id)
        if counts.completed == count:
            return
        await emulator.advance(1)
    pytest.fail("tasks did not complete")


async def test_backend_satisfies_the_interface(backend: AzureBackend) -> None:
    assert isinstance(backend, BatchBackend)
    assert backend.name == "azure"
    assert backend.poll_interval == 10.0


# --- pools ------------------------------------------------------------------------------------


async def test_create_pool_sends_a_linux_virtual_machine_pool(
    emulator: Emulator, backend: AzureBackend
) -> None:
    spec = PoolSpec(
        id=POOL,
        vm_size="standard_d2s_v3",
        target_dedicated_nodes=3,
        target_low_priority_nodes=1,
        task_slots_per_node=2,
        node_fill_type=NodeFillType.SPREAD,
    )
    await backend.create_pool(spec)
    pool = await backend.get_pool(POOL)
    assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (3, 1)

    [request] = emulator.calls("POST", "/pools")
    assert request.body == {
        "id": POOL,
        "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": {
            "imageReference": {
                "publisher": "canonical",
                "offer": "ubuntu-24_04-lts",
                "sku": "server",
                "version": "latest",
            },
            "nodeAgentSKUId": "batch.node.ubuntu 24.04",
        },
        "targetDedicatedNodes": 3,
        "targetLowPriorityNodes": 1,
        "taskSlotsPerNode": 2,
        "taskSchedulingPolicy": {"nodeFillType": "spread"},
    }


async def test_create_pool_uses_the_image_urn_and_agent_given(
    emulator: Emulator, backend: AzureBackend
) -> None:
    spec = PoolSpec(
        id=POOL,
        image="microsoft-dsvm:ubuntu-hpc:2204:22.04.2024",
        node_agent_sku_id="batch.node.ubuntu 22.04",
    )
    await backend.create_pool(spec)

    [request] = emulator.calls("POST", "/pools")
    configuration = request.body["virtualMachineConfiguration"]
    assert configuration["imageReference"] == {
        "publisher": "microsoft-dsvm",
        "offer": "ubuntu-hpc",
        "sku": "2204",
        "version": "22.04.2024",
    }
    assert configuration["nodeAgentSKUId"] == "batch.node.ubuntu 22.04"


@pytest.mark.parametrize("image", ["ubuntu", "a:b:c", "a::c:d", "a:b:c:d:e"])
async def test_create_pool_refuses_a_malformed_image_before_sending(
    emulator: Emulator, backend: AzureBackend, image: str
) -> None:
    with pytest.raises(InvalidRequest, match="publisher:offer:sku:version"):
        await backend.create_pool(PoolSpec(id=POOL, image=image))
    assert emulator.calls("POST", "/pools") == []


async def test_create_pool_twice_raises_already_exists(backend: AzureBackend) -> None:
    await backend.create_pool(PoolSpec(id=POOL))
    with pytest.raises(AlreadyExists) as caught:
        await backend.create_pool(PoolSpec(id=POOL))
    assert caught.value.code == "PoolExists"


async def test_get_pool_reports_the_pool(emulator: Emulator, backend: AzureBackend) -> None:
    await backend.create_pool(PoolSpec(id=POOL, vm_size="standard_d1_v2", task_slots_per_node=1))
    await emulator.settle()

    pool = await backend.get_pool(POOL)

    assert pool.id == POOL
    assert pool.vm_size == "standard_d1_v2"
    assert pool.target_dedicated_nodes == 2
    assert pool.current_dedicated_nodes == 2
    assert pool.allocation_state is AllocationState.STEADY
    assert pool.node_fill_type is NodeFillType.PACK
    assert pool.task_slots_per_node == 1


async def test_get_missing_pool_raises_not_found(backend: AzureBackend) -> None:
    with pytest.raises(NotFound) as caught:
        await backend.get_pool("nosuchpool")
    assert caught.value.code == "PoolNotFound"


async def test_resize_pool_requests_the_new_size(emulator: Emulator, backend: AzureBackend) -> None:
    await backend.create_pool(PoolSpec(id=POOL))
    await emulator.settle()  # let the first allocation settle

    await backend.resize_pool(POOL, 3)

    [request] = emulator.calls("POST", f"/pools/{POOL}/resize")
    assert request.body == {"targetDedicatedNodes": 3}
    assert (await backend.get_pool(POOL)).current_dedicated_nodes == 3


async def test_resize_pool_while_resizing_raises_conflict(
    emulator: Emulator, backend: AzureBackend
) -> None:
    # The service refuses a resize while the pool resizes with 409 (azure-batch's resize_pool
    # docstring). The endpoint's pools on the fake executor resize in no time, so the refusal
    # is injected: what is tested is the backend's answer to it.
    await backend.create_pool(PoolSpec(id=POOL))
    emulator.inject("POST", f"/pools/{POOL}/resize", 409, code="PoolNotSteady")
    with pytest.raises(Conflict) as caught:
        await backend.resize_pool(POOL, 3)
    assert caught.value.code == "PoolNotSteady"


async def test_delete_pool_waits_until_the_pool_is_gone(
    emulator: Emulator, backend: AzureBackend
) -> None:
    await backend.create_pool(PoolSpec(id=POOL))

    await backend.delete_pool(POOL)

    assert await emulator.service.list_pools() == []
    assert emulator.calls("GET", f"/pools/{POOL}"), "the deletion was not polled"
    with pytest.raises(NotFound):
        await backend.get_pool(POOL)


async def test_delete_missing_pool_raises_not_found(backend: AzureBackend) -> None:
    with pytest.raises(NotFound) as caught:
        await backend.delete_pool("nosuchpool")
    assert caught.value.code == "PoolNotFound"


async def test_list_nodes_follows_their_start(emulator: Emulator, backend: AzureBackend) -> None:
    emulator.fake.hold_hello = True  # the nodes' agents do not answer yet
    await backend.create_pool(PoolSpec(id=POOL, target_dedicated_nodes=2))
    await emulator.settle()

    first = await backend.list_nodes(POOL)
    emulator.fake.release_hello()
    await emulator.settle()
    second = await backend.list_nodes(POOL)

    assert [node.state for node in first] == [NodeState.STARTING] * 2
    assert [node.state for node in second] == [NodeState.IDLE] * 2
    assert [node.id for node in first] == [node.id for node in second]
    assert len({node.id for node in first}) == 2
    assert sorted(node.id for node in first) == sorted(emulator.fake.nodes)


# --- jobs -------------------------------------------------------------------------------------


async def test_find_job_filters_by_id(emulator: Emulator, backend: AzureBackend) -> None:
    assert await backend.find_job(JOB) is None

    await backend.create_pool(PoolSpec(id=POOL))
    await backend.create_job(sample_job())
    await backend.create_job(sample_job("OtherJob"))
    found = await backend.find_job(JOB)

    assert found is not None
    assert (found.id, found.pool_id, found.state) == (JOB, POOL, JobState.ACTIVE)
    assert emulator.calls("GET", "/jobs")[-1].query["$filter"] == f"id eq '{JOB}'"


async def test_find_job_refuses_an_id_that_could_break_the_filter(
    emulator: Emulator, backend: AzureBackend
) -> None:
    with pytest.raises(InvalidRequest):
        await backend.find_job("x' or id ne 'y")
    assert emulator.calls("GET", "/jobs") == []


async def test_create_job_sends_every_field_of_the_specs(
    emulator: Emulator, backend: AzureBackend
) -> None:
    files = (
        ResourceFile(http_url="https://example.test/a.sh", file_path="a.sh", file_mode="0755"),
    )
    spec = JobSpec(
        id=JOB,
        pool_id=POOL,
        preparation=JobPreparationTaskSpec(
            command_line=PREP,
            id="prep",
            wait_for_success=False,
            rerun_on_node_reboot_after_success=False,
            constraints=TaskConstraints(
                max_wall_clock_time=timedelta(hours=1),
                retention_time=timedelta(days=1),
                max_task_retry_count=2,
            ),
            environment={"PREP_VAR": "1"},
            resource_files=files,
            user_identity=UserIdentity(ElevationLevel.ADMIN, AutoUserScope.TASK),
        ),
        release=JobReleaseTaskSpec(
            command_line=RELEASE,
            id="release",
            max_wall_clock_time=timedelta(minutes=10),
            retention_time=timedelta(hours=2),
            environment={"RELEASE_VAR": "2"},
        ),
        common_environment={"COMMON": "yes"},
        on_all_tasks_complete=OnAllTasksComplete.TERMINATE_JOB,
        max_task_retry_count=3,
    )

    await backend.create_job(spec)

    [request] = emulator.calls("POST", "/jobs")
    assert with_durations(request.body) == {
        "id": JOB,
        "poolInfo": {"poolId": POOL},
        "jobPreparationTask": {
            "id": "prep",
            "commandLine": PREP,
            "resourceFiles": [
                {"httpUrl": "https://example.test/a.sh", "filePath": "a.sh", "fileMode": "0755"}
            ],
            "environmentSettings": [{"name": "PREP_VAR", "value": "1"}],
            "constraints": {
                "maxWallClockTime": timedelta(hours=1),
                "retentionTime": timedelta(days=1),
                "maxTaskRetryCount": 2,
            },
            "waitForSuccess": False,
            "userIdentity": {"autoUser": {"scope": "task", "elevationLevel": "admin"}},
            "rerunOnNodeRebootAfterSuccess": False,
        },
        "jobReleaseTask": {
            "id": "release",
            "commandLine": RELEASE,
            "environmentSettings": [{"name": "RELEASE_VAR", "value": "2"}],
            "maxWallClockTime": timedelta(minutes=10),
            "retentionTime": timedelta(hours=2),
            "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
        },
        "commonEnvironmentSettings": [{"name": "COMMON", "value": "yes"}],
        "onAllTasksComplete": "terminatejob",
        "constraints": {"maxTaskRetryCount": 3},
    }


async def test_create_job_twice_raises_already_exists(backend: AzureBackend) -> None:
    await backend.create_job(sample_job())
    with pytest.raises(AlreadyExists) as caught:
        await backend.create_job(sample_job())
    assert caught.value.code == "JobExists"


async def test_create_job_the_service_rejects_raises_invalid_request(
    backend: AzureBackend,
) -> None:
    spec = JobSpec(
        id=JOB,
        pool_id=POOL,
        preparation=JobPreparationTaskSpec(command_line=PREP),
        release=JobReleaseTaskSpec(command_line=RELEASE, max_wall_clock_time=timedelta(hours=1)),
    )
    with pytest.raises(InvalidRequest) as caught:
        await backend.create_job(spec)
    assert caught.value.code == "InvalidPropertyValue"


async def test_get_missing_job_raises_not_found(backend: AzureBackend) -> None:
    with pytest.raises(NotFound) as caught:
        await backend.get_job("nosuchjob")
    assert caught.value.code == "JobNotFound"


# --- tasks ------------------------------------------------------------------------------------


async def test_add_tasks_sends_at_most_100_per_request(
    emulator: Emulator, backend: AzureBackend
) -> None:
    await backend.create_job(sample_job())

    await backend.add_tasks(JOB, sample_tasks(250))

    requests = emulator.calls("POST", f"/jobs/{JOB}/addtaskcollection")
    assert [len(request.body["value"]) for request in requests] == [100, 100, 50]
    assert len(await emulator.service.list_tasks(JOB)) == 250


async def test_add_tasks_sends_task_fields(emulator: Emulator, backend: AzureBackend) -> None:
    await backend.create_job(sample_job())
    task = TaskSpec(
        id="task001",
        command_line=TASK,
        constraints=TaskConstraints(max_wall_clock_time=timedelta(minutes=5)),
        environment={"A": "b"},
        required_slots=2,
    )

    await backend.add_tasks(JOB, [task])

    [request] = emulator.calls("POST", f"/jobs/{JOB}/addtaskcollection")
    assert with_durations(request.body) == {
        "value": [
            {
                "id": "task001",
                "commandLine": TASK,
                "environmentSettings": [{"name": "A", "value": "b"}],
                "constraints": {"maxWallClockTime": timedelta(minutes=5)},
                "requiredSlots": 2,
                "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
            }
        ]
    }


async def test_add_tasks_resends_tasks_the_service_failed_to_add(
    emulator: Emulator, backend: AzureBackend
) -> None:
    await backend.create_job(sample_job())
    busy = {"code": "ServerBusy", "message": {"lang": "en-US", "value": "The server is busy."}}
    # A canned answer: the service added task001 and task003 (as far as the client can tell)
    # and failed task002 with a server error, which the backend must send again, alone.
    answer = {
        "value": [
            {"taskId": "task001", "status": "success"},
            {"taskId": "task002", "status": "servererror", "error": busy},
            {"taskId": "task003", "status": "success"},
        ]
    }
    emulator.inject("POST", f"/jobs/{JOB}/addtaskcollection", 200, body=answer)

    await backend.add_tasks(JOB, sample_tasks(3))

    requests = emulator.calls("POST", f"/jobs/{JOB}/addtaskcollection")
    assert [[t["id"] for t in r.body["value"]] for r in requests] == [
        ["task001", "task002", "task003"],
        ["task002"],
    ]
    assert [task.id for task in await emulator.service.list_tasks(JOB)] == ["task002"]


async def test_add_existing_task_raises_already_exists(backend: AzureBackend) -> None:
    await backend.create_job(sample_job())
    await backend.add_tasks(JOB, sample_tasks(2))

    with pytest.raises(AlreadyExists) as caught:
        await backend.add_tasks(JOB, sample_tasks(3))
    assert caught.value.code == "TaskExists"


async def test_add_task_named_like_the_preparation_task_raises_invalid_request(
    backend: AzureBackend,
) -> None:
    await backend.create_job(sample_job())
    with pytest.raises(InvalidRequest) as caught:
        await backend.add_tasks(JOB, [TaskSpec(id="jobpreparation", command_line=TASK)])
    assert caught.value.code == "TaskIdSameAsJobPreparationTask"


async def test_add_tasks_with_a_duplicate_id_is_refused_before_sending(
    emulator: Emulator, backend: AzureBackend
) -> None:
    await backend.create_job(sample_job())
    tasks = [TaskSpec(id="task001", command_line=TASK), TaskSpec(id="TASK001", command_line=TASK)]
    with pytest.raises(InvalidRequest):
        await backend.add_tasks(JOB, tasks)
    assert emulator.calls("POST", f"/jobs/{JOB}/addtaskcollection") == []


async def test_add_tasks_to_missing_job_raises_not_found(backend: AzureBackend) -> None:
    with pytest.raises(NotFound) as caught:
        await backend.add_tasks("nosuchjob", sample_tasks(1))
    assert caught.value.code == "JobNotFound"


async def test_tasks_run_to_completion(emulator: Emulator, backend: AzureBackend) -> None:
    emulator.fake.hold_hello = True  # no node is ready before the counts are first read
    emulator.script.seconds = 1.0
    await backend.create_pool(PoolSpec(id=POOL))
    await backend.create_job(sample_job())
    await backend.add_tasks(JOB, sample_tasks(4))

    first = await backend.get_task_counts(JOB)
    assert first.active == 4
    emulator.fake.release_hello()
    await emulator.settle()
    running = await backend.get_task_counts(JOB)
    assert (running.active, running.running, running.completed) == (2, 2, 0)
    await run_until_tasks_complete(emulator, backend, JOB, 4)
    counts = await backend.get_task_counts(JOB)
    tasks = await backend.list_tasks(JOB)

    assert (counts.completed, counts.succeeded, counts.failed) == (4, 4, 0)
    assert [task.id for task in tasks] == [f"task{n:03d}" for n in range(1, 5)]
    node_ids = {node.id for node in await backend.list_nodes(POOL)}
    for task in tasks:
        assert task.state is TaskState.COMPLETED
        assert task.node_id in node_ids
        assert task.execution_info.exit_code == 0
        assert task.execution_info.result is ExecutionResult.SUCCESS
        assert task.execution_info.start_time is not None
    select = emulator.calls("GET", f"/jobs/{JOB}/tasks")[-1].query["$select"]
    assert set(select.split(",")) == {"id", "state", "executionInfo", "nodeInfo"}


async def test_list_tasks_follows_next_links(emulator: Emulator, backend: AzureBackend) -> None:
    # The service's pages hold at most 1,000 items (the backend asks for no smaller page).
    await backend.create_job(sample_job())
    await backend.add_tasks(JOB, sample_tasks(1005))

    tasks = await backend.list_tasks(JOB)

    assert [task.id for task in tasks] == [f"task{n:03d}" for n in range(1, 1006)]
    requests = emulator.calls("GET", f"/jobs/{JOB}/tasks")
    assert len(requests) == 2
    assert "$skiptoken" in requests[1].query


# --- node files, termination, prep/release status, deletion -----------------------------------


async def run_sample_tasks(
    emulator: Emulator, backend: AzureBackend, nodes: int, tasks: int
) -> None:
    await backend.create_pool(PoolSpec(id=POOL, target_dedicated_nodes=nodes))
    await emulator.settle()
    await backend.create_job(sample_job())
    await backend.add_tasks(JOB, sample_tasks(tasks))
    await run_until_tasks_complete(emulator, backend, JOB, tasks)


async def test_read_node_file_holds_the_tasks_that_ran_on_the_node(
    emulator: Emulator, backend: AzureBackend
) -> None:
    emulator.script.seconds = 1.0  # one task at a time per node: both nodes get tasks
    await run_sample_tasks(emulator, backend, nodes=2, tasks=8)
    started = emulator.task_starts(JOB)
    tasks = {task.id: task for task in await backend.list_tasks(JOB)}

    nodes = await backend.list_nodes(POOL)
    assert len(nodes) == 2
    for node in nodes:
        content = await backend.read_node_file(POOL, node.id, SHARED_FILE)
        ran_here = [start.task_id for start in started if start.node_id == node.id]
        assert ran_here, "8 tasks of 1 s on two 1-slot nodes: each node runs some"
        assert all(tasks[task_id].node_id == node.id for task_id in ran_here)
        expected = f"{node.id} tasks:\n" + "".join(f"  {task_id}\n" for task_id in ran_here)
        assert content.decode() == expected


async def test_node_that_ran_no_task_has_no_file(emulator: Emulator, backend: AzureBackend) -> None:
    await run_sample_tasks(emulator, backend, nodes=3, tasks=1)
    [used] = {start.node_id for start in emulator.task_starts(JOB)}
    idle = [node for node in await backend.list_nodes(POOL) if node.id != used]
    assert len(idle) == 2

    for node in idle:
        with pytest.raises(NotFound) as caught:
            await backend.read_node_file(POOL, node.id, SHARED_FILE)
        assert caught.value.code == "FileNotFound"
    assert await backend.read_node_file(POOL, used, SHARED_FILE)


async def test_read_file_of_missing_node_raises_not_found(backend: AzureBackend) -> None:
    await backend.create_pool(PoolSpec(id=POOL))
    with pytest.raises(NotFound) as caught:
        await backend.read_node_file(POOL, "tvmps_nosuchnode_d", SHARED_FILE)
    assert caught.value.code == "NodeNotFound"


@pytest.mark.parametrize("path", ["/etc/passwd", "../secret", "shared/../../x", "..\\x", "", "."])
async def test_read_node_file_refuses_paths_leaving_the_root(
    emulator: Emulator, backend: AzureBackend, path: str
) -> None:
    with pytest.raises(InvalidRequest):
        await backend.read_node_file(POOL, "node", path)
    assert emulator.requests == []


async def test_terminate_job_runs_release_then_completes(
    emulator: Emulator, backend: AzureBackend
) -> None:
    await run_sample_tasks(emulator, backend, nodes=2, tasks=4)
    emulator.script.seconds = 5.0  # the release tasks take 5 s

    await backend.terminate_job(JOB, "done here")

    [request] = emulator.calls("POST", f"/jobs/{JOB}/terminate")
    assert request.body == {"terminateReason": "done here"}
    await emulator.settle()
    assert (await backend.get_job(JOB)).state is JobState.TERMINATING
    await emulator.advance(5)
    job = await backend.get_job(JOB)
    assert job.state is JobState.COMPLETED
    assert job.terminate_reason == "done here"
    for node_id in {start.node_id for start in emulator.task_starts(JOB)}:
        with pytest.raises(NotFound):  # the release task removed it
            await backend.read_node_file(POOL, node_id, SHARED_FILE)


async def test_terminate_job_without_reason_says_user_terminate(
    emulator: Emulator, backend: AzureBackend
) -> None:
    await backend.create_job(sample_job())
    await backend.terminate_job(JOB)
    [request] = emulator.calls("POST", f"/jobs/{JOB}/terminate")
    assert request.body == {"terminateReason": "UserTerminate"}


async def test_terminate_completed_job_raises_conflict(backend: AzureBackend) -> None:
    await backend.create_job(sample_job())
    await backend.terminate_job(JOB)
    with pytest.raises(Conflict):
        await backend.terminate_job(JOB)


async def test_prep_release_status_per_node(emulator: Emulator, backend: AzureBackend) -> None:
    emulator.script.seconds = 1.0  # one task at a time per node: both nodes get tasks
    await run_sample_tasks(emulator, backend, nodes=2, tasks=4)
    before = await backend.list_prep_release_status(JOB)
    await backend.terminate_job(JOB)
    await emulator.advance(1)
    assert (await backend.get_job(JOB)).state is JobState.COMPLETED

    after = await backend.list_prep_release_status(JOB)

    node_ids = {start.node_id for start in emulator.task_starts(JOB)}
    assert len(node_ids) == 2
    assert sorted(entry.node_id for entry in after) == sorted(node_ids)
    assert all(entry.release is None for entry in before)
    for entry in after:
        assert entry.pool_id == POOL
        assert entry.preparation is not None and entry.release is not None
        assert entry.preparation.state is PrepReleaseTaskState.COMPLETED
        assert entry.preparation.execution_info.exit_code == 0
        assert entry.release.execution_info.exit_code == 0


async def test_prep_release_status_of_job_without_prep_raises_conflict(
    backend: AzureBackend,
) -> None:
    await backend.create_job(JobSpec(id=JOB, pool_id=POOL))
    with pytest.raises(Conflict) as caught:
        await backend.list_prep_release_status(JOB)
    assert caught.value.code == "JobPreparationTaskNotSpecified"


async def test_delete_job_waits_until_the_job_is_gone(
    emulator: Emulator, backend: AzureBackend
) -> None:
    await backend.create_job(sample_job())

    await backend.delete_job(JOB)

    assert await backend.find_job(JOB) is None
    assert emulator.calls("GET", f"/jobs/{JOB}"), "the deletion was not polled"


async def test_delete_missing_job_raises_not_found(backend: AzureBackend) -> None:
    with pytest.raises(NotFound) as caught:
        await backend.delete_job("nosuchjob")
    assert caught.value.code == "JobNotFound"


async def test_backend_can_be_opened_twice_in_sequence(emulator: Emulator) -> None:
    async with make_backend(emulator.url) as first:
        await first.create_pool(PoolSpec(id=POOL))
    async with make_backend(emulator.url) as second:
        assert (await second.get_pool(POOL)).id == POOL

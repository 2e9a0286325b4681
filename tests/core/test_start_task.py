"""A pool's start task on the fake executor: node states around it, its retries, its directory
and variables, its reruns on reboot and reimage, and a crash while it runs.

Expected values come from the REST reference (api-version 2025-06-01): StartTask
(``waitForSuccess`` true by default, ``maxTaskRetryCount`` 0 by default, -1 unlimited),
StartTaskInformation (state, startTime, endTime, exitCode, failureInfo, retryCount,
lastRetryTime, result), BatchNodeState (``waitingforstarttask``, ``starttaskfailed``), and the
"Azure Batch runtime environment variables" table (the start task has no job or task id).
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from jobprep_release.backends.base import (
    ExecutionResult,
    NodeFillType,
    NodeState,
    PoolUpdate,
    StartTaskSpec,
    StartTaskState,
    TaskState,
    UserAccount,
)
from jobprep_release.backends.docker.core import FakeClock, FakeExecutor, FakeOutcome, FakeStart
from jobprep_release.backends.errors import InvalidRequest
from tests.core.harness import JOB, job_spec, pool_spec, running_core, tasks

STARTUP = "/mnt/batch/tasks/startup"


def is_start(start: FakeStart) -> bool:
    return start.spec.task_dir == STARTUP


def script(start_code: int = 0, start_seconds: float = 10.0) -> Callable[[FakeStart], FakeOutcome]:
    """Start tasks run `start_seconds` and exit `start_code`, saying hello; tasks take 1 s."""

    def outcome(start: FakeStart) -> FakeOutcome:
        if is_start(start):
            return FakeOutcome(exit_code=start_code, duration=start_seconds, stdout=b"set up\n")
        return FakeOutcome(duration=1.0)

    return outcome


def start_runs(fake: FakeExecutor, node_id: str | None = None) -> list[FakeStart]:
    return [s for s in fake.starts if is_start(s) and node_id in (None, s.node_id)]


async def test_a_node_waits_for_its_start_task_then_takes_tasks() -> None:
    async with running_core(script()) as core:
        spec = pool_spec(1, start_task=StartTaskSpec("/bin/setup"))
        await core.service.create_pool(spec)
        await core.settle()
        (node,) = await core.service.list_nodes("pool")
        assert node.state is NodeState.WAITING_FOR_START_TASK
        assert node.start_task_info is not None
        assert node.start_task_info.state is StartTaskState.RUNNING
        assert node.start_task_info.execution_info.end_time is None
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        await core.advance(5)
        assert (await core.task("task001")).state is TaskState.ACTIVE  # held by the start task
        await core.advance(5)
        (node,) = await core.service.list_nodes("pool")
        assert node.state in (NodeState.IDLE, NodeState.RUNNING)
        info = node.start_task_info
        assert info is not None and info.state is StartTaskState.COMPLETED
        run = info.execution_info
        assert run.exit_code == 0 and run.result is ExecutionResult.SUCCESS
        assert run.retry_count == 0 and run.last_retry_time is None and run.failure_info is None
        assert run.start_time is not None and run.end_time is not None
        assert (run.end_time - run.start_time).total_seconds() == 10
        await core.advance(2)
        task = await core.task("task001")
        assert task.state is TaskState.COMPLETED
        assert task.execution_info.start_time is not None
        assert task.execution_info.start_time >= run.end_time


async def test_the_start_task_runs_in_startup_with_its_own_variables() -> None:
    async with running_core(script()) as core:
        start_task = StartTaskSpec("/bin/setup --now", environment={"MINE": "yes"})
        await core.service.create_pool(pool_spec(1, start_task=start_task))
        await core.advance(10)
        (start,) = start_runs(core.fake)
        assert start.argv == ("/bin/setup", "--now")
        assert start.spec.working_dir == f"{STARTUP}/wd"
        assert (start.spec.stdout_path, start.spec.stderr_path) == (
            f"{STARTUP}/stdout.txt",
            f"{STARTUP}/stderr.txt",
        )
        env = start.environment
        assert env["MINE"] == "yes"
        assert env["AZ_BATCH_TASK_DIR"] == STARTUP
        assert env["AZ_BATCH_TASK_WORKING_DIR"] == f"{STARTUP}/wd"
        assert env["AZ_BATCH_NODE_STARTUP_DIR"] == STARTUP
        assert env["AZ_BATCH_NODE_STARTUP_WORKING_DIR"] == f"{STARTUP}/wd"
        assert env["AZ_BATCH_POOL_ID"] == "pool"
        assert env["AZ_BATCH_NODE_ID"] == start.node_id
        assert env["AZ_BATCH_TASK_USER_IDENTITY"] == "PoolNonAdmin"
        # "All tasks except start task": no job or task id; no job preparation directories.
        for absent in ("AZ_BATCH_JOB_ID", "AZ_BATCH_TASK_ID", "AZ_BATCH_JOB_PREP_DIR"):
            assert absent not in env
        stdout = await core.service.read_node_file("pool", start.node_id, "startup/stdout.txt")
        assert stdout == b"set up\n"


async def test_a_failing_start_task_is_retried_then_the_node_is_starttaskfailed() -> None:
    async with running_core(script(start_code=3, start_seconds=1.0)) as core:
        start_task = StartTaskSpec("/bin/setup", max_task_retry_count=2)
        await core.service.create_pool(pool_spec(1, start_task=start_task))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        for _ in range(6):
            await core.advance(1)
        (node,) = await core.service.list_nodes("pool")
        assert len(start_runs(core.fake)) == 3  # one try and two retries
        assert node.state is NodeState.START_TASK_FAILED
        info = node.start_task_info
        assert info is not None and info.state is StartTaskState.COMPLETED
        run = info.execution_info
        assert run.exit_code == 3 and run.result is ExecutionResult.FAILURE
        assert run.failure_info is not None and run.failure_info.code == "FailureExitCode"
        assert run.retry_count == 2
        assert run.last_retry_time == run.start_time
        # The node takes no task.
        assert (await core.task("task001")).state is TaskState.ACTIVE
        assert not [s for s in core.fake.starts if not is_start(s)]


async def test_a_program_that_cannot_start_is_not_retried() -> None:
    def outcome(start: FakeStart) -> FakeOutcome:
        return FakeOutcome(not_found=True)

    async with running_core(outcome) as core:
        start_task = StartTaskSpec("/bin/missing", max_task_retry_count=3)
        await core.service.create_pool(pool_spec(1, start_task=start_task))
        await core.advance(1)
        (node,) = await core.service.list_nodes("pool")
        assert node.state is NodeState.START_TASK_FAILED
        assert len(start_runs(core.fake)) == 1
        info = node.start_task_info
        assert info is not None and info.execution_info.exit_code is None
        failure = info.execution_info.failure_info
        assert failure is not None and failure.code == "CommandProgramNotFound"


async def test_without_wait_for_success_the_node_takes_tasks_at_once_whatever_it_does() -> None:
    async with running_core(script(start_code=1, start_seconds=30.0)) as core:
        start_task = StartTaskSpec("/bin/setup", wait_for_success=False)
        await core.service.create_pool(pool_spec(1, start_task=start_task))
        await core.settle()
        (node,) = await core.service.list_nodes("pool")
        assert node.state is NodeState.IDLE
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(1))
        await core.advance(2)
        assert (await core.task("task001")).state is TaskState.COMPLETED
        await core.advance(30)
        (node,) = await core.service.list_nodes("pool")
        assert node.state is NodeState.IDLE
        info = node.start_task_info
        assert info is not None and info.execution_info.result is ExecutionResult.FAILURE


async def test_the_start_task_runs_again_on_reboot_and_on_reimage() -> None:
    async with running_core(script(start_seconds=1.0)) as core:
        await core.service.create_pool(pool_spec(1, start_task=StartTaskSpec("/bin/setup")))
        await core.advance(1)
        (node_id,) = await core.node_ids()
        assert len(start_runs(core.fake, node_id)) == 1
        await core.service.reboot_node("pool", node_id)
        await core.settle()
        assert len(start_runs(core.fake, node_id)) == 2
        (node,) = await core.service.list_nodes("pool")
        assert node.state is NodeState.WAITING_FOR_START_TASK
        await core.advance(1)
        await core.service.reimage_node("pool", node_id)
        await core.settle()
        assert len(start_runs(core.fake, node_id)) == 3
        await core.advance(1)
        (node,) = await core.service.list_nodes("pool")
        assert node.state is NodeState.IDLE
        # A second hello on the same boot (the executor attaching again) runs nothing more.
        core.fake.create_node(core.fake.nodes[node_id].setup)
        await core.advance(1)
        assert len(start_runs(core.fake, node_id)) == 3


async def test_a_core_that_crashes_while_the_start_task_runs_does_not_run_it_twice() -> None:
    fake = FakeExecutor(FakeClock(), script(start_seconds=10.0))
    scope = anyio.CancelScope()
    async with running_core(fake=fake, scope=scope) as core:
        await core.service.create_pool(pool_spec(1, start_task=StartTaskSpec("/bin/setup")))
        await core.advance(2)
        store = core.store
        assert len(start_runs(fake)) == 1
        scope.cancel()  # dropped as a killed process: nothing more is saved
    async with running_core(fake=fake, store=store) as core:
        (node,) = await core.service.list_nodes("pool")
        assert node.state is NodeState.WAITING_FOR_START_TASK
        await core.advance(10)
        (node,) = await core.service.list_nodes("pool")
        assert node.state is NodeState.IDLE
        assert len(start_runs(fake)) == 1
        info = node.start_task_info
        assert info is not None and info.execution_info.exit_code == 0


# --- updating the pool: Update Pool, Replace Pool Properties ---------------------------------


def commands(fake: FakeExecutor, node_id: str) -> list[str]:
    return [start.command_line for start in start_runs(fake, node_id)]


async def test_a_new_start_task_applies_from_a_nodes_next_boot_and_to_new_nodes() -> None:
    async with running_core(script(start_seconds=1.0)) as core:
        await core.service.create_pool(pool_spec(1, start_task=StartTaskSpec("/bin/old")))
        await core.advance(1)
        (first,) = await core.node_ids()
        update = PoolUpdate(start_task=StartTaskSpec("/bin/new"), metadata={"k": "v"})
        await core.service.update_pool("pool", update)
        await core.advance(1)
        spec = core.service.pool_spec("pool")
        assert spec.start_task == StartTaskSpec("/bin/new") and spec.metadata == {"k": "v"}
        assert commands(core.fake, first) == ["/bin/old"]  # running nodes keep theirs
        (node,) = await core.service.list_nodes("pool")
        assert node.start_task == StartTaskSpec("/bin/old")  # REST BatchNode.startTask
        await core.service.resize_pool("pool", 2)
        await core.advance(1)
        (second,) = [node for node in await core.node_ids() if node != first]
        assert commands(core.fake, second) == ["/bin/new"]
        await core.service.reboot_node("pool", first)
        await core.advance(1)
        assert commands(core.fake, first) == ["/bin/old", "/bin/new"]
        node = await core.service.get_node("pool", first)
        assert node.start_task == StartTaskSpec("/bin/new")


async def test_update_pool_leaves_what_it_does_not_name() -> None:
    async with running_core(script(start_seconds=1.0)) as core:
        spec = pool_spec(0, start_task=StartTaskSpec("/bin/setup"), metadata={"a": "1"})
        await core.service.create_pool(spec)
        await core.service.update_pool("pool", PoolUpdate(display_name="shown"))
        after = core.service.pool_spec("pool")
        assert after.display_name == "shown"
        assert after.start_task == spec.start_task and after.metadata == {"a": "1"}
        await core.service.update_pool("pool", PoolUpdate(metadata={}))
        assert core.service.pool_spec("pool").metadata == {}


async def test_replace_pool_properties_without_a_start_task_removes_it() -> None:
    async with running_core(script(start_seconds=1.0)) as core:
        spec = pool_spec(1, start_task=StartTaskSpec("/bin/setup"), metadata={"a": "1"})
        await core.service.create_pool(spec)
        await core.advance(1)
        (node_id,) = await core.node_ids()
        await core.service.replace_pool_properties("pool", None, {"b": "2"})
        after = core.service.pool_spec("pool")
        assert after.start_task is None and after.metadata == {"b": "2"}
        await core.service.reboot_node("pool", node_id)
        await core.advance(1)
        assert commands(core.fake, node_id) == ["/bin/setup"]
        (node,) = await core.service.list_nodes("pool")
        assert node.state is NodeState.IDLE and node.start_task_info is None


async def test_properties_of_an_empty_pool_only_are_refused_while_it_has_nodes() -> None:
    async with running_core(script(start_seconds=1.0)) as core:
        await core.service.create_pool(pool_spec(1))
        await core.advance(1)
        for update in (
            PoolUpdate(display_name="other"),
            PoolUpdate(vm_size="standard_d2_v3"),
            PoolUpdate(task_slots_per_node=2),
            PoolUpdate(node_fill_type=NodeFillType.SPREAD),
            PoolUpdate(user_accounts=(UserAccount("alice", "secret"),)),
        ):
            with pytest.raises(InvalidRequest) as refused:
                await core.service.update_pool("pool", update)
            assert refused.value.code == "PropertyCannotBeUpdated"
        await core.service.resize_pool("pool", 0)
        await core.service.update_pool("pool", PoolUpdate(vm_size="standard_d2_v3"))
        assert core.service.pool_spec("pool").vm_size == "standard_d2_v3"


async def test_a_pool_found_again_from_its_nodes_reruns_no_start_task_until_a_reboot() -> None:
    fake = FakeExecutor(FakeClock(), script(start_seconds=1.0))
    async with running_core(fake=fake) as core:
        await core.service.create_pool(pool_spec(1, start_task=StartTaskSpec("/bin/setup")))
        await core.advance(1)
        (node_id,) = await core.node_ids()
    # The state is lost (a new store); the pool is taken back from its nodes.
    async with running_core(fake=fake) as core:
        await core.service.get_pool("pool")
        await core.advance(1)
        assert len(start_runs(fake, node_id)) == 1  # whether it ran on this boot is not known
        (node,) = await core.service.list_nodes("pool")
        assert node.state is NodeState.IDLE
        await core.service.reboot_node("pool", node_id)
        await core.advance(1)
        assert len(start_runs(fake, node_id)) == 2

"""Job schedules on the real engine, through the endpoint (the backend interface does not express
schedules): the job a schedule creates at its ``doNotRunUntil``, named ``{scheduleId}:job-1``,
runs its preparation task, a task added to it and its release task on a node container; Terminate
Job Schedule terminates it and completes the schedule; Delete Job Schedule deletes its jobs.
Expected values from the REST API reference (``BatchJobScheduleConfiguration``,
``JobScheduleState``, ``BatchJobScheduleExecutionInfo``; the jobs' ids as the service names
them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.batch import models
from azure.batch.aio import BatchClient

from tests.conftest import Ids
from tests.endpoint.harness import endpoint, sdk_client
from tests.endpoint.support import call, linux_pool, wait_until

LIMIT = 180.0


async def _nodes_idle(client: BatchClient, pool_id: str) -> None:
    async def idle() -> bool:
        nodes = [node async for node in client.list_nodes(pool_id)]
        return bool(nodes) and all(node.state == models.BatchNodeState.IDLE for node in nodes)

    await wait_until(idle, limit=LIMIT, every=0.5)


async def _gone(client: BatchClient, path: str) -> None:
    async def missing() -> bool:
        return (await call(client, "GET", path)).status == 404

    await wait_until(missing, limit=LIMIT, every=0.5)


async def test_a_schedule_runs_its_job_on_a_node_and_ends_with_it(
    ids: Ids, state_dir: Path
) -> None:
    schedule_id = f"{ids.job}-s"
    job_id = f"{schedule_id}:job-1"
    async with endpoint(state_dir) as running, sdk_client(running) as client:
        await client.create_pool(linux_pool(ids.pool))
        try:
            await _nodes_idle(client, ids.pool)
            until = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
            shared = "$AZ_BATCH_NODE_SHARED_DIR/schedule.txt"
            specification = models.BatchJobSpecification(
                pool_info=models.BatchPoolInfo(pool_id=ids.pool),
                job_preparation_task=models.BatchJobPreparationTask(
                    command_line=f"/bin/bash -c 'echo prep $AZ_BATCH_JOB_ID >> {shared}'"
                ),
                job_release_task=models.BatchJobReleaseTask(
                    command_line=f"/bin/bash -c 'echo release $AZ_BATCH_JOB_ID >> {shared}'"
                ),
            )
            await client.create_job_schedule(
                models.BatchJobScheduleCreateOptions(
                    id=schedule_id,
                    schedule=models.BatchJobScheduleConfiguration(do_not_run_until=until),
                    job_specification=specification,
                )
            )
            waiting = await client.get_job_schedule(schedule_id)
            assert waiting.state == models.BatchJobScheduleState.ACTIVE
            assert waiting.execution_info is not None
            assert waiting.execution_info.next_run_time == until
            assert waiting.execution_info.recent_job is None

            async def created() -> bool:
                jobs = [job.id async for job in client.list_jobs_from_schedule(schedule_id)]
                return jobs == [job_id]

            await wait_until(created, limit=LIMIT, every=0.2)
            job = await client.get_job(job_id)
            assert job.creation_time is not None and job.creation_time >= until
            command = "/bin/bash -c 'echo task $AZ_BATCH_JOB_ID'"
            await client.create_task(
                job_id, models.BatchTaskCreateOptions(id="t1", command_line=command)
            )

            async def task_done() -> bool:
                task = await client.get_task(job_id, "t1")
                return task.state == models.BatchTaskState.COMPLETED

            await wait_until(task_done, limit=LIMIT, every=0.5)
            stdout = b"".join(
                [
                    chunk
                    async for chunk in await client.download_task_file(job_id, "t1", "stdout.txt")
                ]
            )
            assert stdout.decode() == f"task {job_id}\n"

            assert (
                await call(client, "POST", f"/jobschedules/{schedule_id}/terminate")
            ).status == 202

            async def schedule_completed() -> bool:
                found = await client.get_job_schedule(schedule_id)
                return found.state == models.BatchJobScheduleState.COMPLETED

            await wait_until(schedule_completed, limit=LIMIT, every=0.5)
            ended = await client.get_job(job_id)
            assert ended.state == models.BatchJobState.COMPLETED
            (node_id,) = [node.id async for node in client.list_nodes(ids.pool)]
            assert node_id is not None
            text = b"".join(
                [
                    chunk
                    async for chunk in await client.download_node_file(
                        ids.pool, node_id, "shared/schedule.txt"
                    )
                ]
            )
            assert text.decode() == f"prep {job_id}\nrelease {job_id}\n"

            assert (await call(client, "DELETE", f"/jobschedules/{schedule_id}")).status == 202
            await _gone(client, f"/jobschedules/{schedule_id}")
            await _gone(client, f"/jobs/{job_id}")
        finally:
            await call(client, "DELETE", f"/jobschedules/{schedule_id}")
            await (await client.begin_delete_pool(ids.pool)).result()

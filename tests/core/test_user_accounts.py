"""A pool's user accounts on the fake executor: tasks, preparation, release and start tasks run
as a named account (REST UserIdentity.username), with its name in the task's variables; a name
the pool does not have is refused.

Expected values come from the REST reference (api-version 2025-06-01: UserAccount,
UserIdentity: "the name of the user identity under which the Task is run") and the "Azure Batch
runtime environment variables" table (``AZ_BATCH_TASK_USER``: the account the task runs as).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from jobprep_release.backends.base import (
    ElevationLevel,
    JobPreparationTaskSpec,
    StartTaskSpec,
    TaskSpec,
    UserAccount,
    UserIdentity,
)
from jobprep_release.backends.errors import InvalidRequest
from tests.core.harness import JOB, job_spec, pool_spec, running_core

ALICE = UserAccount("alice", "secret", ElevationLevel.ADMIN, uid=4242, gid=4343)
BOB = UserAccount("bob", "secret")
AS_ALICE = UserIdentity(user_name="alice")
AS_BOB = UserIdentity(user_name="bob")


async def test_processes_run_as_the_named_account() -> None:
    async with running_core() as core:
        setup = StartTaskSpec("/bin/setup", user_identity=AS_ALICE)
        spec = pool_spec(1, user_accounts=(ALICE, BOB), start_task=setup)
        await core.service.create_pool(spec)
        await core.advance(1)
        prep = JobPreparationTaskSpec("/bin/prep", user_identity=AS_BOB)
        await core.service.create_job(job_spec(prep))
        await core.service.add_tasks(JOB, [TaskSpec("t1", "/bin/work", user_identity=AS_BOB)])
        await core.advance(1)
        await core.advance(1)
        by_command = {start.argv[0]: start for start in core.fake.starts}
        for command, user in (("/bin/setup", "alice"), ("/bin/prep", "bob"), ("/bin/work", "bob")):
            start = by_command[command]
            assert start.spec.user == user and not start.spec.elevated, command
            assert start.environment["USER"] == user
            assert start.environment["AZ_BATCH_TASK_USER"] == user
        assert (await core.task("t1")).execution_info.exit_code == 0


async def test_a_name_the_pool_does_not_have_is_refused() -> None:
    async with running_core() as core:
        with pytest.raises(InvalidRequest) as refused:
            await core.service.create_pool(
                pool_spec(1, start_task=StartTaskSpec("/bin/setup", user_identity=AS_BOB))
            )
        assert refused.value.code == "InvalidPropertyValue"
        await core.service.create_pool(pool_spec(1, user_accounts=(ALICE,)))
        await core.service.create_job(job_spec())
        with pytest.raises(InvalidRequest):
            await core.service.add_tasks(JOB, [TaskSpec("t1", "/bin/work", user_identity=AS_BOB)])
        with pytest.raises(InvalidRequest):
            await core.service.create_pool(replace(pool_spec(1, user_accounts=(BOB, BOB)), id="p2"))

"""A pool's user accounts on every backend: created on each node with the uid and gid asked,
an admin account in the ``sudo`` group, and tasks and start tasks run as the account named in
their user identity, owning their files.

Expected values come from the REST reference (api-version 2025-06-01): UserAccount (name,
elevationLevel, linuxUserConfiguration uid and gid) and UserIdentity (``username``: "the name
of the user identity under which the Task is run").
"""

from __future__ import annotations

from jobprep_release.backends.base import (
    ElevationLevel,
    StartTaskSpec,
    TaskSpec,
    UserAccount,
    UserIdentity,
)
from tests.contract.harness import BackendOpener, pool

ACCOUNTS = (
    UserAccount("alice", "Secret-1", ElevationLevel.ADMIN, uid=4242, gid=4343),
    UserAccount("bob", "Secret-2"),
)
WHO = (
    "/bin/bash -c 'echo $(id -un) $(id -u) $(id -g) $(id -Gn) $(stat -c %U .) $AZ_BATCH_TASK_USER'"
)


async def test_tasks_and_start_tasks_run_as_the_pools_named_accounts(
    open_backend: BackendOpener,
) -> None:
    start_task = StartTaskSpec(WHO, user_identity=UserIdentity(user_name="alice"))
    async with pool(open_backend, start_task=start_task, user_accounts=ACCOUNTS) as batch:
        (node_id,) = batch.node_ids
        out = await batch.backend.read_node_file(batch.pool_id, node_id, "startup/stdout.txt")
        assert out.decode().split() == ["alice", "4242", "4343", "alice", "sudo", "alice", "alice"]
        job = await batch.create_job()
        task = TaskSpec("t1", WHO, user_identity=UserIdentity(user_name="bob"))
        await batch.backend.add_tasks(job, [task])
        ran = (await batch.tasks_settled(job))["t1"]
        assert ran.execution_info.exit_code == 0
        path = f"workitems/{job}/job-1/t1/stdout.txt"
        words = (await batch.backend.read_node_file(batch.pool_id, node_id, path)).decode().split()
        name, uid, gid, groups, owner, variable = words
        assert (name, groups, owner, variable) == ("bob", "bob", "bob", "bob")
        assert uid != "4242" and int(uid) >= 1000 and gid != "4343"

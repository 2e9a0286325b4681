"""A task's authentication token used from inside the task, on the real engine, through the
endpoint (the backend interface does not express tokens).

The endpoint listens on the engine's bridge gateway (the address the node containers reach their
host at, from the engine's own ``docker network inspect bridge``); the task, given
``authenticationTokenSettings.access: ["job"]`` (REST ``AuthenticationTokenSettings``, api-version
2024-07-01.20.0), finds the endpoint at ``AZ_BATCH_ACCOUNT_URL`` and sends ``Authorization:
Bearer $AZ_BATCH_AUTHENTICATION_TOKEN`` over a bash ``/dev/tcp`` socket (the node image has no
HTTP client): reading its own job is answered 200, listing the pools 403."""

from __future__ import annotations

from pathlib import Path

import docker
from azure.batch import models

from tests.conftest import Ids
from tests.endpoint.harness import endpoint, sdk_client
from tests.endpoint.support import call, linux_pool, wait_until

LIMIT = 180.0
VERSION = "2024-07-01.20.0"
SCRIPT = (
    "u=${AZ_BATCH_ACCOUNT_URL#http://}; host=${u%:*}; port=${u##*:}; "
    "req() { exec 3<>/dev/tcp/$host/$port; "
    'printf "GET %s?api-version=' + VERSION + " HTTP/1.1\\r\\nHost: %s\\r\\n"
    'Authorization: Bearer %s\\r\\nConnection: close\\r\\n\\r\\n" '
    '"$1" "$host" "$AZ_BATCH_AUTHENTICATION_TOKEN" >&3; '
    'head -n1 <&3 | tr -d "\\r"; exec 3<&-; }; '
    "req /jobs/$AZ_BATCH_JOB_ID; req /pools"
)


def gateway(client: docker.DockerClient) -> str:
    config = client.networks.get("bridge").attrs["IPAM"]["Config"]
    return str(next(entry["Gateway"] for entry in config if entry.get("Gateway")))


async def test_a_task_uses_its_token_for_its_job_only(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    host = gateway(docker_client)
    async with endpoint(state_dir, host=host) as running, sdk_client(running) as client:
        await client.create_pool(linux_pool(ids.pool))
        try:
            await client.create_job(
                models.BatchJobCreateOptions(
                    id=ids.job, pool_info=models.BatchPoolInfo(pool_id=ids.pool)
                )
            )
            task = {
                "id": "caller",
                "commandLine": f"/bin/bash -c '{SCRIPT}'",
                "authenticationTokenSettings": {"access": ["job"]},
            }
            added = await call(
                client, "POST", f"/jobs/{ids.job}/tasks", body=task, params={"api-version": VERSION}
            )
            assert added.status == 201, added.body

            async def done() -> bool:
                found = await client.get_task(ids.job, "caller")
                return found.state == models.BatchTaskState.COMPLETED

            await wait_until(done, limit=LIMIT, every=0.5)
            stdout = b"".join(
                [
                    chunk
                    async for chunk in await client.download_task_file(
                        ids.job, "caller", "stdout.txt"
                    )
                ]
            )
            assert stdout.decode().splitlines() == ["HTTP/1.1 200 OK", "HTTP/1.1 403 Forbidden"]
        finally:
            await call(client, "DELETE", f"/jobs/{ids.job}")
            await (await client.begin_delete_pool(ids.pool)).result()

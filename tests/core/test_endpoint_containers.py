"""Container settings through the REST endpoint over the fake executor: a container pool and a
container task are kept and shown back as asked, and what needs a registry is refused with 501
naming it (no registry is reachable locally).

Expected shapes come from the REST reference (api-version 2025-06-01): ContainerConfiguration
(``type``, ``containerImageNames``, ``containerRegistries``) and TaskContainerSettings
(``imageName``, ``containerRunOptions``, ``workingDirectory``, ``registry``).
"""

from __future__ import annotations

from typing import Any

from tests.core.test_endpoint_autoscale import IMAGE, client
from tests.endpoint.support import call

CONTAINERS = {"type": "dockerCompatible", "containerImageNames": ["example/tool:1"]}


def container_pool(pool_id: str, **containers: Any) -> dict[str, Any]:
    configuration = {**IMAGE, "containerConfiguration": {**CONTAINERS, **containers}}
    return {"id": pool_id, "vmSize": "standard_d2_v2", "virtualMachineConfiguration": configuration}


async def test_container_settings_are_kept_and_registries_refused() -> None:
    async with client() as batch:
        assert (await call(batch, "POST", "/pools", body=container_pool("p1"))).status == 201
        shown = (await call(batch, "GET", "/pools/p1")).json()
        assert shown["virtualMachineConfiguration"]["containerConfiguration"] == CONTAINERS
        registry = {"registryServer": "example.azurecr.io", "username": "u", "password": "p"}
        answer = await call(
            batch, "POST", "/pools", body=container_pool("p2", containerRegistries=[registry])
        )
        assert (answer.status, answer.json()["code"]) == (501, "NotSupported")
        assert "containerConfiguration.containerRegistries" in answer.json()["message"]["value"]
        job = {"id": "j1", "poolInfo": {"poolId": "p1"}}
        assert (await call(batch, "POST", "/jobs", body=job)).status == 201
        settings = {
            "imageName": "example/tool:1",
            "containerRunOptions": "-e A=1",
            "workingDirectory": "containerImageDefault",
        }
        task = {"id": "t1", "commandLine": "/bin/work", "containerSettings": settings}
        assert (await call(batch, "POST", "/jobs/j1/tasks", body=task)).status == 201
        shown = (await call(batch, "GET", "/jobs/j1/tasks/t1")).json()
        assert shown["containerSettings"] == settings
        with_registry = {
            **task,
            "id": "t2",
            "containerSettings": {**settings, "registry": registry},
        }
        answer = await call(batch, "POST", "/jobs/j1/tasks", body=with_registry)
        assert (answer.status, answer.json()["code"]) == (501, "NotSupported")
        assert "containerSettings.registry" in answer.json()["message"]["value"]

"""Every node has an ``ipAddress``, as every real node does (azure-batch 15 types it as always
there): on docker the node container's address, read here from the engine itself."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import anyio
import docker
from azure.batch import models
from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from tests.azure.emulator import Emulator
from tests.azure.support import ACCOUNT, KEY
from tests.conftest import Ids, gone
from tests.endpoint.harness import endpoint, sdk_client

VM = models.VirtualMachineConfiguration(
    image_reference=models.BatchVmImageReference(
        publisher="canonical", offer="ubuntu-24_04-lts", sku="server", version="latest"
    ),
    node_agent_sku_id="batch.node.ubuntu 24.04",
)


async def test_a_docker_node_has_its_containers_address(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    async with endpoint(state_dir) as running, sdk_client(running) as batch:
        options = models.BatchPoolCreateOptions(
            id=ids.pool, vm_size="standard_d1_v2", target_dedicated_nodes=2,
            virtual_machine_configuration=VM,
        )  # fmt: skip
        await batch.create_pool(options)
        try:
            with anyio.fail_after(120):
                while True:
                    nodes = [node async for node in batch.list_nodes(ids.pool)]
                    if len(nodes) == 2 and all(n.state == "idle" for n in nodes):
                        break
                    await anyio.sleep(0.5)
            containers = docker_client.containers.list(
                filters={"label": f"jobprep_release.pool={ids.pool}"}
            )
            engine_addresses = {
                network["IPAddress"]
                for container in containers
                for network in container.attrs["NetworkSettings"]["Networks"].values()
            }
            addresses = {node.ip_address for node in nodes}
            assert len(addresses) == 2 and addresses <= engine_addresses
            got = await batch.get_node(ids.pool, nodes[0].id or "")
            assert got.ip_address == nodes[0].ip_address
        finally:
            poller = await batch.begin_delete_pool(ids.pool, polling_interval=1)
            await poller.result()
    assert gone(docker_client, ids.pool)


async def test_a_fake_node_has_a_fixed_private_address(emulator: Emulator) -> None:
    credential = AzureNamedKeyCredential(ACCOUNT, KEY)
    async with BatchClient(emulator.url, credential) as batch:
        options = models.BatchPoolCreateOptions(
            id="apool", vm_size="standard_d1_v2", target_dedicated_nodes=3,
            virtual_machine_configuration=VM,
        )  # fmt: skip
        await batch.create_pool(options)
        await emulator.settle()
        first = {node.id: node.ip_address async for node in batch.list_nodes("apool")}
        again = {node.id: node.ip_address async for node in batch.list_nodes("apool")}
    assert first == again and len(set(first.values())) == 3
    assert all(ipaddress.IPv4Address(address).is_private for address in first.values())

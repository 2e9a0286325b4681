"""Node keepers on a real engine: a node is created without looking first when the core has
just allocated it, and still finds a container of its name that a crash left there; a removal
that meets another one under way waits for it."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

import anyio
import docker

from jobprep_release.backends.base import NodeState, PoolSpec
from jobprep_release.backends.docker.core.executor import NodeSetup
from jobprep_release.backends.docker.node.agent import AgentEvent
from jobprep_release.backends.docker.node.engine import Engine
from jobprep_release.backends.docker.node.keeper import NodeKeeper
from tests.conftest import POOL_LABEL, Ids, labelled


@dataclass
class Heard:
    """What a keeper told its executor."""

    hellos: list[str] = field(default_factory=list)
    states: list[NodeState] = field(default_factory=list)
    lost: int = 0

    def on_agent_event(self, node_id: str, event: AgentEvent) -> None:
        if event.verb == "hello":
            self.hellos.append(event.key)

    def on_keeper_state(self, node_id: str, state: NodeState) -> None:
        self.states.append(state)

    def on_keeper_lost(self, node_id: str) -> None:
        self.lost += 1


async def _until_hello(heard: Heard) -> None:
    with anyio.fail_after(60):
        while not heard.hellos:
            await anyio.sleep(0.05)


async def test_a_new_node_whose_container_a_crash_left_takes_that_container(
    ids: Ids, docker_client: docker.DockerClient
) -> None:
    # The first keeper makes the node and is then stopped without removing it (its process
    # died); a second keeper of the same node, told it is new, tries to create it, is refused
    # (409, the name is taken) and attaches to the container there: the same boot, no second
    # container or volume.
    engine = Engine(docker_client)
    serial = 1234567890
    setup = NodeSetup(
        pool=PoolSpec(id=ids.pool, target_dedicated_nodes=1, image="debian:bookworm-slim"),
        serial=serial,
        created=time.time(),
        node_id=f"tvm-{serial}_1-20260101t000000z",
        index=1,
        new=True,
    )
    first, second = Heard(), Heard()
    keeper = NodeKeeper(engine, setup, first)
    async with anyio.create_task_group() as group:
        group.start_soon(keeper.run)
        await _until_hello(first)
        link = keeper.link
        group.cancel_scope.cancel()
    assert link is not None
    link.close()
    assert first.states[0] is NodeState.CREATING
    assert labelled(docker_client, ids.pool) == (1, 1)
    (container,) = docker_client.containers.list(filters={"label": f"{POOL_LABEL}={ids.pool}"})
    again = NodeKeeper(engine, setup, second)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(again.run)
            await _until_hello(second)
            assert second.hellos[0] == first.hellos[0] == "1"  # not restarted
            assert second.lost == 0
            (still,) = docker_client.containers.list(filters={"label": f"{POOL_LABEL}={ids.pool}"})
            assert still.id == container.id
            assert labelled(docker_client, ids.pool) == (1, 1)
            await again.remove()
            group.cancel_scope.cancel()
    finally:
        await engine.close()
    assert labelled(docker_client, ids.pool) == (0, 0)


async def test_a_removal_that_meets_another_under_way_returns_once_the_container_is_gone(
    ids: Ids, docker_client: docker.DockerClient
) -> None:
    # A container task removes itself as it ends while its node's removal lists and removes
    # it too: the engine answers the second 409 "removal ... already in progress", which must
    # neither escape nor return before the container is gone (its node's volume would then
    # still be in use).
    engine = Engine(docker_client)
    api = docker_client.api
    for round_ in range(4):
        config = api.create_container_config(
            "debian:bookworm-slim", ["sleep", "infinity"], labels={POOL_LABEL: ids.pool}
        )
        container = api.create_container_from_config(config, f"{ids.pool}-race-{round_}")["Id"]
        api.start(container)

        def other(container: str = container) -> None:
            with contextlib.suppress(docker.errors.APIError):
                api.remove_container(container, force=True)

        racer = threading.Thread(target=other)
        racer.start()
        await anyio.sleep(0.003 * round_)
        await engine.remove_container(container)
        assert not docker_client.containers.list(all=True, filters={"id": container})
        racer.join()
    assert labelled(docker_client, ids.pool) == (0, 0)

"""The node agent on a real engine: its answers to `query` agree with the commands it read."""

from __future__ import annotations

import anyio
import docker

from jobprep_release.backends.docker.node.agent import (
    AGENT_SCRIPT,
    AgentLink,
    run_command,
    simple_command,
)
from jobprep_release.backends.docker.node.engine import POOL_LABEL, Engine
from tests.conftest import Ids

RUNS = 20


async def test_a_query_right_after_a_run_never_says_the_agent_has_no_trace_of_it(
    ids: Ids, docker_client: docker.DockerClient
) -> None:
    # The agent starts each run in a background subshell; a query read before that subshell
    # recorded its pid was answered `unknown` (the node "restarted"), and the core then ran
    # the process a second time while the first still ran.
    engine = Engine(docker_client)
    name = f"jobprep_release-agenttest-{ids.pool.lower()}"
    labels = {POOL_LABEL: ids.pool}
    await engine.create_volume(name, labels)
    container = await engine.create_node_container(
        name=name,
        image="debian:bookworm-slim",
        command=["/bin/bash", "-c", AGENT_SCRIPT],
        hostname="agenttest",
        labels=labels,
        volume=name,
        mount_point="/mnt/batch",
        host_options={},
    )
    link = await AgentLink.attach(engine, container.id)
    try:
        await engine.call(container.start, what="start the agent")
        keys = [f"key{n:03d}" for n in range(RUNS)]
        payload = b"".join(
            run_command(key, "sleep 0.2\n") + simple_command("query", key) for key in keys
        )
        await link.send(payload)
        answers: dict[str, list[str]] = {key: [] for key in keys}
        with anyio.fail_after(30):
            while any("exited" not in verbs for verbs in answers.values()):
                for event in await link.receive():
                    if event.key in answers:
                        answers[event.key].append(event.verb)
        for key, verbs in answers.items():
            assert "unknown" not in verbs, (key, verbs)
            assert "started" in verbs, (key, verbs)
    finally:
        link.close()
        await engine.remove_container(container.id)
        await engine.remove_volume(name)

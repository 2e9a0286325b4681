"""Isolation: what a node container may do, what a task may read, what logs may show."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, redirect_stderr
from pathlib import Path

import anyio
import docker
import pytest
import structlog

from jobprep_release import logs
from jobprep_release.backends.base import JobSpec, NodeState, PoolSpec, TaskSpec
from jobprep_release.backends.docker import DockerBackend, DockerSettings
from jobprep_release.backends.docker.node.agent import AGENT_READ_LIMIT
from jobprep_release.backends.errors import InvalidRequest, NotFound
from tests.conftest import POOL_LABEL, Ids
from tests.docker.helpers import only, wait_for_tasks


@asynccontextmanager
async def one_node(ids: Ids, state_dir: Path) -> AsyncIterator[DockerBackend]:
    async with DockerBackend(DockerSettings(state_dir=state_dir)) as backend:
        await backend.create_pool(PoolSpec(id=ids.pool, target_dedicated_nodes=1))
        await backend.create_job(JobSpec(id=ids.job, pool_id=ids.pool))
        with anyio.fail_after(60):
            while [n.state for n in await backend.list_nodes(ids.pool)] != [NodeState.IDLE]:
                await anyio.sleep(0.05)
        try:
            yield backend
        finally:
            await backend.delete_job(ids.job)
            await backend.delete_pool(ids.pool)


async def test_node_containers_are_confined(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    async with one_node(ids, state_dir):
        (container,) = docker_client.containers.list(filters={"label": f"{POOL_LABEL}={ids.pool}"})
        host = container.attrs["HostConfig"]
        assert host["Privileged"] is False
        assert "no-new-privileges" in host["SecurityOpt"]
        assert host["CapDrop"] == ["ALL"]
        assert set(host["CapAdd"]) == {
            "CHOWN",
            "DAC_OVERRIDE",
            "FOWNER",
            "SETUID",
            "SETGID",
            "KILL",
        }
        assert host["PidsLimit"] > 0
        assert host["Memory"] == int(3.5 * 1024**3)  # standard_d1_v2
        mounts = container.attrs["Mounts"]
        assert [(m["Type"], m["Destination"]) for m in mounts] == [("volume", "/mnt/batch")]
        assert all("docker.sock" not in str(m.get("Source")) for m in mounts)


async def test_a_non_admin_task_cannot_read_root_s_files(ids: Ids, state_dir: Path) -> None:
    async with one_node(ids, state_dir) as backend:
        await backend.add_tasks(ids.job, [TaskSpec("peek", "cat /etc/shadow")])
        task = only(await wait_for_tasks(backend, ids.job), "peek")
        assert task.execution_info.exit_code == 1


async def test_node_file_reads_refuse_symlinks_leaving_the_root(ids: Ids, state_dir: Path) -> None:
    async with one_node(ids, state_dir) as backend:
        links = (
            "ln -s /etc $AZ_BATCH_NODE_SHARED_DIR/out; "
            "ln -s /etc/passwd $AZ_BATCH_NODE_SHARED_DIR/pw; "
            "echo fine > $AZ_BATCH_NODE_SHARED_DIR/real; "
            "ln -s real $AZ_BATCH_NODE_SHARED_DIR/in"
        )
        await backend.add_tasks(ids.job, [TaskSpec("links", f"/bin/bash -c '{links}'")])
        node = only(await wait_for_tasks(backend, ids.job), "links").node_id
        assert node is not None
        for path in ("shared/out/passwd", "shared/pw"):
            with pytest.raises(InvalidRequest):
                await backend.read_node_file(ids.pool, node, path)
        assert await backend.read_node_file(ids.pool, node, "shared/in") == b"fine\n"


async def test_node_file_reads_give_a_file_s_exact_bytes_whatever_its_size(
    ids: Ids, state_dir: Path
) -> None:
    # Small files come through the node's agent, larger ones through the engine's archive:
    # either way the exact bytes, and a missing file is FileNotFound.
    small = bytes(range(256)) * 2
    large = bytes(range(251)) * (AGENT_READ_LIMIT // 251 + 7)
    write = (
        "cd $AZ_BATCH_NODE_SHARED_DIR && "
        f'perl -e "print pack(q(H*), q({small.hex()}))" > small && '
        f'perl -e "print chr(\\$_ % 251) for 0..{len(large) - 1}" > large && : > empty'
    )
    async with one_node(ids, state_dir) as backend:
        await backend.add_tasks(ids.job, [TaskSpec("write", f"/bin/bash -c '{write}'")])
        task = only(await wait_for_tasks(backend, ids.job), "write")
        assert task.execution_info.exit_code == 0
        node = task.node_id
        assert node is not None
        assert await backend.read_node_file(ids.pool, node, "shared/small") == small
        assert await backend.read_node_file(ids.pool, node, "shared/large") == large
        assert await backend.read_node_file(ids.pool, node, "shared/empty") == b""
        for missing in ("shared/none", "none/small", "shared/small/none"):
            with pytest.raises(NotFound) as raised:
                await backend.read_node_file(ids.pool, node, missing)
            assert raised.value.code == "FileNotFound"


def test_logs_redact_secrets() -> None:
    secret = "c2VjcmV0LWtleS12YWx1ZQ=="
    captured = io.StringIO()
    with redirect_stderr(captured):
        logs.configure(fmt="json")
        logs.register_secret(secret)
        log = structlog.get_logger("test")
        log.warning("request failed", detail=f"Authorization: SharedKey acct:{secret}")
        log.warning("settings", key=secret, account_key="other")
    text = captured.getvalue()
    assert secret not in text
    assert "other" not in text
    assert text.count("***") == 3


async def test_a_node_s_engine_log_stays_bounded_however_much_its_agent_says(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    # The engine logs the agent's stdout, which carries a small file's bytes (hex) on each
    # read: 40 reads of a 64 KiB file say over 5 MB, which the node's log must not keep.
    async with one_node(ids, state_dir) as backend:
        fill = f"head -c {AGENT_READ_LIMIT} /dev/zero > $AZ_BATCH_NODE_SHARED_DIR/full"
        await backend.add_tasks(ids.job, [TaskSpec("fill", f"/bin/bash -c '{fill}'")])
        node = only(await wait_for_tasks(backend, ids.job), "fill").node_id
        assert node is not None
        for _ in range(40):
            assert await backend.read_node_file(ids.pool, node, "shared/full") == bytes(
                AGENT_READ_LIMIT
            )
        (container,) = docker_client.containers.list(filters={"label": f"{POOL_LABEL}={ids.pool}"})
        config = container.attrs["HostConfig"]["LogConfig"]
        assert config == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
        log_path = Path(container.attrs["LogPath"])
        try:
            sizes = [path.stat().st_size for path in log_path.parent.glob(f"{log_path.name}*")]
        except PermissionError:
            pytest.skip(f"the engine's log files ({log_path.parent}) cannot be read by this user")
        if not sizes:
            pytest.skip("the engine keeps its log files where this process cannot see them")
        # Each file may pass 1 MiB by the message that crossed it (16 KiB at most).
        assert sum(sizes) <= 2 * (1024**2 + 64 * 1024), sizes

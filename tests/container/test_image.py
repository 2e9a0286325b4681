"""The app's image: built once per session by scripts/build-image.sh, then the whole sample run
inside it against the host's Docker engine (the node containers are the app container's
siblings), as the README and ci-examples/ run it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid

import docker
import pytest

from tests.conftest import Ids
from tests.container.conftest import Image, docker_cli, leftovers, run_image

ENTRYPOINT = ["python", "-m", "jobprep_release"]
# What the image adds on top of debian:bookworm-slim: Debian's python3, CA certificates and the
# app's virtual environment, about 95 MB; a compiler, pip's cache or build tools would blow it.
MAX_ADDED_BYTES = 150_000_000


def test_the_whole_sample_runs_in_the_image_and_leaves_nothing(
    image: Image, ids: Ids, docker_client: docker.DockerClient
) -> None:
    """`--yes` with unique ids; the shared `ids` fixture removes what a failure leaves."""
    result = run_image(image, "--pool-id", ids.pool, "--job-id", ids.job, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        f"Attempting to create pool: {ids.pool}",
        f"Created pool {ids.pool} with 2 dedicated and 0 low priority standard_d1_v2 nodes",
        f"Checking for existing job {ids.job}...",
        f"Job {ids.job} not found, creating...",
    ]
    assert lines[-6:] == [
        "Delete job? [yes] no",
        "yes",
        "Delete pool? [yes] no",
        "yes",
        "",
        "Sample complete, hit ENTER to exit...",
    ]
    assert "All tasks completed." in lines
    assert lines.count("  Prep task exit code:    0") == 2
    assert lines.count("  Release task exit code: 0") == 2
    tasks = sorted(line.strip() for line in lines if line.startswith("  task"))
    assert tasks == [f"task{n:03d}" for n in range(1, 9)]
    assert "Traceback" not in result.stderr
    assert leftovers(docker_client, ids.pool) == []


def test_the_app_runs_as_a_non_root_user_in_the_sockets_group(image: Image) -> None:
    config = docker_cli("image", "inspect", "-f", "{{.Config.User}}", image.tag)
    assert config.stdout.strip() not in {"", "root", "0"}
    uid = run_image(image, "-u", entrypoint="id")
    assert uid.returncode == 0, uid.stderr
    assert uid.stdout.strip() != "0"
    groups = run_image(image, "-G", entrypoint="id")
    assert image.socket_gid in groups.stdout.split()


def test_the_image_has_the_entrypoint_the_user_state_and_no_build_tools(image: Image) -> None:
    entrypoint = docker_cli("image", "inspect", "-f", "{{json .Config.Entrypoint}}", image.tag)
    assert json.loads(entrypoint.stdout) == ENTRYPOINT
    probe = run_image(
        image,
        "-c",
        "set -e; command -v python; "
        'for tool in gcc cc make pip pip3 sudo; do ! command -v "$tool"; done; '
        'test ! -e /src; test ! -e "$HOME/.cache"; test ! -e /root/.cache; '
        "test -s /etc/ssl/certs/ca-certificates.crt; "
        'touch "$XDG_STATE_HOME/jobprep_release/probe"; '
        "python -c 'import ssl; "
        'assert ssl.create_default_context().cert_store_stats()["x509_ca"]\'',
        entrypoint="sh",
    )
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert probe.stdout.splitlines() == ["/opt/venv/bin/python"]
    helped = run_image(image, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "--backend" in helped.stdout


def test_the_image_adds_little_to_its_base(
    docker_client: docker.DockerClient, image: Image
) -> None:
    size = docker_client.images.get(image.tag).attrs["Size"]
    base = docker_client.images.get("debian:bookworm-slim").attrs["Size"]
    assert size - base < MAX_ADDED_BYTES, f"{size - base} bytes on top of the base"


def test_the_azure_backend_is_in_the_image(image: Image) -> None:
    """No Batch account here: the azure backend loads and says what is missing (status 2)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_BATCH_")}
    result = subprocess.run(
        ["docker", "run", "--rm", image.tag, "--backend", "azure", "--yes"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "AZURE_BATCH_ENDPOINT" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_the_sockets_group_the_engine_is_unreachable(image: Image) -> None:
    """What --group-add is for: without it the non-root user cannot use the socket (status 3)."""
    if image.socket_mode & stat.S_IWOTH:
        pytest.skip(f"{image.socket} is writable by everyone: no group is needed here")
    result = run_image(image, "--pool-id", f"NoGroup-{uuid.uuid4().hex[:8]}", group=False)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Docker engine" in result.stderr

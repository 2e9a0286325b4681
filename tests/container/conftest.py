"""The app's image for the tests of this folder: built once per session by
scripts/build-image.sh, run as the README runs it (the engine's socket mounted, the socket's
group added), so that the node containers are the app container's siblings."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import docker
import pytest

from tests.conftest import POOL_LABEL, REPO

TAG = "jobprep-release:test"


@dataclass(frozen=True)
class Image:
    tag: str  # the image's id as built: the tag is shared with other checkouts' builds
    socket: str  # the engine's socket, as a path on the engine's host
    socket_gid: str  # its group id, as the engine's host sees it
    socket_mode: int  # its permission bits, likewise


def engine_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host.startswith("unix://") else "/var/run/docker.sock"


def docker_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def image_command(
    image: Image,
    *args: str,
    options: tuple[str, ...] = (),
    group: bool = True,
    entrypoint: str | None = None,
) -> list[str]:
    """`docker run --rm` of the image with the engine's socket mounted, as the README says,
    and `options` (mounts, `-i`, a name) before the image."""
    command = ["docker", "run", "--rm", "-v", f"{image.socket}:/var/run/docker.sock", *options]
    if group:
        command += ["--group-add", image.socket_gid]
    if entrypoint is not None:
        command += ["--entrypoint", entrypoint]
    return [*command, image.tag, *args]


def run_image(
    image: Image, *args: str, group: bool = True, entrypoint: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The image run to its end (`image_command`)."""
    command = image_command(image, *args, group=group, entrypoint=entrypoint)
    return docker_cli(*command[1:], timeout=600)


@pytest.fixture(scope="session")
def image(docker_client: docker.DockerClient) -> Image:
    """The image, built once per session the way the README builds it."""
    built = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-image.sh"), TAG],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    built_id = str(docker_client.images.get(TAG).id)
    socket = engine_socket()
    # The socket's group and mode as the engine's host sees them (`stat -c %g` on a local
    # engine; asked through a container so that it holds for a remote engine or dind too).
    seen = docker_cli(
        "run", "--rm", "-v", f"{socket}:/var/run/docker.sock", "--entrypoint", "stat", built_id,
        "-c", "%g %a", "/var/run/docker.sock",
    )  # fmt: skip
    assert seen.returncode == 0, seen.stderr
    gid, mode = seen.stdout.split()
    return Image(tag=built_id, socket=socket, socket_gid=gid, socket_mode=int(mode, 8))


def leftovers(client: docker.DockerClient, pool_id: str) -> list[str]:
    selector = {"label": f"{POOL_LABEL}={pool_id}"}
    return [
        *(f"container {c.name}" for c in client.containers.list(all=True, filters=selector)),
        *(f"volume {v.name}" for v in client.volumes.list(filters=selector)),
        *(f"network {n.name}" for n in client.networks.list(filters=selector)),
    ]

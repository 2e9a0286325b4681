"""The core, its fake executor and the endpoint over it import and run without docker-py."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROGRAM = textwrap.dedent(
    """
    import sys

    sys.modules["docker"] = None  # any `import docker` now raises ImportError

    import anyio

    import jobprep_release.backends.docker.core
    import jobprep_release.backends.docker.core.fake
    from jobprep_release.backends.docker.core import FakeExecutor
    from jobprep_release.backends.docker.rest import EndpointSettings, running_endpoint

    async def main() -> None:
        settings = EndpointSettings(account="nodocker", port=0, executor=FakeExecutor())
        async with running_endpoint(settings) as running:
            assert running.url.startswith("http://")

    anyio.run(main)
    assert sys.modules["docker"] is None
    assert "jobprep_release.backends.docker.backend" not in sys.modules
    print("ok")
    """
)


def test_the_core_and_the_endpoint_over_the_fake_import_without_docker() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "ok"


def test_the_package_names_still_load_on_demand() -> None:
    from jobprep_release.backends.docker import (
        DEFAULT_NODE_IMAGE,
        BatchService,
        DockerBackend,
        DockerSettings,
    )
    from jobprep_release.backends.docker.backend import DockerBackend as Home

    assert DockerBackend is Home
    assert BatchService.__name__ == "BatchService"
    assert DockerSettings().image == DEFAULT_NODE_IMAGE

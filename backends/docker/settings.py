"""How the Docker backend reaches the engine and builds nodes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jobprep_release.backends.errors import StateUnreadable

if TYPE_CHECKING:
    from jobprep_release.backends.docker.core.storage import LinkedStorage

DEFAULT_NODE_IMAGE = "debian:bookworm-slim"


@dataclass(frozen=True, slots=True)
class DockerSettings:
    """The node image, where the state lives (None: the default state directory), the
    engine (None: ``DOCKER_HOST`` or the local socket), the account name tasks see and the
    storage account linked to it (``autoStorageContainerName``; None: none)."""

    image: str = DEFAULT_NODE_IMAGE
    state_dir: Path | None = None
    docker_host: str | None = None
    account_name: str = "localbatch"
    storage: LinkedStorage | None = None


def unusable_state_dir(directory: Path, exc: OSError) -> StateUnreadable:
    """The error for a state directory that cannot be made or written (a file, a read-only
    file system): status 9, naming the directory and the flag to choose another."""
    return StateUnreadable(
        f"the docker backend's state directory {directory} cannot be used: {exc.strerror or exc}",
        hint="give a directory this user can write, with --state-dir or JOBPREP_RELEASE_STATE_DIR",
    )

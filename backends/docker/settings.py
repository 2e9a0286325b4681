"""How the Docker backend reaches the engine and builds nodes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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

"""The Docker backend: Azure Batch semantics on a local Docker engine, one container per node."""

from __future__ import annotations

from jobprep_release.backends.docker.backend import DockerBackend
from jobprep_release.backends.docker.service import DEFAULT_NODE_IMAGE, BatchService, DockerSettings

__all__ = ["DEFAULT_NODE_IMAGE", "BatchService", "DockerBackend", "DockerSettings"]

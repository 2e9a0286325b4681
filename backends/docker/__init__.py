"""The Docker backend: Azure Batch semantics on a local Docker engine, one container per node."""

from __future__ import annotations

from backends.docker.backend import DockerBackend
from backends.docker.service import DEFAULT_NODE_IMAGE, BatchService, DockerSettings

__all__ = ["DEFAULT_NODE_IMAGE", "BatchService", "DockerBackend", "DockerSettings"]

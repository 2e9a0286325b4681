"""The Docker backend: Azure Batch semantics on a local Docker engine, one container per node."""

from __future__ import annotations

from backends.docker.backend import DockerBackend
from backends.docker.service import BatchService, DockerSettings

__all__ = ["BatchService", "DockerBackend", "DockerSettings"]

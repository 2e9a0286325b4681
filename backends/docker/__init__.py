"""The Docker backend: Azure Batch semantics on a local Docker engine, one container per node.

`core` is the Batch service (no Docker in it), `node` its Docker node executor, `backend` the
`BatchBackend` that composes the two, `rest` the local Batch REST endpoint over the service.
"""

from __future__ import annotations

from jobprep_release.backends.docker.backend import DockerBackend
from jobprep_release.backends.docker.core.service import BatchService
from jobprep_release.backends.docker.settings import DEFAULT_NODE_IMAGE, DockerSettings

__all__ = ["DEFAULT_NODE_IMAGE", "BatchService", "DockerBackend", "DockerSettings"]

"""The Docker backend: Azure Batch semantics on a local Docker engine, one container per node.

`core` is the Batch service (no Docker in it), `node` its Docker node executor, `backend` the
`BatchBackend` that composes the two, `rest` the local Batch REST endpoint over the service.

The public names load lazily (module `__getattr__`, PEP 562), so importing `core` or `rest`
over a fake executor never imports docker-py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobprep_release.backends.exports import lazy_exports

if TYPE_CHECKING:
    from jobprep_release.backends.docker.backend import DockerBackend
    from jobprep_release.backends.docker.core.service import BatchService
    from jobprep_release.backends.docker.settings import DEFAULT_NODE_IMAGE, DockerSettings

__all__ = ["DEFAULT_NODE_IMAGE", "BatchService", "DockerBackend", "DockerSettings"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DockerBackend": "jobprep_release.backends.docker.backend",
        "BatchService": "jobprep_release.backends.docker.core.service",
        "DEFAULT_NODE_IMAGE": "jobprep_release.backends.docker.settings",
        "DockerSettings": "jobprep_release.backends.docker.settings",
    },
)

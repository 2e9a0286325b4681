"""The azure backend: the sample's Batch operations on a real Azure Batch account.

Imported only when the azure backend is chosen, since it pulls in azure-batch and azure-identity.
The CLI calls `build_azure_backend` (see `jobprep_release.backends.azure.credentials`) and uses
the result as an async context manager.
"""

from __future__ import annotations

from jobprep_release.backends.azure.backend import AzureBackend
from jobprep_release.backends.azure.credentials import (
    AzureSettings,
    build_azure_backend,
    resolve_settings,
)

__all__ = ["AzureBackend", "AzureSettings", "build_azure_backend", "resolve_settings"]

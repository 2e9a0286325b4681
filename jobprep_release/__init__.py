"""jobprep_release: Azure Batch's JobPrepRelease sample, on a local Docker engine or on Azure."""

from __future__ import annotations

__version__ = "0.1.0"

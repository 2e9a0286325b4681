"""Shared values and helpers of the azure backend's tests."""

from __future__ import annotations

import base64
from typing import Any

from azure.core.credentials import AzureNamedKeyCredential

from jobprep_release.backends.azure import AzureBackend

ACCOUNT = "emulatoraccount"
# A made-up key, recognisable in any text it might leak into.
KEY = base64.b64encode(b"emulator-secret-key-0123456789-abcdefghijklmnop").decode()

# Short waits so that retries and long-running operations finish quickly in tests.
FAST: dict[str, Any] = {"retry_backoff_factor": 0.01, "lro_poll_interval": 0}


def make_backend(endpoint: str, key: str = KEY, **options: Any) -> AzureBackend:
    """A backend on `endpoint` signing with the emulator's account and `key`."""
    return AzureBackend(endpoint, AzureNamedKeyCredential(ACCOUNT, key), **{**FAST, **options})

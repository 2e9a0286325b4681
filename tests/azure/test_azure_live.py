"""Checks against a real Azure Batch account; skipped unless AZURE_BATCH_* variables are set.

They only read: nothing is created, so they cost nothing and need no clean-up. The whole sample on
a real account is the app's own run (``--backend azure``).
"""

from __future__ import annotations

import base64
import os
import secrets

import pytest

from jobprep_release.backends.azure import build_azure_backend
from jobprep_release.backends.errors import AuthenticationFailed, NotFound

REQUIRED = ("AZURE_BATCH_ENDPOINT", "AZURE_BATCH_ACCOUNT", "AZURE_BATCH_ACCESS_KEY")

pytestmark = [
    pytest.mark.azure,
    pytest.mark.skipif(
        not all(os.environ.get(name) for name in REQUIRED),
        reason=f"set {', '.join(REQUIRED)} to run against a real Batch account",
    ),
]


async def test_real_account_answers_reads() -> None:
    unknown = f"jobprep-live-{secrets.token_hex(4)}"
    async with build_azure_backend() as backend:
        assert await backend.find_job(unknown) is None
        with pytest.raises(NotFound) as pool_missing:
            await backend.get_pool(unknown)
        with pytest.raises(NotFound) as job_missing:
            await backend.get_job(unknown)
    assert pool_missing.value.code == "PoolNotFound"
    assert job_missing.value.code == "JobNotFound"


async def test_real_account_refuses_a_wrong_key() -> None:
    wrong_key = base64.b64encode(secrets.token_bytes(64)).decode()
    async with build_azure_backend(key=wrong_key, retry_total=0) as backend:
        with pytest.raises(AuthenticationFailed) as caught:
            await backend.get_pool("any")
    assert wrong_key not in caught.value.one_line()
    assert os.environ["AZURE_BATCH_ACCESS_KEY"] not in caught.value.one_line()

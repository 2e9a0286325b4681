"""`AzureBackend`'s failure paths: authentication, throttling, outages, and the key kept secret."""

from __future__ import annotations

import base64
import logging
import socket
import time

import pytest
from azure.core.credentials import AzureNamedKeyCredential

from jobprep_release.backends.azure import AzureBackend
from jobprep_release.backends.base import JobSpec, PoolSpec, TaskSpec
from jobprep_release.backends.errors import (
    AuthenticationFailed,
    BackendUnavailable,
    Conflict,
    InvalidRequest,
    JobPrepReleaseError,
    ServiceError,
)
from tests.azure.emulator import Emulator
from tests.azure.support import ACCOUNT, KEY, make_backend

POOL = "pool1"
WRONG_KEY = base64.b64encode(b"a-different-key-that-the-service-does-not-know").decode()


def assert_no_secret(error: BaseException, secret: str) -> None:
    texts = [str(error), repr(error)]
    if isinstance(error, JobPrepReleaseError):
        texts.append(error.one_line())
    assert all(secret not in text for text in texts)


async def test_wrong_key_raises_authentication_failed_without_the_key(
    emulator: Emulator,
) -> None:
    async with make_backend(emulator.url, key=WRONG_KEY) as backend:
        with pytest.raises(AuthenticationFailed) as caught:
            await backend.get_pool(POOL)

    error = caught.value
    assert error.code == "AuthenticationFailed"
    assert error.hint is not None
    assert "AZURE_BATCH_ACCOUNT" in error.hint and "AZURE_BATCH_ACCESS_KEY" in error.hint
    assert_no_secret(error, WRONG_KEY)
    assert error.__cause__ is not None
    assert_no_secret(error.__cause__, WRONG_KEY)
    assert len(emulator.requests) == 1, "authentication failures must not be retried"


async def test_401_raises_authentication_failed(emulator: Emulator, backend: AzureBackend) -> None:
    emulator.inject("GET", f"/pools/{POOL}", 401, code="AuthenticationFailed")
    with pytest.raises(AuthenticationFailed) as caught:
        await backend.get_pool(POOL)
    assert "401" in caught.value.message


def test_key_that_is_not_base64_is_refused_without_showing_it() -> None:
    bad_key = "not base64 at all!"
    with pytest.raises(AuthenticationFailed) as caught:
        AzureBackend("https://a.b.batch.azure.com", AzureNamedKeyCredential(ACCOUNT, bad_key))
    assert_no_secret(caught.value, bad_key)


def test_repr_does_not_show_the_key() -> None:
    backend = make_backend("http://127.0.0.1:1")
    assert KEY not in repr(backend)
    assert KEY not in repr(vars(backend).get("_redact"))


async def test_sdk_logs_do_not_show_the_key(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with make_backend(emulator.url, logging_enable=True) as backend:
        await backend.create_pool(PoolSpec(id=POOL))
    assert caplog.records, "expected the SDK to log the request"
    assert KEY not in caplog.text


async def test_throttled_read_waits_for_retry_after_then_succeeds(
    emulator: Emulator, backend: AzureBackend
) -> None:
    await backend.create_pool(PoolSpec(id=POOL))
    emulator.inject(
        "GET", f"/pools/{POOL}", 429, code="TooManyRequests", headers={"Retry-After": "1"}
    )

    started = time.monotonic()
    pool = await backend.get_pool(POOL)

    assert pool.id == POOL
    assert time.monotonic() - started >= 0.9
    assert len(emulator.calls("GET", f"/pools/{POOL}")) == 2


async def test_throttled_create_is_retried(emulator: Emulator, backend: AzureBackend) -> None:
    emulator.inject("POST", "/pools", 429, code="TooManyRequests", headers={"Retry-After": "0"})

    await backend.create_pool(PoolSpec(id=POOL))

    assert len(emulator.calls("POST", "/pools")) == 2
    assert [pool.id for pool in await emulator.service.list_pools()] == [POOL]


async def test_unavailable_then_success(emulator: Emulator, backend: AzureBackend) -> None:
    emulator.inject("POST", "/jobs", 503, times=2)
    emulator.inject("GET", "/jobs", 503, times=1)

    await backend.create_job(JobSpec(id="job1", pool_id=POOL))
    found = await backend.find_job("job1")

    assert found is not None
    assert len(emulator.calls("POST", "/jobs")) == 3
    assert len(emulator.calls("GET", "/jobs")) == 2


async def test_endless_unavailability_gives_up_after_bounded_retries(
    emulator: Emulator,
) -> None:
    emulator.inject("GET", f"/pools/{POOL}", 503, times=None)
    async with make_backend(emulator.url, retry_total=3) as backend:
        with pytest.raises(ServiceError) as caught:
            await backend.get_pool(POOL)
    assert "503" in caught.value.message
    assert len(emulator.calls("GET", f"/pools/{POOL}")) == 4


async def test_endless_failure_to_add_tasks_is_bounded_in_time(emulator: Emulator) -> None:
    endless = make_backend(emulator.url, add_tasks_timeout=1.0, retry_total=1000, retry_status=1000)
    async with endless as backend:
        await backend.create_job(JobSpec(id="job1", pool_id=POOL))
        emulator.inject("POST", "/jobs/job1/addtaskcollection", 500, times=None)
        started = time.monotonic()
        with pytest.raises(ServiceError, match="did not finish within"):
            await backend.add_tasks("job1", [TaskSpec(id="t1", command_line="true")])
    assert time.monotonic() - started < 5


async def test_failed_deletion_poll_raises_service_error(emulator: Emulator) -> None:
    async with make_backend(emulator.url, retry_total=0) as backend:
        await backend.create_pool(PoolSpec(id=POOL))
        emulator.inject("GET", f"/pools/{POOL}", 500, times=None)
        with pytest.raises(ServiceError) as caught:
            await backend.delete_pool(POOL)
    assert caught.value.code == "OperationFailed"


async def test_unreachable_service_raises_backend_unavailable_naming_it() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    async with make_backend(endpoint, retry_total=1) as backend:
        with pytest.raises(BackendUnavailable) as caught:
            await backend.get_pool(POOL)
    assert endpoint in caught.value.message
    assert_no_secret(caught.value, KEY)


async def test_other_conflict_codes_raise_conflict(
    emulator: Emulator, backend: AzureBackend
) -> None:
    emulator.inject("POST", "/pools", 409, code="PoolBeingDeleted")
    with pytest.raises(Conflict) as caught:
        await backend.create_pool(PoolSpec(id=POOL))
    assert caught.value.code == "PoolBeingDeleted"


async def test_bad_request_raises_invalid_request(
    emulator: Emulator, backend: AzureBackend
) -> None:
    emulator.inject("POST", "/pools", 400, code="InvalidPropertyValue")
    with pytest.raises(InvalidRequest) as caught:
        await backend.create_pool(PoolSpec(id=POOL))
    assert caught.value.code == "InvalidPropertyValue"


async def test_unexpected_status_raises_service_error(
    emulator: Emulator, backend: AzureBackend
) -> None:
    emulator.inject("GET", f"/pools/{POOL}", 501, code="NotImplemented")
    with pytest.raises(ServiceError) as caught:
        await backend.get_pool(POOL)
    assert caught.value.code == "NotImplemented"


async def test_403_raises_authentication_failed_and_is_not_retried(
    emulator: Emulator, backend: AzureBackend
) -> None:
    emulator.inject("GET", f"/pools/{POOL}", 403, code="AuthenticationFailed", times=None)
    with pytest.raises(AuthenticationFailed) as caught:
        await backend.get_pool(POOL)
    assert "403" in caught.value.message
    assert len(emulator.calls("GET", f"/pools/{POOL}")) == 1


async def test_slow_answer_is_waited_for(emulator: Emulator, backend: AzureBackend) -> None:
    await backend.create_pool(PoolSpec(id=POOL))
    emulator.inject("GET", f"/pools/{POOL}", delay=1.0)

    started = time.monotonic()
    pool = await backend.get_pool(POOL)

    assert pool.id == POOL
    assert time.monotonic() - started >= 0.9
    assert len(emulator.calls("GET", f"/pools/{POOL}")) == 1


async def test_answer_slower_than_the_call_timeout_raises_service_error(
    emulator: Emulator,
) -> None:
    async with make_backend(emulator.url, call_timeout=0.2, retry_total=0) as backend:
        await backend.create_pool(PoolSpec(id=POOL))
        emulator.inject("GET", f"/pools/{POOL}", delay=1.0)
        started = time.monotonic()
        with pytest.raises(ServiceError, match="did not finish within"):
            await backend.get_pool(POOL)
    assert time.monotonic() - started < 0.8

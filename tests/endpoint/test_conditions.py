"""Conditional requests through azure-batch 15's own keywords (``etag``/``match_condition``,
``if_modified_since``, ``if_unmodified_since``), against the endpoint over the core and the fake
executor (no engine).

Expected answers are the REST reference's: each header's "the operation will be performed only
if ..." (Get/Delete Pool, Get/Terminate Job, Get/Terminate Task, Get Task File and Get Node File
Properties), and "Specifying conditional headers": 412 with the Batch error code
``ConditionNotMet`` when it is not met, 304 Not Modified for a GET whose
``If-None-Match``/``If-Modified-Since`` is not met, ``If-Match`` deciding over
``If-Unmodified-Since`` and ``If-None-Match`` over ``If-Modified-Since``, any other pair 400
(azure-batch's exception policy raises an `HttpResponseError` subclass for each; the status is
what is checked). The files take only the time-based headers.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import pytest
from azure.batch import models
from azure.batch.aio import BatchClient
from azure.batch.models import _models as sdk_models
from azure.core import MatchConditions
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError

from jobprep_release.backends.base import JobState, PoolState, TaskState
from jobprep_release.backends.docker.core import FakeClock, FakeExecutor, FakeOutcome
from jobprep_release.backends.docker.rest import (
    EndpointSettings,
    RunningEndpoint,
    running_endpoint,
)
from jobprep_release.backends.docker.rest.wire import http_date
from jobprep_release.backends.errors import NotFound
from tests.core.harness import JOB, POOL, all_blocked, job_spec, pool_spec, tasks
from tests.endpoint.support import call

KEY = base64.b64encode(b"conditional-requests-key-0123456789").decode()
OTHER_ETAG = "0x8D0000000000001"
SECOND = timedelta(seconds=1)
STOP = sdk_models.BatchJobTerminateOptions(termination_reason="Stopped")
"""(azure-batch 15.1 sends no Content-Type, and fails, for a conditional Terminate Job without
options.)"""


@asynccontextmanager
async def _endpoint() -> AsyncIterator[tuple[RunningEndpoint, BatchClient, FakeClock]]:
    """A one-node pool and a job with one task that runs 10 clock seconds, printing a line."""
    clock = FakeClock()
    fake = FakeExecutor(clock, lambda start: FakeOutcome(duration=10, stdout=b"hi\n"))
    settings = EndpointSettings(account="condbatch", key=KEY, port=0, executor=fake, clock=clock)
    async with running_endpoint(settings) as running:
        credential = AzureNamedKeyCredential(running.account, running.key)
        async with BatchClient(running.url, credential, retry_total=0) as client:
            service = running.service
            assert service is not None
            await service.create_pool(pool_spec(1, image=None))
            for _ in range(3):
                await all_blocked()
            clock.advance(5)  # what is changed from now on is changed seconds later
            await service.create_job(job_spec())
            await service.add_tasks(JOB, tasks(1))
            for _ in range(3):
                await all_blocked()
            yield running, client, clock


def _not_met(error: HttpResponseError) -> None:
    assert error.status_code == 412
    assert error.error is not None and error.error.code == "ConditionNotMet"


async def _status(answer: Awaitable[object]) -> int:
    """The status of a call that must fail."""
    with pytest.raises(HttpResponseError) as raised:
        await answer
    return raised.value.status_code or 0


async def test_get_pool_honours_each_header() -> None:
    async with _endpoint() as (_, client, _):
        pool = await client.get_pool(POOL)
        etag, modified = pool.etag, pool.last_modified
        assert etag is not None and modified is not None
        same = await client.get_pool(POOL, etag=etag, match_condition=MatchConditions.IfNotModified)
        assert same.etag == etag
        with pytest.raises(HttpResponseError) as changed:
            await client.get_pool(
                POOL, etag=OTHER_ETAG, match_condition=MatchConditions.IfNotModified
            )
        _not_met(changed.value)
        with pytest.raises(HttpResponseError) as unchanged:
            await client.get_pool(POOL, etag=etag, match_condition=MatchConditions.IfModified)
        assert unchanged.value.status_code == 304
        raw = await call(client, "GET", f"/pools/{POOL}", headers={"If-None-Match": f'"{etag}"'})
        assert (raw.status, raw.headers["ETag"], raw.body) == (304, etag, b"")
        # Pool Exists (HEAD) takes them too.
        exists = await call(client, "HEAD", f"/pools/{POOL}", headers={"If-Match": OTHER_ETAG})
        assert exists.status == 412
        assert await client.pool_exists(
            POOL, etag=etag, match_condition=MatchConditions.IfNotModified
        )
        assert (
            await client.get_pool(POOL, etag=OTHER_ETAG, match_condition=MatchConditions.IfModified)
        ).id == POOL
        assert await _status(client.get_pool(POOL, if_modified_since=modified)) == 304
        assert (await client.get_pool(POOL, if_modified_since=modified - SECOND)).id == POOL
        with pytest.raises(HttpResponseError) as stale:
            await client.get_pool(POOL, if_unmodified_since=modified - SECOND)
        _not_met(stale.value)
        assert (await client.get_pool(POOL, if_unmodified_since=modified)).id == POOL


async def test_delete_pool_only_when_its_condition_holds() -> None:
    async with _endpoint() as (running, client, _):
        pool = await client.get_pool(POOL)
        with pytest.raises(HttpResponseError) as changed:
            await client.begin_delete_pool(
                POOL, etag=OTHER_ETAG, match_condition=MatchConditions.IfNotModified
            )
        _not_met(changed.value)
        # If-None-Match on a DELETE is 412 (not 304), If-None-Match: * too.
        with pytest.raises(HttpResponseError) as same:
            await client.begin_delete_pool(
                POOL, etag=pool.etag, match_condition=MatchConditions.IfModified
            )
        _not_met(same.value)
        missing = client.begin_delete_pool(POOL, match_condition=MatchConditions.IfMissing)
        assert await _status(missing) == 412
        assert running.service is not None
        assert (await running.service.get_pool(POOL)).state is PoolState.ACTIVE
        deletion = await client.begin_delete_pool(
            POOL, etag=pool.etag, match_condition=MatchConditions.IfNotModified
        )
        await deletion.result()
        with pytest.raises(NotFound):
            await running.service.get_pool(POOL)


async def test_job_and_task_conditions() -> None:
    async with _endpoint() as (running, client, clock):
        job = await client.get_job(JOB)
        task = await client.get_task(JOB, "task001")
        assert task.state == models.BatchTaskState.RUNNING
        unchanged = MatchConditions.IfModified
        assert await _status(client.get_job(JOB, etag=job.etag, match_condition=unchanged)) == 304
        same_task = client.get_task(JOB, "task001", etag=task.etag, match_condition=unchanged)
        assert await _status(same_task) == 304
        clock.advance(20)
        for _ in range(3):
            await all_blocked()
        done = await client.get_task(
            JOB, "task001", etag=task.etag, match_condition=MatchConditions.IfModified
        )
        assert done.state == models.BatchTaskState.COMPLETED and done.etag != task.etag
        with pytest.raises(HttpResponseError) as old:
            await client.terminate_task(
                JOB, "task001", etag=task.etag, match_condition=MatchConditions.IfNotModified
            )
        _not_met(old.value)
        with pytest.raises(HttpResponseError) as changed:
            await client.begin_terminate_job(
                JOB, STOP, etag=OTHER_ETAG, match_condition=MatchConditions.IfNotModified
            )
        _not_met(changed.value)
        service = running.service
        assert service is not None
        assert (await service.get_job(JOB)).state is JobState.ACTIVE
        assert (await service.get_task(JOB, "task001")).state is TaskState.COMPLETED
        path = f"/jobs/{JOB}/terminate"
        answer = await call(client, "POST", path, headers={"If-Match": f'"{job.etag}"'})
        assert answer.status == 202
        ended = await service.get_job(JOB)
        assert ended.state is not JobState.ACTIVE
        # As recorded from the service: the operation's address, the job's new ETag and time.
        assert answer.headers["DataServiceId"].endswith(path)
        assert answer.headers["ETag"] == ended.etag != job.etag
        assert "Last-Modified" in answer.headers


async def test_files_take_the_time_conditions_only() -> None:
    async with _endpoint() as (_, client, clock):
        clock.advance(20)
        for _ in range(3):
            await all_blocked()
        properties = await client.get_task_file_properties(JOB, "task001", "stdout.txt")
        written: datetime = properties.last_modified
        unchanged = client.download_task_file(
            JOB, "task001", "stdout.txt", if_modified_since=written
        )
        assert await _status(unchanged) == 304
        stream = await client.download_task_file(
            JOB, "task001", "stdout.txt", if_modified_since=written - SECOND
        )
        assert b"".join([chunk async for chunk in stream]) == b"hi\n"
        with pytest.raises(HttpResponseError) as stale:
            await client.get_task_file_properties(
                JOB, "task001", "stdout.txt", if_unmodified_since=written - SECOND
            )
        assert stale.value.status_code == 412
        answer = await call(
            client, "GET", f"/jobs/{JOB}/tasks/task001/files/stdout.txt", headers={"If-Match": "*"}
        )
        assert answer.status == 501 and answer.json()["code"] == "NotSupported"


async def test_which_header_decides_and_pairs_that_cannot_be_combined() -> None:
    async with _endpoint() as (_, client, _):
        pool = await client.get_pool(POOL)
        assert pool.etag is not None and pool.last_modified is not None
        path, before = f"/pools/{POOL}", http_date(pool.last_modified - SECOND)
        # If-Match decides: If-Unmodified-Since alone would fail.
        both = {"If-Match": pool.etag, "If-Unmodified-Since": before}
        assert (await call(client, "GET", path, headers=both)).status == 200
        # If-None-Match decides: If-Modified-Since alone would be 304.
        both = {"If-None-Match": OTHER_ETAG, "If-Modified-Since": http_date(pool.last_modified)}
        assert (await call(client, "GET", path, headers=both)).status == 200
        for pair in (
            {"If-Match": pool.etag, "If-None-Match": OTHER_ETAG},
            {"If-Match": pool.etag, "If-Modified-Since": before},
            {"If-None-Match": OTHER_ETAG, "If-Unmodified-Since": before},
        ):
            answer = await call(client, "GET", path, headers=pair)
            assert answer.status == 400, pair
            assert answer.json()["code"] == "MultipleConditionHeadersNotSupported"


async def test_a_missing_object_and_a_malformed_date() -> None:
    async with _endpoint() as (_, client, _):
        missing = await call(client, "GET", "/pools/nosuchpool", headers={"If-Match": "*"})
        assert missing.status == 404 and missing.json()["code"] == "PoolNotFound"
        bad = await call(client, "GET", f"/pools/{POOL}", headers={"If-Modified-Since": "soon"})
        assert bad.status == 400 and bad.json()["code"] == "InvalidHeaderValue"

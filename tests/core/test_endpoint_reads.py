"""Reads change nothing, seen through the endpoint over the core and the fake executor: clients
polling at different rates see the same ETags, times and history for the same state, a GET
repeated with no change in between answers the same body, and a completed task was last
``running`` (REST BatchTask previousState, previousStateTransitionTime)."""

from __future__ import annotations

import base64
from typing import Any

from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from jobprep_release.backends.docker.core import FakeClock, FakeExecutor, FakeOutcome
from jobprep_release.backends.docker.rest import EndpointSettings, running_endpoint
from tests.core.harness import JOB, all_blocked, job_spec, pool_spec, tasks

KEY = base64.b64encode(b"core-endpoint-reads-key-012345678").decode()
TASK = "task001"
SECONDS = 16
"""How long the test polls; the task runs 10 s of it."""


async def _settle() -> None:
    for _ in range(3):
        await all_blocked()


async def _task(client: BatchClient) -> dict[str, Any]:
    return dict((await client.get_task(JOB, TASK)).as_dict())


async def test_clients_polling_at_different_rates_see_one_history() -> None:
    clock = FakeClock()
    fake = FakeExecutor(clock, lambda start: FakeOutcome(duration=10))
    settings = EndpointSettings(account="fakebatch", key=KEY, port=0, executor=fake, clock=clock)
    async with running_endpoint(settings) as running:
        credential = AzureNamedKeyCredential(running.account, running.key)
        async with (
            BatchClient(running.url, credential) as fast,
            BatchClient(running.url, credential) as slow,
        ):
            service = running.service
            assert service is not None
            await service.create_pool(pool_spec(1, image=None))
            await _settle()
            await service.create_job(job_spec())
            await service.add_tasks(JOB, tasks(1))
            seen_fast: dict[int, dict[str, Any]] = {}
            seen_slow: dict[int, dict[str, Any]] = {}
            for second in range(SECONDS):
                await _settle()
                seen_fast[second] = await _task(fast)
                if second % 5 == 0:
                    seen_slow[second] = await _task(slow)
                    # No change between the two GETs: the same body.
                    assert await _task(fast) == seen_slow[second]
                clock.advance(1)
    for second, document in seen_slow.items():
        assert document == seen_fast[second], second
    etags = [seen_fast[second]["eTag"] for second in range(SECONDS)]
    states = [seen_fast[second]["state"] for second in range(SECONDS)]
    assert states[0] == "running" and states[-1] == "completed"
    # An ETag changes with the state, and only then.
    for before, after, old, new in zip(etags, etags[1:], states, states[1:], strict=False):
        assert (before != after) == (old != new), (old, new)
    done = seen_fast[SECONDS - 1]
    info = done["executionInfo"]
    assert done["previousState"] == "running"
    assert info["startTime"] <= done["previousStateTransitionTime"] <= info["endTime"]
    assert done["stateTransitionTime"] == info["endTime"]

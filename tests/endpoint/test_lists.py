"""Lists and deletions through the endpoint over the Batch core and the fake executor (no
engine): query parameters by name in any case and checked as the service checks them, filters
on the cheap per-item index agreeing with the rendered items, and ``deleting`` as the core
records it (the REST reference: List Tasks, Delete Pool, Delete Job)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import pytest
from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from jobprep_release.backends.base import (
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobSpec,
    PoolSpec,
    TaskConstraints,
    TaskSpec,
)
from jobprep_release.backends.docker.core import FakeClock, FakeExecutor, FakeOutcome, FakeStart
from jobprep_release.backends.docker.core.executor import NodeSetup
from jobprep_release.backends.docker.core.service import BatchService
from jobprep_release.backends.docker.rest import EndpointSettings, render, running_endpoint
from jobprep_release.backends.docker.rest.odata import Listing, Query, page
from tests.endpoint.support import Answer, call

KEY = base64.b64encode(b"lists-endpoint-test-key-0123456789").decode()
POOL, JOB = "listpool", "listjob"


def script(start: FakeStart) -> FakeOutcome:
    """task003 fails (exit 3), task004 and release tasks keep running (the fake clock does not
    move here), every other process exits 0 at once."""
    if start.task_id == "task003":
        return FakeOutcome(exit_code=3)
    if start.task_id in ("task004", "jobrelease"):
        return FakeOutcome(duration=3600)
    return FakeOutcome()


class HeldRemoval(FakeExecutor):
    """Node removal held until `release` is set, so a deletion stays under way."""

    def __init__(self) -> None:
        super().__init__(FakeClock(), script)
        self.release = anyio.Event()

    async def remove_node(self, node: NodeSetup) -> None:
        await self.release.wait()
        await super().remove_node(node)


@asynccontextmanager
async def served(count: int = 8) -> AsyncIterator[tuple[BatchClient, BatchService, HeldRemoval]]:
    """An endpoint whose job holds `count` tasks on a two-node pool with two slots each."""
    fake = HeldRemoval()
    settings = EndpointSettings(account="lists", key=KEY, port=0, executor=fake)
    async with running_endpoint(settings) as running:
        service = running.service
        assert isinstance(service, BatchService)
        pool = PoolSpec(id=POOL, target_dedicated_nodes=2, task_slots_per_node=2, image="fake")
        await service.create_pool(pool)
        prep, release = JobPreparationTaskSpec("/bin/prep"), JobReleaseTaskSpec("/bin/release")
        job = JobSpec(id=JOB, pool_id=POOL, preparation=prep, release=release)
        await service.create_job(job)
        specs = [
            TaskSpec(
                id=f"task{n:03}",
                command_line=f"/bin/work {n}",
                display_name=f"Work {n}" if n % 2 else None,
                constraints=TaskConstraints(max_task_retry_count=n % 3),
            )
            for n in range(1, count + 1)
        ]
        await service.add_tasks(JOB, specs)
        with anyio.fail_after(10):
            while (await service.get_task_counts(JOB)).completed < count - 1:
                await anyio.sleep(0.01)
        credential = AzureNamedKeyCredential(running.account, running.key)
        async with BatchClient(running.url, credential, retry_total=0) as client:
            yield client, service, fake


async def ids(client: BatchClient, path: str, **params: str) -> tuple[list[str], str | None]:
    answer = await call(client, "GET", path, params=params)
    assert answer.status == 200, answer.body
    body = answer.json()
    return [item["id"] for item in body["value"]], body.get("odata.nextLink")


def refused(answer: Answer, parameter: str) -> None:
    assert answer.status == 400, answer.body
    body = answer.json()
    assert body["code"] == "InvalidQueryParameterValue", body
    assert {"key": "QueryParameterName", "value": parameter} in body["values"], body


def time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def at(document: Any, path: str) -> Any:
    for part in path.split("/"):
        document = document.get(part) if isinstance(document, dict) else None
    return document


def indexed(document: dict[str, Any], paths: frozenset[str]) -> Iterator[tuple[str, Any]]:
    for path in sorted(paths):
        yield path, at(document, path)


async def test_each_index_holds_what_the_rendered_item_holds() -> None:
    async with served() as (_, service, _fake):
        job_spec = service.job_spec(JOB)
        views = await service.list_tasks(JOB)
        lazy_views = await service.task_views(JOB)
        # Every kind of task the index must agree on: succeeded, failed, running.
        assert {view.state.value for view in views} == {"completed", "running"}
        assert any(view.execution_info.failure_info for view in views)
        assert any(view.previous_state for view in views)
        for position, view in enumerate(views):
            spec = service.task_spec(JOB, view.id)
            rendered = render.task("http://h", JOB, POOL, view, spec, job_spec.max_task_retry_count)
            index = render.task_index(view, spec)
            assert dict(indexed(index, render.TASK_INDEXED)) == dict(
                indexed(rendered, render.TASK_INDEXED)
            ), view.id
            # The index a list page reads, made only as far as a filter reads it.
            lazy = render.TaskIndexAt(lazy_views, position)
            assert (lazy["id"], lazy["state"]) == (rendered["id"], rendered["state"]), view.id
            assert dict(indexed(dict(lazy), render.TASK_INDEXED)) == dict(
                indexed(rendered, render.TASK_INDEXED)
            ), view.id
        job = await service.get_job(JOB)
        assert dict(indexed(render.job_index(job, job_spec), render.JOB_INDEXED)) == dict(
            indexed(render.job("http://h", job, job_spec), render.JOB_INDEXED)
        )
        pool, pool_spec = await service.get_pool(POOL), service.pool_spec(POOL)
        assert dict(indexed(render.pool_index(pool, pool_spec), render.POOL_INDEXED)) == dict(
            indexed(render.pool("http://h", pool, pool_spec), render.POOL_INDEXED)
        )


async def test_max_results_in_any_case_pages_through_every_task_once() -> None:
    async with served() as (client, _, _fake):
        path = f"/jobs/{JOB}/tasks"
        seen, link = await ids(client, path, maxResults="3")
        assert seen == ["task001", "task002", "task003"] and link is not None
        pages = 1
        while link is not None:
            parts = urlsplit(link)
            assert parts.path == path
            page, link = await ids(client, path, **dict(parse_qsl(parts.query)))
            assert 1 <= len(page) <= 3
            seen += page
            pages += 1
        assert seen == [f"task{n:03}" for n in range(1, 9)] and pages == 3


async def test_filters_in_any_case_on_indexed_and_other_properties() -> None:
    async with served() as (client, _, _fake):
        path = f"/jobs/{JOB}/tasks"
        failed, _ = await ids(client, path, **{"$FILTER": "executionInfo/exitCode eq 3"})
        assert failed == ["task003"]
        running, _ = await ids(client, path, **{"$filter": "state eq 'running'"})
        assert running == ["task004"]
        # nodeInfo/poolId is not indexed: the filter is evaluated on the rendered task.
        placed, _ = await ids(client, path, **{"$filter": f"nodeInfo/poolId eq '{POOL}'"})
        assert placed == [f"task{n:03}" for n in range(1, 9)]
        # maxTaskRetryCount neither: 1 for task001, task004 and task007.
        retried, link = await ids(
            client, path, **{"$filter": "constraints/maxTaskRetryCount eq 1", "maxresults": "2"}
        )
        assert retried == ["task001", "task004"] and link is not None
        rest, link = await ids(client, path, **dict(parse_qsl(urlsplit(link).query)))
        assert rest == ["task007"] and link is None
        named, _ = await ids(client, path, **{"$filter": "startswith(displayName, 'work')"})
        assert named == ["task001", "task003", "task005", "task007"]
        # The id and the state are read from the records, without the other tasks' views.
        third, _ = await ids(client, path, **{"$filter": "endswith(id, '3') and state ne 'x'"})
        assert third == ["task003"]


async def test_select_keeps_the_named_properties_and_refuses_unknown_ones() -> None:
    async with served() as (client, _, _fake):
        path = f"/jobs/{JOB}/tasks"
        answer = await call(client, "GET", path, params={"$SELECT": "id,State", "maxresults": "2"})
        assert answer.status == 200, answer.body
        assert answer.json()["value"] == [
            {"id": "task001", "state": "completed"},
            {"id": "task002", "state": "completed"},
        ]
        one = await call(client, "GET", f"{path}/task004", params={"$select": "id,nodeInfo"})
        assert set(one.json()) - {"odata.metadata"} == {"id", "nodeInfo"}
        refused(await call(client, "GET", path, params={"$select": "id,noSuchThing"}), "$select")
        refused(await call(client, "GET", f"/pools/{POOL}", params={"$select": "x"}), "$select")


@pytest.mark.parametrize("value", ["0", "-5", "1001", "three", ""])
async def test_max_results_outside_1_to_1000_is_refused_naming_maxresults(value: str) -> None:
    async with served(1) as (client, _, _fake):
        answer = await call(client, "GET", f"/jobs/{JOB}/tasks", params={"maxResults": value})
        refused(answer, "maxresults")


@pytest.mark.parametrize("expression", ["state eq", "state 'x'", "(id eq 'a'", "id eq 'a' b"])
async def test_a_filter_syntax_error_is_refused_naming_the_filter(expression: str) -> None:
    async with served(1) as (client, _, _fake):
        answer = await call(client, "GET", f"/jobs/{JOB}/tasks", params={"$filter": expression})
        refused(answer, "$filter")


async def test_deleting_reads_from_the_delete_answer_until_the_object_is_gone() -> None:
    async with served(4) as (client, service, fake):
        accepted = await call(client, "DELETE", f"/jobs/{JOB}")
        assert accepted.status == 202
        job = (await call(client, "GET", f"/jobs/{JOB}")).json()
        assert (job["state"], job["previousState"]) == ("deleting", "active")
        listed = await call(client, "GET", "/jobs", params={"$filter": "state eq 'deleting'"})
        assert [item["id"] for item in listed.json()["value"]] == [JOB]
        again = await call(client, "DELETE", f"/jobs/{JOB}")
        assert again.status == 409 and again.json()["code"] == "JobBeingDeleted"
        terminate = await call(client, "POST", f"/jobs/{JOB}/terminate", body={})
        assert terminate.status == 409 and terminate.json()["code"] == "JobBeingDeleted"

        assert (await call(client, "DELETE", f"/pools/{POOL}")).status == 202
        pool = (await call(client, "GET", f"/pools/{POOL}")).json()
        assert pool["state"] == "deleting"
        assert time(pool["stateTransitionTime"]) > time(pool["creationTime"])
        pool_view = await service.get_pool(POOL)
        assert render.pool_index(pool_view, service.pool_spec(POOL)) == {
            path: at(pool, path) for path in render.POOL_INDEXED
        }
        again = await call(client, "DELETE", f"/pools/{POOL}")
        assert again.status == 409 and again.json()["code"] == "PoolBeingDeleted"
        resize = await call(
            client, "POST", f"/pools/{POOL}/resize", body={"targetDedicatedNodes": 1}
        )
        assert resize.status == 409 and resize.json()["code"] == "PoolBeingDeleted"
        # Removing the pool's nodes ends the job's release tasks there: both deletions end.
        fake.release.set()
        with anyio.fail_after(10):
            while (await call(client, "GET", f"/pools/{POOL}")).status != 404:
                await anyio.sleep(0.01)
        assert (await call(client, "GET", f"/jobs/{JOB}")).status == 404
        assert await service.list_pools() == []


def test_only_the_page_asked_for_is_rendered_when_the_filter_is_indexed() -> None:
    items = [{"id": f"t{n:02}", "state": "completed" if n % 2 else "active"} for n in range(40)]
    rendered: list[str] = []

    def render_one(item: dict[str, Any]) -> dict[str, Any]:
        rendered.append(item["id"])
        return {**item, "url": f"http://h/{item['id']}"}

    listing = Listing(items, render=render_one, index=dict, indexed=frozenset({"id", "state"}))
    query = Query("/jobs/j/tasks", {"$filter": "state eq 'completed'", "MaxResults": "3"})
    first = page(query, listing, "http://h")
    assert [item["id"] for item in first["value"]] == ["t01", "t03", "t05"]
    assert rendered == ["t01", "t03", "t05"]
    assert "$skiptoken=3" in first["odata.nextLink"]
    rendered.clear()
    last = page(Query("/jobs/j/tasks", {"$skipToken": "18"}), listing, "http://h")
    assert [item["id"] for item in last["value"]] == [f"t{n:02}" for n in range(18, 40)]
    assert rendered == [f"t{n:02}" for n in range(18, 40)] and "odata.nextLink" not in last
    rendered.clear()
    # A property the index lacks: items are rendered to be filtered, up to the page's end.
    query = Query("/jobs/j/tasks", {"$filter": "startswith(url, 'http://h/t0')", "maxresults": "2"})
    assert [item["id"] for item in page(query, listing, "http://h")["value"]] == ["t00", "t01"]
    assert rendered == ["t00", "t01", "t02"]

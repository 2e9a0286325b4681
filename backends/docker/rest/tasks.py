"""Routes for tasks: add one, add a collection (at most 100, a result per task), get, list
(``$filter``, ``$select``), update (its constraints), terminate, reactivate, delete."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from azure.batch import models

from jobprep_release.backends.base import JobState, Task, check_id
from jobprep_release.backends.docker.core.pace import Pace
from jobprep_release.backends.docker.core.rules import JOB_BEING_DELETED
from jobprep_release.backends.docker.rest import render, specs
from jobprep_release.backends.docker.rest.context import Context, base_url, context
from jobprep_release.backends.docker.rest.errors import RestError
from jobprep_release.backends.docker.rest.odata import (
    SLICE,
    Listing,
    Query,
    page_sliced,
)
from jobprep_release.backends.docker.rest.replies import (
    body,
    created,
    document,
    no_content,
    resource,
    updated,
)
from jobprep_release.backends.errors import Conflict, InvalidRequest, NotFound

routes = web.RouteTableDef()

MAX_TASKS_PER_REQUEST = 100


def _task_json(ctx: Context, base: str, job_id: str, view: Task) -> dict[str, Any]:
    spec = ctx.service.job_spec(job_id)
    return render.task(
        base,
        spec.id,
        spec.pool_id,
        view,
        ctx.service.task_spec(job_id, view.id),
        spec.max_task_retry_count,
    )


@routes.post("/jobs/{job}/tasks")
async def add_task(request: web.Request) -> web.Response:
    ctx, job_id = context(request), request.match_info["job"]
    spec = specs.task_spec(await body(request))
    await ctx.service.add_tasks(job_id, [spec])
    view = await ctx.service.get_task(job_id, spec.id)
    url = f"{base_url(request)}/jobs/{job_id}/tasks/{spec.id}"
    return created(url, view.etag, view.last_modified)


def _task_error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": {"lang": "en-US", "value": message}}


def _refusal(ctx: Context, job_id: str, task_id: str, seen: set[str]) -> dict[str, Any] | None:
    """Why the service would refuse this one task, before adding any (None: it would not)."""
    job = ctx.service.job_spec(job_id)
    folded = task_id.lower()
    try:
        check_id("task", task_id)
    except InvalidRequest as exc:
        return _task_error(exc.code or "InvalidPropertyValue", exc.message)
    for special, code in (
        (job.preparation, "TaskIdSameAsJobPreparationTask"),
        (job.release, "TaskIdSameAsJobReleaseTask"),
    ):
        if special is not None and special.id.lower() == folded:
            return _task_error(code, f"The task id {task_id} is the job's {special.id} task's.")
    if folded in seen:
        return _task_error("DuplicateTaskId", f"The task id {task_id} appears twice.")
    try:
        ctx.service.task_spec(job_id, task_id)
    except NotFound:
        return None
    return _task_error("TaskExists", "The specified task already exists.")


@routes.post("/jobs/{job}/addtaskcollection")
async def add_task_collection(request: web.Request) -> web.Response:
    ctx, job_id, base = context(request), request.match_info["job"], base_url(request)
    entries = specs.task_group(await body(request))
    if len(entries) > MAX_TASKS_PER_REQUEST:
        raise RestError(
            413,
            "RequestBodyTooLarge",
            f"The request holds {len(entries)} tasks; at most {MAX_TASKS_PER_REQUEST} can be "
            "added in one request.",
        )
    # Read in slices (100 tasks through azure-batch's models hold the loop 10-20 ms); the
    # checks and the adding are not sliced, so no other request comes between them.
    pace, task_specs = Pace(SLICE), []
    for index, entry in enumerate(entries):
        task_specs.append(specs.task_spec(entry, f"value[{index}]"))
        await pace.step()
    if (await ctx.service.get_job(job_id)).state is JobState.DELETING:
        raise Conflict(JOB_BEING_DELETED, code="JobBeingDeleted")
    results: list[dict[str, Any]] = []
    accepted = []
    seen: set[str] = set()
    for spec in task_specs:
        refusal = _refusal(ctx, job_id, spec.id, seen)
        seen.add(spec.id.lower())
        if refusal is not None:
            results.append({"status": "clienterror", "taskId": spec.id, "error": refusal})
        else:
            accepted.append(spec)
            results.append({"status": "success", "taskId": spec.id})
    if accepted:
        await ctx.service.add_tasks(job_id, accepted)
    for result in results:
        if result["status"] == "success":
            task_id = result["taskId"]
            etag, modified = render.version_of(await ctx.service.get_task(job_id, task_id))
            result.update(
                eTag=etag,
                lastModified=modified,
                location=f"{base}/jobs/{job_id}/tasks/{task_id}",
            )
    return document({"value": results})


@routes.get("/jobs/{job}/tasks")
async def list_tasks(request: web.Request) -> web.Response:
    ctx, base, job_id = context(request), base_url(request), request.match_info["job"]
    job = ctx.service.job_spec(job_id)
    views = await ctx.service.task_views(job_id)

    def render_at(position: int) -> dict[str, Any]:
        _, _, spec = views.head(position)
        return render.task(
            base, job.id, job.pool_id, views[position], spec, job.max_task_retry_count
        )

    # Rendered from the records as listed when the request came (a task deleted meanwhile is
    # still shown), in slices: a page of a large job never holds the event loop long.
    listing = Listing(
        views,
        render_at=render_at,
        index_at=lambda position: render.TaskIndexAt(views, position),
        indexed=render.TASK_INDEXED,
        names=render.names(models.BatchTask),
    )
    return document(await page_sliced(Query(request.path, request.query), listing, base))


@routes.get("/jobs/{job}/tasks/{task}")
async def get_task(request: web.Request) -> web.Response:
    ctx, job_id = context(request), request.match_info["job"]
    view = await ctx.service.get_task(job_id, request.match_info["task"])
    task = _task_json(ctx, base_url(request), job_id, view)
    return resource(request, task, models.BatchTask)


@routes.put("/jobs/{job}/tasks/{task}")
async def update_task(request: web.Request) -> web.Response:
    ctx, job_id, task_id = context(request), request.match_info["job"], request.match_info["task"]
    constraints = specs.task_update(await body(request))
    await ctx.service.update_task(job_id, task_id, constraints)
    view = await ctx.service.get_task(job_id, task_id)
    url = f"{base_url(request)}/jobs/{job_id}/tasks/{task_id}"
    return updated(200, url, view.etag, view.last_modified)


@routes.get("/jobs/{job}/tasks/{task}/subtasksinfo")
async def list_subtasks(request: web.Request) -> web.Response:
    """List Subtasks (REST: ``{"value": [BatchSubtask, ...]}``, not paged)."""
    ctx, job_id, task_id = context(request), request.match_info["job"], request.match_info["task"]
    job = await ctx.service.get_job(job_id)
    base = base_url(request)
    found = await ctx.service.list_subtasks(job_id, task_id)
    return document({"value": [render.subtask(base, job.pool_id, item) for item in found]})


@routes.post("/jobs/{job}/tasks/{task}/terminate")
async def terminate_task(request: web.Request) -> web.Response:
    ctx, job_id, task_id = context(request), request.match_info["job"], request.match_info["task"]
    specs.nothing(await body(request, optional=True), "Terminate Task")
    await ctx.service.terminate_task(job_id, task_id)
    return no_content()


@routes.post("/jobs/{job}/tasks/{task}/reactivate")
async def reactivate_task(request: web.Request) -> web.Response:
    ctx, job_id, task_id = context(request), request.match_info["job"], request.match_info["task"]
    specs.nothing(await body(request, optional=True), "Reactivate Task")
    await ctx.service.reactivate_task(job_id, task_id)
    return no_content()


@routes.delete("/jobs/{job}/tasks/{task}")
async def delete_task(request: web.Request) -> web.Response:
    ctx, job_id, task_id = context(request), request.match_info["job"], request.match_info["task"]
    await ctx.service.delete_task(job_id, task_id)
    return web.Response(status=200)

"""Routes for jobs: add, get, list (``$filter`` on id and state), update (PATCH) and replace
(PUT), disable and enable, delete, terminate, task counts, and the status of preparation and
release tasks per node."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from azure.batch import models

from jobprep_release.backends.base import ExecutionResult, TaskCounts, TaskState
from jobprep_release.backends.docker.rest import render, specs
from jobprep_release.backends.docker.rest.context import Context, base_url, context
from jobprep_release.backends.docker.rest.odata import Listing, Query, page
from jobprep_release.backends.docker.rest.replies import (
    accepted,
    body,
    created,
    document,
    resource,
    updated,
)

routes = web.RouteTableDef()


async def _job_json(ctx: Context, base: str, job_id: str) -> dict[str, Any]:
    view = await ctx.service.get_job(job_id)
    return render.job(base, view, ctx.service.job_spec(job_id))


@routes.post("/jobs")
async def add_job(request: web.Request) -> web.Response:
    ctx = context(request)
    spec = specs.job_spec(await body(request))
    await ctx.service.create_job(spec)
    view = await ctx.service.get_job(spec.id)
    return created(f"{base_url(request)}/jobs/{spec.id}", view.etag, view.last_modified)


@routes.get("/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    ctx, base = context(request), base_url(request)
    spec = ctx.service.job_spec
    listing = Listing(
        await ctx.service.list_jobs(),
        render=lambda view: render.job(base, view, spec(view.id)),
        index=lambda view: render.job_index(view, spec(view.id)),
        indexed=render.JOB_INDEXED,
        names=render.names(models.BatchJob),
    )
    return document(page(Query(request.path, request.query), listing, base))


@routes.get("/jobs/{job}")
async def get_job(request: web.Request) -> web.Response:
    ctx = context(request)
    job = await _job_json(ctx, base_url(request), request.match_info["job"])
    return resource(request, job, models.BatchJob)


async def _changed(request: web.Request, job_id: str, status: int = 200) -> web.Response:
    """The answer to a change of the job: its address, new ETag and time."""
    view = await context(request).service.get_job(job_id)
    url = f"{base_url(request)}/jobs/{job_id}"
    if status == 200:
        return updated(status, url, view.etag, view.last_modified)
    return accepted(url, view.etag, view.last_modified)


@routes.patch("/jobs/{job}")
async def update_job(request: web.Request) -> web.Response:
    job_id = request.match_info["job"]
    await context(request).service.update_job(job_id, specs.job_update(await body(request)))
    return await _changed(request, job_id)


@routes.put("/jobs/{job}")
async def replace_job(request: web.Request) -> web.Response:
    job_id, update = request.match_info["job"], specs.job_replacement(await body(request))
    await context(request).service.replace_job(job_id, update)
    return await _changed(request, job_id)


@routes.post("/jobs/{job}/disable")
async def disable_job(request: web.Request) -> web.Response:
    job_id, option = request.match_info["job"], specs.disable_option(await body(request))
    await context(request).service.disable_job(job_id, option)
    return await _changed(request, job_id, 202)


@routes.post("/jobs/{job}/enable")
async def enable_job(request: web.Request) -> web.Response:
    specs.nothing(await body(request, optional=True), "Enable Job")
    await context(request).service.enable_job(request.match_info["job"])
    return await _changed(request, request.match_info["job"], 202)


@routes.delete("/jobs/{job}")
async def delete_job(request: web.Request) -> web.Response:
    await context(request).service.begin_delete_job(request.match_info["job"])
    return accepted()


@routes.post("/jobs/{job}/terminate")
async def terminate_job(request: web.Request) -> web.Response:
    ctx, job_id = context(request), request.match_info["job"]
    reason = specs.terminate_reason(await body(request, optional=True))
    await ctx.service.terminate_job(job_id, reason)
    job = await ctx.service.get_job(job_id)  # the ETag and time of the change, as recorded
    return accepted(f"{base_url(request)}/jobs/{job_id}/terminate", job.etag, job.last_modified)


@routes.get("/jobs/{job}/taskcounts")
async def task_counts(request: web.Request) -> web.Response:
    ctx, job_id = context(request), request.match_info["job"]
    counts = await ctx.service.get_task_counts(job_id)
    slots = {"active": 0, "running": 0, "completed": 0, "succeeded": 0, "failed": 0}
    for task in await ctx.service.list_tasks(job_id):
        weight = ctx.service.task_spec(job_id, task.id).required_slots
        if task.state is TaskState.COMPLETED:
            slots["completed"] += weight
            success = task.execution_info.result is ExecutionResult.SUCCESS
            slots["succeeded" if success else "failed"] += weight
        elif task.state is TaskState.ACTIVE:
            slots["active"] += weight
        else:
            slots["running"] += weight
    return document(render.task_counts(counts, TaskCounts(**slots)))


@routes.get("/jobs/{job}/jobpreparationandreleasetaskstatus")
async def prep_release_status(request: web.Request) -> web.Response:
    ctx, job_id, base = context(request), request.match_info["job"], base_url(request)
    statuses = await ctx.service.list_prep_release_status(job_id)
    spec = ctx.service.job_spec(job_id)
    listing = Listing(
        statuses,
        render=lambda status: render.prep_release_status(base, status, spec),
        names=render.names(models.BatchJobPreparationAndReleaseTaskStatus),
    )
    return document(page(Query(request.path, request.query), listing, base))

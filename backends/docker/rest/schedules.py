"""Routes for job schedules: add, get, exists (HEAD), list (``$filter``, ``$select``), disable,
enable, terminate, delete, and the jobs a schedule created (List Jobs From Schedule)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from azure.batch import models

from jobprep_release.backends.base import JobSchedule
from jobprep_release.backends.docker.rest import render, specs
from jobprep_release.backends.docker.rest.context import Context, base_url, context
from jobprep_release.backends.docker.rest.odata import Listing, Query, page, select
from jobprep_release.backends.docker.rest.replies import (
    accepted,
    body,
    created,
    document,
    no_content,
)
from jobprep_release.backends.schema import results, shapes

routes = web.RouteTableDef()


def _json(ctx: Context, base: str, view: JobSchedule) -> dict[str, Any]:
    model = results.job_schedule_model(view, ctx.service.job_schedule_spec(view.id))
    model.url = f"{base}/jobschedules/{view.id}"
    if model.execution_info is not None and model.execution_info.recent_job is not None:
        model.execution_info.recent_job.url = f"{base}/jobs/{view.recent_job_id}"
    return shapes.as_json(model)


@routes.post("/jobschedules")
async def add_job_schedule(request: web.Request) -> web.Response:
    ctx = context(request)
    spec = specs.job_schedule_spec(await body(request))
    await ctx.service.create_job_schedule(spec)
    view = await ctx.service.get_job_schedule(spec.id)
    url = f"{base_url(request)}/jobschedules/{spec.id}"
    return created(url, view.etag, view.last_modified)


@routes.get("/jobschedules")
async def list_job_schedules(request: web.Request) -> web.Response:
    ctx, base = context(request), base_url(request)
    listing = Listing(
        await ctx.service.list_job_schedules(),
        render=lambda view: _json(ctx, base, view),
        names=render.names(models.BatchJobSchedule),
    )
    return document(page(Query(request.path, request.query), listing, base))


@routes.get("/jobschedules/{schedule}", allow_head=False)
async def get_job_schedule(request: web.Request) -> web.Response:
    ctx = context(request)
    view = await ctx.service.get_job_schedule(request.match_info["schedule"])
    schedule = _json(ctx, base_url(request), view)
    chosen = Query(request.path, request.query).select
    names = render.names(models.BatchJobSchedule)
    return document(select([schedule], chosen, names)[0], etag=view.etag)


@routes.route("HEAD", "/jobschedules/{schedule}")
async def job_schedule_exists(request: web.Request) -> web.Response:
    view = await context(request).service.get_job_schedule(request.match_info["schedule"])
    return web.Response(status=200, headers={"ETag": view.etag or ""})


@routes.get("/jobschedules/{schedule}/jobs")
async def list_jobs_from_schedule(request: web.Request) -> web.Response:
    ctx, base = context(request), base_url(request)
    spec = ctx.service.job_spec
    listing = Listing(
        await ctx.service.list_jobs_from_schedule(request.match_info["schedule"]),
        render=lambda view: render.job(base, view, spec(view.id)),
        index=lambda view: render.job_index(view, spec(view.id)),
        indexed=render.JOB_INDEXED,
        names=render.names(models.BatchJob),
    )
    return document(page(Query(request.path, request.query), listing, base))


_OPERATIONS = {
    "disable": ("Disable Job Schedule", 204),
    "enable": ("Enable Job Schedule", 204),
    "terminate": ("Terminate Job Schedule", 202),
}


@routes.post("/jobschedules/{schedule}/{operation:disable|enable|terminate}")
async def change_job_schedule(request: web.Request) -> web.Response:
    """Disable (204), Enable (204) or Terminate (202) Job Schedule: no body."""
    ctx, schedule_id = context(request), request.match_info["schedule"]
    operation = request.match_info["operation"]
    name, status = _OPERATIONS[operation]
    specs.nothing(await body(request, optional=True), name)
    change = {
        "disable": ctx.service.disable_job_schedule,
        "enable": ctx.service.enable_job_schedule,
        "terminate": ctx.service.terminate_job_schedule,
    }[operation]
    await change(schedule_id)
    if status == 204:
        return no_content()
    view = await ctx.service.get_job_schedule(schedule_id)
    url = f"{base_url(request)}/jobschedules/{schedule_id}"
    return accepted(url, view.etag, view.last_modified)


@routes.delete("/jobschedules/{schedule}")
async def delete_job_schedule(request: web.Request) -> web.Response:
    await context(request).service.delete_job_schedule(request.match_info["schedule"])
    return accepted()

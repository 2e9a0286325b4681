"""Routes for job schedules: Add, Get (and Exists: HEAD), List (``$filter``, ``$select``,
``maxresults``), Update (PATCH), Replace (PUT), Disable, Enable, Terminate, Delete, and List
Jobs from Job Schedule, answered with the statuses of the REST API reference (201, 200, 204,
202). The rules are the core's (`jobprep_release.backends.docker.core.schedules`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web
from azure.batch import models

from jobprep_release.backends.docker.rest import render
from jobprep_release.backends.docker.rest.context import Context, base_url, context
from jobprep_release.backends.docker.rest.errors import RestError
from jobprep_release.backends.docker.rest.odata import Listing, Query, page
from jobprep_release.backends.docker.rest.replies import accepted, body, created, document, resource
from jobprep_release.backends.docker.rest.specs import (
    OlderPoolProperties,
    auto_pool_older_properties,
    job_checks,
    read_body,
    with_auto_pool_image,
    with_older_pool_properties,
)
from jobprep_release.backends.docker.rest.wire import http_date
from jobprep_release.backends.schedules import JobScheduleSpec
from jobprep_release.backends.schema import schedules, shapes
from jobprep_release.backends.schema.shapes import PropertyError

routes = web.RouteTableDef()


def _checks(spec: JobScheduleSpec, asked: Mapping[str, Any]) -> None:
    """The job specification's pool, as Add Job checks a job's (an auto pool may live as long
    as the schedule: ``poolLifetimeOption`` ``jobschedule``)."""
    where = "jobSpecification"
    try:
        job_checks(spec.job_specification, asked.get(where) or {}, scheduled=True)
    except PropertyError as error:
        raise PropertyError(f"{where}.{error.path}", error.reason) from None


def _schedule_spec(document: Any, what: str, model: type[Any]) -> JobScheduleSpec:
    older = OlderPoolProperties()
    job = document.get("jobSpecification") if isinstance(document, Mapping) else None
    if isinstance(job, Mapping):
        job, older = auto_pool_older_properties(job, "jobSpecification")
        document = {**document, "jobSpecification": job}
    spec: JobScheduleSpec = read_body(
        model,
        document,
        schedules.job_schedule_spec,
        schedules.create_options,
        what,
        check=_checks,
    )
    job_spec = with_older_pool_properties(spec.job_specification, older)
    return replace(spec, job_specification=with_auto_pool_image(job_spec))


def _required(document: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if document.get(name) is None:
            raise RestError(
                400,
                "MissingRequiredProperty",
                "A required property was not specified in the request body.",
                [("PropertyName", name)],
            )


async def _json(ctx: Context, base: str, schedule_id: str) -> dict[str, Any]:
    view = await ctx.service.get_job_schedule(schedule_id)
    model = schedules.job_schedule_model(view, ctx.service.job_schedule_spec(schedule_id), base)
    return shapes.as_json(model)


def _changed_answer(status: int, url: str, etag: str | None, modified: Any) -> web.Response:
    headers = {"DataServiceId": url}
    if etag is not None:
        headers["ETag"] = etag
    if modified is not None:
        headers["Last-Modified"] = http_date(modified)
    return web.Response(status=status, headers=headers)


@routes.post("/jobschedules")
async def add_job_schedule(request: web.Request) -> web.Response:
    ctx, base = context(request), base_url(request)
    document = await body(request)
    _required(document, "id", "schedule", "jobSpecification")
    spec = _schedule_spec(document, "Add Job Schedule", models.BatchJobScheduleCreateOptions)
    await ctx.service.create_job_schedule(spec)
    view = await ctx.service.get_job_schedule(spec.id)
    return created(f"{base}/jobschedules/{spec.id}", view.etag, view.last_modified)


@routes.get("/jobschedules")
async def list_job_schedules(request: web.Request) -> web.Response:
    ctx, base = context(request), base_url(request)
    spec = ctx.service.job_schedule_spec
    listing = Listing(
        await ctx.service.list_job_schedules(),
        render=lambda view: shapes.as_json(schedules.job_schedule_model(view, spec(view.id), base)),
        names=render.names(models.BatchJobSchedule),
    )
    return document(page(Query(request.path, request.query), listing, base))


@routes.get("/jobschedules/{schedule}")
async def get_job_schedule(request: web.Request) -> web.Response:
    ctx = context(request)
    found = await _json(ctx, base_url(request), request.match_info["schedule"])
    return resource(request, found, models.BatchJobSchedule)


async def _update(request: web.Request, *, replace_all: bool) -> web.Response:
    ctx, schedule_id = context(request), request.match_info["schedule"]
    document = await body(request)
    current = ctx.service.job_schedule_spec(schedule_id)
    fixed = {"id": current.id, "displayName": current.display_name}
    for name, value in fixed.items():
        sent = document.get(name)
        if sent is not None and str(sent).lower() != str(value).lower():
            raise RestError(
                400,
                "PropertyCannotBeUpdated",
                "A property that cannot be updated was specified as part of the request body.",
                [("PropertyName", name)],
            )
    document = {name: value for name, value in document.items() if name not in fixed}
    if replace_all:
        _required(document, "schedule", "jobSpecification")
        asked = {**document, "id": current.id}
        spec = _schedule_spec(asked, "Replace Job Schedule", models.BatchJobScheduleCreateOptions)
    else:
        placeholders = {"schedule": {}, "jobSpecification": {"poolInfo": {"poolId": "-"}}}
        asked = {"id": current.id, **placeholders, **document}
        given = _schedule_spec(asked, "Update Job Schedule", models.BatchJobScheduleCreateOptions)
        spec = replace(
            current,
            schedule=given.schedule if "schedule" in document else current.schedule,
            job_specification=(
                given.job_specification
                if "jobSpecification" in document
                else current.job_specification
            ),
            metadata=given.metadata if "metadata" in document else current.metadata,
        )
    await ctx.service.update_job_schedule(schedule_id, spec, replace_all=replace_all)
    view = await ctx.service.get_job_schedule(schedule_id)
    url = f"{base_url(request)}/jobschedules/{schedule_id}"
    return _changed_answer(200, url, view.etag, view.last_modified)


@routes.patch("/jobschedules/{schedule}")
async def update_job_schedule(request: web.Request) -> web.Response:
    return await _update(request, replace_all=False)


@routes.put("/jobschedules/{schedule}")
async def replace_job_schedule(request: web.Request) -> web.Response:
    return await _update(request, replace_all=True)


async def _state_change(request: web.Request, status: int, operation: str) -> web.Response:
    ctx, schedule_id = context(request), request.match_info["schedule"]
    await getattr(ctx.service, f"{operation}_job_schedule")(schedule_id)
    view = await ctx.service.get_job_schedule(schedule_id)
    url = f"{base_url(request)}{request.path}"
    return _changed_answer(status, url, view.etag, view.last_modified)


@routes.post("/jobschedules/{schedule}/disable")
async def disable_job_schedule(request: web.Request) -> web.Response:
    return await _state_change(request, 204, "disable")


@routes.post("/jobschedules/{schedule}/enable")
async def enable_job_schedule(request: web.Request) -> web.Response:
    return await _state_change(request, 204, "enable")


@routes.post("/jobschedules/{schedule}/terminate")
async def terminate_job_schedule(request: web.Request) -> web.Response:
    return await _state_change(request, 202, "terminate")


@routes.delete("/jobschedules/{schedule}")
async def delete_job_schedule(request: web.Request) -> web.Response:
    await context(request).service.begin_delete_job_schedule(request.match_info["schedule"])
    return accepted()


@routes.get("/jobschedules/{schedule}/jobs")
async def list_jobs_from_schedule(request: web.Request) -> web.Response:
    ctx, base = context(request), base_url(request)
    spec = ctx.service.job_spec
    listing = Listing(
        await ctx.service.list_schedule_jobs(request.match_info["schedule"]),
        render=lambda view: render.job(base, view, spec(view.id)),
        index=lambda view: render.job_index(view, spec(view.id)),
        indexed=render.JOB_INDEXED,
        names=render.names(models.BatchJob),
    )
    return document(page(Query(request.path, request.query), listing, base))

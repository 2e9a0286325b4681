"""Routes for pools and their compute nodes: add, update, replace properties, get, list, delete,
resize, stop resize, remove nodes, node counts; enable, disable and evaluate autoscale; list,
get, reboot, reimage nodes, disable/enable their scheduling, upload their Batch service logs,
and the endpoint's own Preempt Node (spot nodes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from azure.batch import models

from jobprep_release.backends.base import PoolUpdate, TaskState
from jobprep_release.backends.docker.core.autoscaling import FormulaRefused
from jobprep_release.backends.docker.rest import render, specs
from jobprep_release.backends.docker.rest.context import Context, base_url, context
from jobprep_release.backends.docker.rest.errors import RestError
from jobprep_release.backends.docker.rest.interface import EndpointService
from jobprep_release.backends.docker.rest.odata import Listing, Query, page, select
from jobprep_release.backends.docker.rest.replies import (
    accepted,
    body,
    created,
    document,
    ok,
    resource,
    updated,
)
from jobprep_release.backends.docker.rest.wire import http_date
from jobprep_release.backends.schema import results, shapes

routes = web.RouteTableDef()

_TERMINATE = "terminate"


async def _pool_json(ctx: Context, base: str, pool_id: str) -> dict[str, Any]:
    view = await ctx.service.get_pool(pool_id)
    return render.pool(base, view, ctx.service.pool_spec(pool_id))


@routes.post("/pools")
async def add_pool(request: web.Request) -> web.Response:
    ctx = context(request)
    spec = specs.pool_spec(await body(request))
    try:
        await ctx.service.create_pool(spec)
    except FormulaRefused as error:
        raise _formula_refused(error) from None
    view = await ctx.service.get_pool(spec.id)
    return created(f"{base_url(request)}/pools/{spec.id}", view.etag, view.last_modified)


@routes.patch("/pools/{pool}")
async def update_pool(request: web.Request) -> web.Response:
    ctx, pool_id = context(request), request.match_info["pool"]
    update = specs.pool_update(await body(request))
    await ctx.service.get_pool(pool_id)
    await ctx.service.update_pool(pool_id, update)
    pool = await ctx.service.get_pool(pool_id)
    return updated(200, f"{base_url(request)}/pools/{pool_id}", pool.etag, pool.last_modified)


@routes.post("/pools/{pool}/updateproperties")
async def replace_pool_properties(request: web.Request) -> web.Response:
    ctx, pool_id = context(request), request.match_info["pool"]
    start_task, metadata, older = specs.pool_replacement(await body(request))
    await ctx.service.get_pool(pool_id)
    await ctx.service.replace_pool_properties(pool_id, start_task, metadata)
    # "If omitted, the existing setting is default" (2024-07-01.20.0's
    # PoolUpdatePropertiesParameter): a mode the pool has goes back to default.
    had = ctx.service.pool_spec(pool_id).target_node_communication_mode
    mode = older.target_node_communication_mode or (had and "default")
    if mode != had:
        await ctx.service.update_pool(pool_id, PoolUpdate(target_node_communication_mode=mode))
    pool = await ctx.service.get_pool(pool_id)
    url = f"{base_url(request)}/pools/{pool_id}/updateproperties"
    return updated(204, url, pool.etag, pool.last_modified)


@routes.get("/pools")
async def list_pools(request: web.Request) -> web.Response:
    ctx, base = context(request), base_url(request)
    spec = ctx.service.pool_spec
    listing = Listing(
        await ctx.service.list_pools(),
        render=lambda view: render.pool(base, view, spec(view.id)),
        index=lambda view: render.pool_index(view, spec(view.id)),
        indexed=render.POOL_INDEXED,
        names=render.names(models.BatchPool),
    )
    return document(page(Query(request.path, request.query), listing, base))


@routes.get("/pools/{pool}")
async def get_pool(request: web.Request) -> web.Response:
    ctx = context(request)
    pool = await _pool_json(ctx, base_url(request), request.match_info["pool"])
    return resource(request, pool, models.BatchPool)


@routes.delete("/pools/{pool}")
async def delete_pool(request: web.Request) -> web.Response:
    await context(request).service.begin_delete_pool(request.match_info["pool"])
    return accepted()


async def _pool_changed(
    request: web.Request, operation: str, change: Callable[[EndpointService, str], Awaitable[None]]
) -> web.Response:
    """Run `change` on the pool the request names (404 first when it does not exist) and
    answer 202 with the operation's address and the pool's new ETag and time, as recorded."""
    ctx, pool_id = context(request), request.match_info["pool"]
    await ctx.service.get_pool(pool_id)
    await change(ctx.service, pool_id)
    pool = await ctx.service.get_pool(pool_id)
    url = f"{base_url(request)}/pools/{pool_id}/{operation}"
    return accepted(url, pool.etag, pool.last_modified)


@routes.post("/pools/{pool}/resize")
async def resize_pool(request: web.Request) -> web.Response:
    asked = specs.resize(await body(request))
    return await _pool_changed(
        request,
        "resize",
        lambda service, pool_id: service.set_pool_targets(
            pool_id,
            asked.target_dedicated_nodes,
            asked.target_low_priority_nodes,
            resize_timeout=asked.resize_timeout,
            deallocation=asked.deallocation,
        ),
    )


@routes.post("/pools/{pool}/stopresize")
async def stop_resize(request: web.Request) -> web.Response:
    specs.nothing(await body(request, optional=True), "Stop Pool Resize")
    return await _pool_changed(
        request, "stopresize", lambda service, pool_id: service.stop_pool_resize(pool_id)
    )


@routes.post("/pools/{pool}/removenodes")
async def remove_nodes(request: web.Request) -> web.Response:
    asked = specs.removal(await body(request))
    return await _pool_changed(
        request,
        "removenodes",
        lambda service, pool_id: service.remove_nodes(
            pool_id,
            asked.node_ids,
            resize_timeout=asked.resize_timeout,
            deallocation=asked.deallocation,
        ),
    )


@routes.get("/supportedimages")
async def list_supported_images(request: web.Request) -> web.Response:
    ctx, base = context(request), base_url(request)
    images = [
        shapes.as_json(results.supported_image_model(image))
        for image in await ctx.service.list_supported_images()
    ]
    listing = Listing(images, names=render.names(models.BatchSupportedImage))
    return document(page(Query(request.path, request.query), listing, base))


@routes.get("/nodecounts")
async def list_pool_node_counts(request: web.Request) -> web.Response:
    ctx, base = context(request), base_url(request)
    entries = [render.node_counts(counts) for counts in await ctx.service.list_pool_node_counts()]
    listing = Listing(entries, names=render.names(models.BatchPoolNodeCounts))
    return document(page(Query(request.path, request.query), listing, base))


async def _changed(request: web.Request, pool_id: str) -> web.Response:
    """200 with the pool's address, ETag and time, as the service answers Enable and Disable
    Pool Auto Scale (its recorded answers: no body)."""
    pool = await context(request).service.get_pool(pool_id)
    headers = {"DataServiceId": f"{base_url(request)}{request.path}"}
    if pool.etag is not None:
        headers["ETag"] = pool.etag
    if pool.last_modified is not None:
        headers["Last-Modified"] = http_date(pool.last_modified)
    return web.Response(status=200, headers=headers)


def _formula_refused(error: FormulaRefused) -> RestError:
    """The service's answer to a formula it refuses: 400, its code and sentence, and the
    ``Message`` value saying where and why."""
    return RestError(400, error.code or "", error.sentence, error.values)


@routes.post("/pools/{pool}/enableautoscale")
async def enable_auto_scale(request: web.Request) -> web.Response:
    ctx, pool_id = context(request), request.match_info["pool"]
    asked = specs.enable_auto_scale(await body(request))
    try:
        await ctx.service.enable_auto_scale(pool_id, asked.formula, asked.interval)
    except FormulaRefused as error:
        raise _formula_refused(error) from None
    return await _changed(request, pool_id)


@routes.post("/pools/{pool}/disableautoscale")
async def disable_auto_scale(request: web.Request) -> web.Response:
    pool_id = request.match_info["pool"]
    await context(request).service.disable_auto_scale(pool_id)
    return await _changed(request, pool_id)


@routes.post("/pools/{pool}/evaluateautoscale")
async def evaluate_auto_scale(request: web.Request) -> web.Response:
    ctx, pool_id = context(request), request.match_info["pool"]
    formula = specs.evaluate_auto_scale(await body(request))
    try:
        run = await ctx.service.evaluate_auto_scale(pool_id, formula)
    except FormulaRefused as error:
        raise _formula_refused(error) from None
    answer = document(shapes.as_json(results.auto_scale_run_model(run), defaults=False))
    answer.headers["DataServiceId"] = f"{base_url(request)}{request.path}"
    return answer


# --- nodes -----------------------------------------------------------------------------------


async def _nodes_json(ctx: Context, base: str, pool_id: str) -> list[dict[str, Any]]:
    await ctx.service.get_pool(pool_id)  # PoolNotFound first; takes over a pool known by labels
    views = await ctx.service.list_nodes(pool_id)
    spec = ctx.service.pool_spec(pool_id)
    return [render.node(base, spec.id, view, spec) for view in views]


@routes.get("/pools/{pool}/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    ctx, base = context(request), base_url(request)
    nodes = await _nodes_json(ctx, base, request.match_info["pool"])
    listing = Listing(nodes, names=render.names(models.BatchNode))
    return document(page(Query(request.path, request.query), listing, base))


@routes.get("/pools/{pool}/nodes/{node}")
async def get_node(request: web.Request) -> web.Response:
    ctx, pool_id, node_id = context(request), request.match_info["pool"], request.match_info["node"]
    nodes = await _nodes_json(ctx, base_url(request), pool_id)
    await ctx.service.get_node(pool_id, node_id)  # NodeNotFound when it is not in the pool
    (node,) = [node for node in nodes if node["id"] == node_id]
    chosen = Query(request.path, request.query).select
    return document(select([node], chosen, render.names(models.BatchNode))[0])


async def _end_tasks_on(ctx: Context, node_id: str) -> None:
    """Terminate every task running on the node (the ``terminate`` reboot/reimage option)."""
    for job in await ctx.service.list_jobs():
        for task in await ctx.service.list_tasks(job.id):
            if task.node_id == node_id and task.state in (TaskState.RUNNING, TaskState.PREPARING):
                await ctx.service.terminate_task(job.id, task.id)


@routes.post("/pools/{pool}/nodes/{node}/reboot")
async def reboot_node(request: web.Request) -> web.Response:
    ctx, pool_id, node_id = context(request), request.match_info["pool"], request.match_info["node"]
    option = specs.reboot_option(await body(request, optional=True))
    await ctx.service.get_pool(pool_id)
    await ctx.service.get_node(pool_id, node_id)
    if option == _TERMINATE:
        await _end_tasks_on(ctx, node_id)
    await ctx.service.reboot_node(pool_id, node_id)
    return accepted(f"{base_url(request)}/pools/{pool_id}/nodes/{node_id}/reboot")


@routes.post("/pools/{pool}/nodes/{node}/reimage")
async def reimage_node(request: web.Request) -> web.Response:
    ctx, pool_id, node_id = context(request), request.match_info["pool"], request.match_info["node"]
    option = specs.reimage_option(await body(request, optional=True))
    await ctx.service.get_pool(pool_id)
    await ctx.service.get_node(pool_id, node_id)
    if option == _TERMINATE:
        await _end_tasks_on(ctx, node_id)
    await ctx.service.reimage_node(pool_id, node_id)
    return accepted(f"{base_url(request)}/pools/{pool_id}/nodes/{node_id}/reimage")


@routes.post("/pools/{pool}/nodes/{node}/uploadbatchservicelogs")
async def upload_node_logs(request: web.Request) -> web.Response:
    ctx, pool_id, node_id = context(request), request.match_info["pool"], request.match_info["node"]
    asked = specs.logs_upload(await body(request))
    result = await ctx.service.upload_node_logs(pool_id, node_id, asked)
    return document(
        {
            "virtualDirectoryName": result.virtual_directory_name,
            "numberOfFilesUploaded": result.number_of_files_uploaded,
        }
    )


@routes.post("/pools/{pool}/nodes/{node}/disablescheduling")
async def disable_scheduling(request: web.Request) -> web.Response:
    ctx, pool_id, node_id = context(request), request.match_info["pool"], request.match_info["node"]
    option = specs.disable_scheduling_option(await body(request, optional=True))
    await ctx.service.get_pool(pool_id)
    await ctx.service.disable_node_scheduling(pool_id, node_id, option)
    return ok(f"{base_url(request)}/pools/{pool_id}/nodes/{node_id}/disablescheduling")


@routes.post("/pools/{pool}/nodes/{node}/enablescheduling")
async def enable_scheduling(request: web.Request) -> web.Response:
    ctx, pool_id, node_id = context(request), request.match_info["pool"], request.match_info["node"]
    specs.nothing(await body(request, optional=True), "Enable Node Scheduling")
    await ctx.service.get_pool(pool_id)
    await ctx.service.enable_node_scheduling(pool_id, node_id)
    return ok(f"{base_url(request)}/pools/{pool_id}/nodes/{node_id}/enablescheduling")


@routes.post("/pools/{pool}/nodes/{node}/preempt")
async def preempt_node(request: web.Request) -> web.Response:
    """The endpoint's own operation (no Batch API has it): evict a spot/low-priority node as
    Azure does when it reclaims the VM; 202."""
    ctx, pool_id, node_id = context(request), request.match_info["pool"], request.match_info["node"]
    specs.nothing(await body(request, optional=True), "Preempt Node")
    await ctx.service.get_pool(pool_id)
    await ctx.service.preempt_node(pool_id, node_id)
    return accepted(f"{base_url(request)}/pools/{pool_id}/nodes/{node_id}")

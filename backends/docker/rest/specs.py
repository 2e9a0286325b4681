"""Request bodies to specs: Add Pool, Add Job, Add Task and every other operation's body (Update
Pool, Replace Pool Properties, Resize Pool, Terminate Job, Reboot and Reimage Node, Add Task
Collection, Terminate Task) through azure-batch's models (`jobprep_release.backends.schema`),
every property either kept or refused.

Each body is checked against its SDK model (400 ``MissingRequiredProperty`` or
``InvalidPropertyValue`` naming the property's path), read into a spec by the shared mapping,
and mapped back (spec to SDK create options, with the service's defaults). Whatever the request
holds that the round trip does not reproduce is a property the Docker service would drop: it is
refused with 501 ``NotSupported`` naming its path (``virtualMachineConfiguration.osDisk``). So a
property is either honoured, and returned by GET as sent, or refused; no list of properties is
kept here.

A pool's node image: an ``imageReference`` whose ``virtualMachineImageId`` is not an Azure
resource id (does not start with ``/``) names a Docker image (``debian:bookworm-slim``); any other
image reference runs on the endpoint's default node image.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, TypeVar

from azure.batch import models
from azure.batch._utils.model_base import Model as SdkModel
from azure.batch.models import _models as sdk_models

from jobprep_release.backends.base import (
    DEFAULT_RESIZE_TIMEOUT,
    DisableJobOption,
    DisableSchedulingOption,
    ImageReference,
    JobSpec,
    JobUpdate,
    NodeDeallocationOption,
    NodeLogsRequest,
    PoolLifetimeOption,
    PoolSpec,
    PoolUpdate,
    StartTaskSpec,
    TaskConstraints,
    TaskSpec,
)
from jobprep_release.backends.docker.core import rules
from jobprep_release.backends.docker.rest.errors import RestError, not_supported
from jobprep_release.backends.schema import requests, shapes
from jobprep_release.backends.schema.shapes import PropertyError

S = TypeVar("S")


def _refusal(error: PropertyError) -> RestError:
    values = [("PropertyName", error.path)]
    if error.reason is not None:
        values.append(("Reason", error.reason))
    status = 400
    return RestError(status, error.code or "InvalidPropertyValue", error.message, values)


def read_body(
    model: type[Any],
    document: Any,
    read: Callable[[Any], S],
    write: Callable[[S], Any],
    what: str,
    path: str = "",
    check: Callable[[S, Mapping[str, Any]], None] | None = None,
) -> S:
    """`document` as a spec, through `model` (the request's SDK model): read by `read`,
    reproduced by `write`; 400 ``InvalidPropertyValue`` or ``MissingRequiredProperty`` for a
    value of the wrong type or outside the service's limits (`requests.check_limits`), 501
    ``NotSupported`` naming each property `write` does not reproduce (one `read` drops)."""
    try:
        asked = shapes.conform(model, document, path)
        requests.check_limits(model, asked, path)
        spec = read(model(asked))
        kept = shapes.with_defaults(model, write(spec).as_dict())
        dropped = shapes.unreproduced(model, asked, kept)
        if dropped:
            where = ", ".join(shapes.join(path, name) for name in dropped)
            error = not_supported(f"{what} propert{'y' if len(dropped) == 1 else 'ies'} {where}")
            error.values += tuple(("PropertyName", name) for name in dropped)
            raise error
        if check is not None:
            check(spec, asked)
    except PropertyError as exc:
        raise _refusal(exc) from None
    return spec


_SOURCES = ("httpUrl", "storageContainerUrl", "autoStorageContainerName")


def _resource_files_have_urls(document: Mapping[str, Any], path: str) -> None:
    """Every resource file kept has exactly one source (``httpUrl``, ``storageContainerUrl``,
    ``autoStorageContainerName``) and, with ``httpUrl``, its ``filePath``."""
    for name, value in document.items():
        where = shapes.join(path, name)
        if name == "resourceFiles" and isinstance(value, list):
            for index, item in enumerate(value):
                given = [source for source in _SOURCES if item.get(source)]
                if not given:
                    raise PropertyError(f"{where}[{index}].httpUrl")
                if len(given) > 1:
                    raise PropertyError(
                        f"{where}[{index}].{given[1]}",
                        f"only one of {', '.join(_SOURCES)} may be specified",
                    )
                if item.get("httpUrl") and not item.get("filePath"):
                    raise PropertyError(f"{where}[{index}].filePath")
        elif isinstance(value, Mapping):
            _resource_files_have_urls(value, where)


# --- pools -----------------------------------------------------------------------------------


_IMAGE_RESOURCE_ID = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/"
    r"(?:images/[^/]+|galleries/[^/]+/images/[^/]+(?:/versions/[^/]+)?)",
    re.IGNORECASE,
)
_IMAGE_ID_FORMS = (
    "The specified resource id must be of the format /subscriptions/{subscriptionId}/"
    "resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/images/{imageName}, "
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
    "Microsoft.Compute/galleries/{galleryName}/images/{galleryImageName}/versions/"
    "{galleryImageVersionName}, or /subscriptions/{subscriptionId}/resourceGroups/"
    "{resourceGroupName}/providers/Microsoft.Compute/galleries/{galleryName}/images/"
    "{galleryImageName}"
)
"""An Azure image id (a path) as the service accepts it, and its refusal's reason (its
recorded answer to a malformed one)."""


_NAT_PATH = "networkConfiguration.endpointConfiguration.inboundNATPools"
MIN_FRONTEND_PORTS = 40


def _check_nat_pools(spec: PoolSpec) -> None:
    """The rules the REST reference sets across a pool's inbound NAT pools: names and backend
    ports unique, each frontend range at least 40 ports, no two ranges overlapping."""
    seen: list[tuple[int, int]] = []
    for index, nat in enumerate(spec.inbound_nat_pools):
        where = f"{_NAT_PATH}[{index}]"
        others = spec.inbound_nat_pools[:index]
        if any(other.name.lower() == nat.name.lower() for other in others):
            raise PropertyError(f"{where}.name", "names must be unique in the pool")
        if any(other.backend_port == nat.backend_port for other in others):
            raise PropertyError(f"{where}.backendPort", "backend ports must be unique")
        start, end = nat.frontend_port_range_start, nat.frontend_port_range_end
        if end - start + 1 < MIN_FRONTEND_PORTS:
            raise PropertyError(
                f"{where}.frontendPortRangeEnd",
                f"a range holds at least {MIN_FRONTEND_PORTS} ports",
            )
        if any(start <= other_end and other_start <= end for other_start, other_end in seen):
            raise PropertyError(f"{where}.frontendPortRangeStart", "ranges must not overlap")
        seen.append((start, end))


def refuse_azure_only(what: str, spec: PoolSpec | PoolUpdate, path: str = "") -> None:
    """501 naming each of the settings a local node cannot honour (`rules.azure_only_settings`)."""
    shown = spec if isinstance(spec, PoolSpec) else spec.applied_to(PoolSpec(id=""))
    found = rules.azure_only_settings(shown)
    if found:
        names = [shapes.join(path, name) for name, _ in found]
        reasons = "; ".join(f"{name} {why}" for name, (_, why) in zip(names, found, strict=True))
        error = not_supported(f"{what} propert{'y' if len(found) == 1 else 'ies'} {reasons}")
        error.values += tuple(("PropertyName", name) for name in names)
        raise error


def _pool_checks(spec: PoolSpec, asked: Mapping[str, Any]) -> None:
    refuse_azure_only("Add Pool", spec)
    _check_nat_pools(spec)
    configuration = asked.get("virtualMachineConfiguration")
    if configuration is None:
        raise PropertyError("virtualMachineConfiguration")
    reference = spec.image_reference
    image_id = reference.virtual_machine_image_id if reference else None
    if image_id and image_id.startswith("/") and not _IMAGE_RESOURCE_ID.fullmatch(image_id):
        raise PropertyError(
            "virtualMachineConfiguration.imageReference.virtualMachineImageId", _IMAGE_ID_FORMS
        )
    if reference is None or reference.virtual_machine_image_id is None:
        for name in ("publisher", "offer", "sku"):
            if not configuration.get("imageReference", {}).get(name):
                raise PropertyError(f"virtualMachineConfiguration.imageReference.{name}")


def _refuse_local_subnet(document: Any) -> None:
    """A subnet of the subscription the local account is taken to be in
    (`requests.LOCAL_SUBSCRIPTION`; any other is 400, as the service answers a subnet of
    another subscription): 501 naming it, since local nodes join no virtual network."""
    network = document.get("networkConfiguration") if isinstance(document, Mapping) else None
    subnet = network.get("subnetId") if isinstance(network, Mapping) else None
    if isinstance(subnet, str) and requests.subnet_refusal(subnet) is None:
        path = "networkConfiguration.subnetId"
        error = not_supported(f"Add Pool property {path}", "local nodes join no virtual network")
        error.values += (("PropertyName", path),)
        raise error


COMMUNICATION_MODE = "targetNodeCommunicationMode"
RESOURCE_TAGS = "resourceTags"


@dataclass(frozen=True, slots=True)
class OlderPoolProperties:
    """Pool properties of api-versions before 2025-06-01 that azure-batch 15 does not model:
    ``targetNodeCommunicationMode`` (``default``, ``classic``, ``simplified``; None when not
    given) and ``resourceTags`` (None when not given), read beside the model's."""

    target_node_communication_mode: str | None = None
    resource_tags: dict[str, str] | None = None


def older_pool_properties(document: Any, path: str = "") -> tuple[Any, OlderPoolProperties]:
    """`document` without the older properties, and those properties checked (400
    ``InvalidPropertyValue`` naming the property for a mode outside the three or tags that
    are not an object of strings)."""
    if not isinstance(document, Mapping):
        return document, OlderPoolProperties()
    mode, tags = document.get(COMMUNICATION_MODE), document.get(RESOURCE_TAGS)
    rest = {
        name: value
        for name, value in document.items()
        if name not in (COMMUNICATION_MODE, RESOURCE_TAGS)
    }
    if mode is not None and (
        not isinstance(mode, str) or mode.lower() not in ("default", "classic", "simplified")
    ):
        where = shapes.join(path, COMMUNICATION_MODE)
        raise _refusal(PropertyError(where, "expected one of default, classic, simplified"))
    if tags is not None and (
        not isinstance(tags, Mapping) or not all(isinstance(v, str) for v in tags.values())
    ):
        where = shapes.join(path, RESOURCE_TAGS)
        raise _refusal(PropertyError(where, "expected an object of strings"))
    older = OlderPoolProperties(
        mode.lower() if isinstance(mode, str) else None,
        dict(tags) if isinstance(tags, Mapping) else None,
    )
    return rest, older


def auto_pool_older_properties(document: Any, path: str = "") -> tuple[Any, OlderPoolProperties]:
    """`document` (a job's JSON, or what holds its ``poolInfo``) without the older properties
    of its auto pool's specification, and those properties (`older_pool_properties`)."""
    info = document.get("poolInfo") if isinstance(document, Mapping) else None
    auto = info.get("autoPoolSpecification") if isinstance(info, Mapping) else None
    pool = auto.get("pool") if isinstance(auto, Mapping) else None
    if not isinstance(pool, Mapping):
        return document, OlderPoolProperties()
    assert isinstance(document, Mapping) and isinstance(info, Mapping)
    assert isinstance(auto, Mapping)
    where = shapes.join(path, f"{_AUTO_POOL}.pool")
    kept, older = older_pool_properties(pool, where)
    document = {**document, "poolInfo": {**info, "autoPoolSpecification": {**auto, "pool": kept}}}
    return document, older


def with_older_pool_properties(spec: JobSpec, older: OlderPoolProperties) -> JobSpec:
    """`spec` with its auto pool given `older`'s properties."""
    auto = spec.auto_pool
    if auto is None:
        return spec
    pool = replace(
        auto.pool,
        target_node_communication_mode=older.target_node_communication_mode,
        resource_tags=older.resource_tags or {},
    )
    return replace(spec, auto_pool=replace(auto, pool=pool))


def pool_spec(document: Any) -> PoolSpec:
    """Add Pool's body as a `PoolSpec`; ``image`` is the Docker image an image id names, else
    None (the endpoint's default node image); ``targetNodeCommunicationMode`` and
    ``resourceTags`` as `older_pool_properties` reads them."""
    document, older = older_pool_properties(document)
    _refuse_local_subnet(document)
    if isinstance(document, Mapping):
        try:
            # before the round trip, which leaves an autoscaled pool's targets out
            _autoscale_checks(document)
        except PropertyError as error:
            raise _refusal(error) from None
    spec = read_body(
        models.BatchPoolCreateOptions,
        document,
        requests.pool_spec,
        requests.pool_create_options,
        "Add Pool",
        check=_pool_checks,
    )
    spec = replace(
        spec,
        target_node_communication_mode=older.target_node_communication_mode,
        resource_tags=older.resource_tags or {},
    )
    image = _docker_image(spec.image_reference)
    return spec if image is None else replace(spec, image=image)


def _docker_image(reference: ImageReference | None) -> str | None:
    """The Docker image an image reference names (an image id that is no Azure resource id)."""
    image_id = reference.virtual_machine_image_id if reference else None
    return image_id if image_id and not image_id.startswith("/") else None


def _update_checks(update: PoolUpdate, asked: Mapping[str, Any]) -> None:
    refuse_azure_only("Update Pool", update)
    reference = update.image_reference
    image_id = reference.virtual_machine_image_id if reference else None
    where = "virtualMachineConfiguration.imageReference.virtualMachineImageId"
    if image_id and image_id.startswith("/") and not _IMAGE_RESOURCE_ID.fullmatch(image_id):
        raise PropertyError(where, _IMAGE_ID_FORMS)
    _resource_files_have_urls(asked, "")


def pool_update(document: Any) -> PoolUpdate:
    """Update Pool's body as a `PoolUpdate`; ``image`` as Add Pool's (`pool_spec`);
    ``targetNodeCommunicationMode`` as `older_pool_properties` reads it (PATCH before
    2025-06-01 has no ``resourceTags``: 501 naming it)."""
    document, older = older_pool_properties(document)
    if older.resource_tags is not None:
        error = not_supported(f"Update Pool property {RESOURCE_TAGS}")
        error.values += (("PropertyName", RESOURCE_TAGS),)
        raise error
    update = read_body(
        models.BatchPoolUpdateOptions,
        document,
        requests.pool_update,
        requests.pool_update_options,
        "Update Pool",
        check=_update_checks,
    )
    return replace(
        update,
        image=_docker_image(update.image_reference),
        target_node_communication_mode=older.target_node_communication_mode,
    )


def pool_replacement(
    document: Any,
) -> tuple[StartTaskSpec | None, dict[str, str], OlderPoolProperties]:
    """Replace Pool Properties' body: the start task (None: removed), all the metadata, and
    ``targetNodeCommunicationMode`` (`older_pool_properties`; no ``resourceTags`` there)."""
    document, older = older_pool_properties(document)
    if older.resource_tags is not None:
        error = not_supported(f"Replace Pool Properties property {RESOURCE_TAGS}")
        error.values += (("PropertyName", RESOURCE_TAGS),)
        raise error
    replacement: tuple[StartTaskSpec | None, dict[str, str]] = read_body(
        models.BatchPoolReplaceOptions,
        document,
        requests.pool_replacement,
        lambda kept: requests.pool_replace_options(*kept),
        "Replace Pool Properties",
        check=lambda kept, asked: _resource_files_have_urls(asked, ""),
    )
    return (*replacement, older)


def _autoscale_checks(asked: Mapping[str, Any]) -> None:
    """Add Pool's autoscale settings as the service validates them (REST Add Pool): with
    ``enableAutoScale`` a formula is required and the target counts must not be given;
    without it, neither a formula nor an interval."""
    if asked.get("enableAutoScale"):
        if not asked.get("autoScaleFormula"):
            raise PropertyError("autoScaleFormula")
        for name in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            if name in asked:
                raise PropertyError(name, "not allowed when enableAutoScale is true")
        return
    for name in ("autoScaleFormula", "autoScaleEvaluationInterval"):
        if name in asked:
            raise PropertyError(name, "allowed only when enableAutoScale is true")


@dataclass(frozen=True, slots=True)
class EnableAutoScale:
    """Enable Pool Auto Scale's body: a formula and an interval, each None when not given."""

    formula: str | None
    interval: timedelta | None


def enable_auto_scale(document: Any) -> EnableAutoScale:
    """Enable Pool Auto Scale's body (``autoScaleEvaluationInterval`` 5 minutes to 168 hours)."""
    return read_body(
        models.BatchPoolEnableAutoScaleOptions,
        document,
        lambda options: EnableAutoScale(
            options.auto_scale_formula, options.auto_scale_evaluation_interval
        ),
        lambda kept: models.BatchPoolEnableAutoScaleOptions(
            auto_scale_formula=kept.formula, auto_scale_evaluation_interval=kept.interval
        ),
        "Enable Pool Auto Scale",
    )


def evaluate_auto_scale(document: Any) -> str:
    """Evaluate Pool Auto Scale's body: its formula (required)."""
    formula: str = read_body(
        models.BatchPoolEvaluateAutoScaleOptions,
        document,
        lambda options: options.auto_scale_formula,
        lambda kept: models.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=kept),
        "Evaluate Pool Auto Scale",
    )
    return formula


# --- jobs ------------------------------------------------------------------------------------


_AUTO_POOL = "poolInfo.autoPoolSpecification"


def _job_checks(spec: JobSpec, asked: Mapping[str, Any]) -> None:
    job_checks(spec, asked)


def job_checks(spec: JobSpec, asked: Mapping[str, Any], *, scheduled: bool = False) -> None:
    """A job's pool: a pool id or an auto pool (checked as Add Pool's body); `scheduled`: a
    job schedule's ``jobSpecification``, whose auto pool may live as long as the schedule."""
    if spec.auto_pool is None and not spec.pool_id:
        raise PropertyError("poolInfo.poolId")
    if spec.auto_pool is not None:
        if spec.pool_id:
            raise PropertyError("poolInfo", "give poolId or autoPoolSpecification, not both")
        if spec.auto_pool.lifetime is PoolLifetimeOption.JOB_SCHEDULE and not scheduled:
            where = f"{_AUTO_POOL}.poolLifetimeOption"
            error = not_supported(
                f"Add Job property {where} jobschedule", "it applies to job schedules only"
            )
            error.values += (("PropertyName", where),)
            raise error
        refuse_azure_only("Add Job", spec.auto_pool.pool, f"{_AUTO_POOL}.pool")
        try:
            pool = asked["poolInfo"]["autoPoolSpecification"]["pool"]
            _autoscale_checks(pool)
            _pool_checks(spec.auto_pool.pool, pool)
        except PropertyError as error:
            raise PropertyError(f"{_AUTO_POOL}.pool.{error.path}", error.reason) from None
    _resource_files_have_urls(asked, "")


def job_spec(document: Any) -> JobSpec:
    """Add Job's body as a `JobSpec` (an auto pool's image and older properties as Add
    Pool's, `pool_spec`)."""
    document, older = auto_pool_older_properties(document)
    spec: JobSpec = read_body(
        models.BatchJobCreateOptions,
        document,
        requests.job_spec,
        requests.job_create_options,
        "Add Job",
        check=_job_checks,
    )
    return with_auto_pool_image(with_older_pool_properties(spec, older))


def with_auto_pool_image(spec: JobSpec) -> JobSpec:
    """`spec` with its auto pool's node image read from its image reference (as Add Pool's)."""
    auto = spec.auto_pool
    image = _docker_image(auto.pool.image_reference) if auto is not None else None
    if auto is not None and image is not None:
        spec = replace(spec, auto_pool=replace(auto, pool=replace(auto.pool, image=image)))
    return spec


def job_update(document: Any) -> JobUpdate:
    """Update Job's body (PATCH) as a `JobUpdate`: what it leaves out stays as it is."""
    return read_body(
        models.BatchJobUpdateOptions,
        document,
        requests.job_update,
        requests.job_update_options,
        "Update Job",
    )


def job_replacement(document: Any) -> JobUpdate:
    """Replace Job's body (PUT) as a `JobUpdate` (``poolInfo.poolId`` required)."""
    update = read_body(
        models.BatchJob,
        document,
        requests.job_update,
        lambda kept: requests.job_replacement(kept, kept.pool_id or ""),
        "Replace Job",
    )
    if not update.pool_id and update.auto_pool is None:
        raise _refusal(PropertyError("poolInfo.poolId"))
    return update


def disable_option(document: Any) -> DisableJobOption:
    """Disable Job's body: its ``disableTasks`` (required)."""
    option: DisableJobOption | None = read_body(
        models.BatchJobDisableOptions,
        document,
        lambda options: requests.optional_choice(DisableJobOption, options.disable_tasks),
        lambda kept: models.BatchJobDisableOptions({"disableTasks": kept.value} if kept else {}),
        "Disable Job",
    )
    if option is None:
        raise _refusal(PropertyError("disableTasks"))
    return option


# --- tasks -----------------------------------------------------------------------------------


def task_update(document: Any) -> TaskConstraints:
    """Update Task's body (a task, as azure-batch sends it; REST TaskUpdateContent has only the
    constraints): the task's constraints, what is left out taking the default; any other
    property of the task is 501."""
    return read_body(
        models.BatchTask,
        document,
        lambda update: requests.task_constraints_spec(update.constraints),
        lambda kept: models.BatchTask(constraints=requests.task_constraints(kept)),
        "Update Task",
    )


TOKEN_SETTINGS = "authenticationTokenSettings"
TOKEN_SCOPES = frozenset({"job"})
"""``AccessScope``: the only value the service knows (REST AuthenticationTokenSettings)."""


def task_spec(document: Any, path: str = "") -> TaskSpec:
    """Add Task's body (or, with `path` ``value[i]``, one entry of Add Task Collection) as a
    `TaskSpec`. ``authenticationTokenSettings`` (api-versions before 2025-06-01, whose model
    azure-batch 15 lacks) is read here: ``access`` a list of ``job``, else 400."""
    settings = document.get(TOKEN_SETTINGS) if isinstance(document, Mapping) else None
    if isinstance(document, Mapping):
        document = {name: value for name, value in document.items() if name != TOKEN_SETTINGS}
    spec = read_body(
        models.BatchTaskCreateOptions,
        document,
        requests.task_spec,
        requests.task_create_options,
        "Add Task",
        path,
        check=lambda spec, asked: _resource_files_have_urls(asked, path),
    )
    if settings is None:
        return spec
    where = shapes.join(path, f"{TOKEN_SETTINGS}.access")
    access = settings.get("access") if isinstance(settings, Mapping) else None
    scopes = [str(scope).lower() for scope in access] if isinstance(access, list) else None
    if scopes is None or not set(scopes) <= TOKEN_SCOPES:
        raise _refusal(PropertyError(where, "the only access scope is job"))
    return replace(spec, authentication_token_access=tuple(dict.fromkeys(scopes)))


# --- the other operations' bodies ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resize:
    """What Resize Pool honours: both targets, the resize's timeout (which the service sets as
    the pool's ``resizeTimeout``) and what happens to the tasks of nodes that leave."""

    target_dedicated_nodes: int
    resize_timeout: timedelta
    target_low_priority_nodes: int = 0
    deallocation: NodeDeallocationOption = NodeDeallocationOption.REQUEUE


def _deallocation(value: Any) -> NodeDeallocationOption:
    return requests.choice(NodeDeallocationOption, value, NodeDeallocationOption.REQUEUE)


def resize(document: Any) -> Resize:
    """Resize Pool's body."""
    return read_body(
        models.BatchPoolResizeOptions,
        document,
        lambda options: Resize(
            options.target_dedicated_nodes or 0,
            options.resize_timeout or DEFAULT_RESIZE_TIMEOUT,
            options.target_low_priority_nodes or 0,
            _deallocation(options.node_deallocation_option),
        ),
        lambda kept: models.BatchPoolResizeOptions(
            target_dedicated_nodes=kept.target_dedicated_nodes,
            resize_timeout=kept.resize_timeout,
            target_low_priority_nodes=kept.target_low_priority_nodes,
            node_deallocation_option=kept.deallocation.value,
        ),
        "Resize Pool",
    )


@dataclass(frozen=True, slots=True)
class Removal:
    """What Remove Nodes honours: the nodes, the resize's timeout, the deallocation option."""

    node_ids: tuple[str, ...]
    resize_timeout: timedelta | None
    deallocation: NodeDeallocationOption


def removal(document: Any) -> Removal:
    """Remove Nodes' body (``nodeList`` of 1 to 100 ids: `requests.LIMITS`)."""
    return read_body(
        models.BatchNodeRemoveOptions,
        document,
        lambda options: Removal(
            tuple(options.node_ids or ()),
            options.resize_timeout,
            _deallocation(options.node_deallocation_option),
        ),
        lambda kept: models.BatchNodeRemoveOptions(
            node_ids=list(kept.node_ids),
            resize_timeout=kept.resize_timeout,
            node_deallocation_option=kept.deallocation.value,
        ),
        "Remove Nodes",
    )


def disable_scheduling_option(document: Any) -> DisableSchedulingOption:
    """Disable Node Scheduling's body: ``requeue`` (the default), ``terminate`` or
    ``taskcompletion``."""
    return read_body(
        models.BatchNodeDisableSchedulingOptions,
        document,
        lambda options: requests.choice(
            DisableSchedulingOption,
            options.node_disable_scheduling_option,
            DisableSchedulingOption.REQUEUE,
        ),
        lambda kept: models.BatchNodeDisableSchedulingOptions(
            node_disable_scheduling_option=kept.value
        ),
        "Disable Node Scheduling",
    )


def terminate_reason(document: Any) -> str | None:
    """Terminate Job's body: its ``terminateReason`` (None when not given)."""
    reason: str | None = read_body(
        sdk_models.BatchJobTerminateOptions,
        document,
        lambda options: options.termination_reason,
        lambda kept: sdk_models.BatchJobTerminateOptions(termination_reason=kept),
        "Terminate Job",
    )
    return reason


NODE_OPTIONS = ("requeue", "terminate")
"""The reboot and reimage options emulated (what happens to the node's running tasks)."""


def _node_option(value: Any) -> str:
    option = requests.wire_value(value) or NODE_OPTIONS[0]
    return option if option in NODE_OPTIONS else ""


def reboot_option(document: Any) -> str:
    """Reboot Node's body: ``requeue`` (the default) or ``terminate``; the others are 501."""
    return read_body(
        sdk_models.BatchNodeRebootOptions,
        document,
        lambda options: _node_option(options.node_reboot_kind),
        lambda kept: sdk_models.BatchNodeRebootOptions(node_reboot_kind=kept or None),
        "Reboot Node",
    )


def _logs_upload(options: Any) -> NodeLogsRequest:
    if not options.container_url:
        raise PropertyError("containerUrl")
    if options.start_time is None:
        raise PropertyError("startTime")
    return NodeLogsRequest(options.container_url, options.start_time, options.end_time)


def logs_upload(document: Any) -> NodeLogsRequest:
    """Upload Batch Service Logs' body; an ``identityReference`` is 501."""
    return read_body(
        sdk_models.UploadBatchServiceLogsOptions,
        document,
        _logs_upload,
        lambda kept: sdk_models.UploadBatchServiceLogsOptions(
            container_url=kept.container_url, start_time=kept.start_time, end_time=kept.end_time
        ),
        "Upload Batch Service Logs",
    )


def reimage_option(document: Any) -> str:
    """Reimage Node's body: ``requeue`` (the default) or ``terminate``; the others are 501."""
    return read_body(
        sdk_models.BatchNodeReimageOptions,
        document,
        lambda options: _node_option(options.node_reimage_option),
        lambda kept: sdk_models.BatchNodeReimageOptions(node_reimage_option=kept or None),
        "Reimage Node",
    )


def task_group(document: Any) -> list[Mapping[str, Any]]:
    """Add Task Collection's body: its entries (each read by `task_spec`), the body's own
    properties beside ``value`` refused."""
    return read_body(
        models.BatchTaskGroup,
        document,
        lambda group: [entry.as_dict() for entry in group.task_values or ()],
        lambda kept: models.BatchTaskGroup(
            task_values=[models.BatchTaskCreateOptions(e) for e in kept]
        ),
        "Add Task Collection",
    )


def nothing(document: Mapping[str, Any], what: str) -> None:
    """A body for an operation that takes none (Terminate Task): any property is 501."""
    read_body(_Empty, document, lambda _: None, lambda _: _Empty(), what)


class _Empty(SdkModel):
    """An operation's body with no properties."""

"""Request bodies to specs: the JSON of Add Pool, Add Job and Add Task as the backend-neutral
specs of `jobprep_release.backends.base`.

Property names and defaults are the REST API's (api-version 2025-06-01): a pool's fill type is
``spread`` unless given, an auto-user's scope ``pool``, a release task's wall clock 15 minutes.
Properties that would change what runs but that the Docker service cannot do (a start task,
autoscale, multi-instance tasks, output files, ...) are refused with 501 ``NotSupported`` naming
them, rather than accepted and ignored. Descriptive ones (display names, metadata, network and
disk settings of a VM) are accepted and have no effect.

A pool's node image: an ``imageReference`` whose ``virtualMachineImageId`` is not an Azure
resource id (does not start with ``/``) names a Docker image (``debian:bookworm-slim``); any other
image reference runs on the endpoint's default node image.
"""

from __future__ import annotations

from jobprep_release.backends.base import (
    JOB_PREPARATION_TASK_ID,
    JOB_RELEASE_TASK_ID,
    RELEASE_MAX_WALL_CLOCK,
    AutoUserScope,
    ElevationLevel,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobSpec,
    NodeFillType,
    OnAllTasksComplete,
    PoolSpec,
    ResourceFile,
    TaskConstraints,
    TaskSpec,
    UserIdentity,
)
from jobprep_release.backends.docker.rest.errors import not_supported
from jobprep_release.backends.docker.rest.wire import Body, invalid

# Properties whose behaviour is not emulated: refused when present (and not at their default).
_POOL_REFUSED = (
    "startTask",
    "autoScaleFormula",
    "userAccounts",
    "mountConfiguration",
    "applicationPackageReferences",
    "certificateReferences",
)
_VM_REFUSED = ("containerConfiguration", "extensions", "dataDisks")
_JOB_REFUSED = ("jobManagerTask",)
_TASK_REFUSED = (
    "multiInstanceSettings",
    "dependsOn",
    "exitConditions",
    "outputFiles",
    "containerSettings",
    "applicationPackageReferences",
    "authenticationTokenSettings",
)
_SPECIAL_TASK_REFUSED = ("containerSettings",)


def _refuse(body: Body, names: tuple[str, ...], what: str) -> None:
    for name in names:
        if name in body and body.raw(name) not in ([], {}, ""):
            raise not_supported(f"{what} property {body.where(name)}")


# --- pools -----------------------------------------------------------------------------------


def pool_spec(body: Body) -> PoolSpec:
    """Add Pool's body as a `PoolSpec` (``image`` None: the endpoint's default node image)."""
    _refuse(body, _POOL_REFUSED, "Add Pool")
    if body.boolean("enableAutoScale", False):
        raise not_supported("Add Pool property enableAutoScale", "give targetDedicatedNodes")
    if "cloudServiceConfiguration" in body:
        raise not_supported("Add Pool property cloudServiceConfiguration")
    configuration = body.child("virtualMachineConfiguration", required=True)
    assert configuration is not None
    _refuse(configuration, _VM_REFUSED, "Add Pool")
    reference = configuration.child("imageReference", required=True)
    assert reference is not None
    agent_sku = configuration.text("nodeAgentSKUId", required=True)
    image: str | None = None
    image_id = reference.optional_text("virtualMachineImageId")
    if image_id and not image_id.startswith("/"):
        image = image_id
    elif image_id is None:
        reference.text("publisher", required=True)
        reference.text("offer", required=True)
        reference.text("sku", required=True)
    policy = body.child("taskSchedulingPolicy")
    fill_type = (
        policy.choice("nodeFillType", NodeFillType, NodeFillType.SPREAD)
        if policy is not None
        else NodeFillType.SPREAD
    )
    return PoolSpec(
        id=body.text("id", required=True),
        vm_size=body.text("vmSize", required=True),
        target_dedicated_nodes=body.integer("targetDedicatedNodes", 0),
        target_low_priority_nodes=body.integer("targetLowPriorityNodes", 0),
        task_slots_per_node=body.integer("taskSlotsPerNode", 1),
        node_fill_type=fill_type,
        image=image,
        node_agent_sku_id=agent_sku,
    )


# --- what tasks share ------------------------------------------------------------------------


def environment(body: Body, name: str) -> dict[str, str]:
    settings: dict[str, str] = {}
    for setting in body.children(name):
        key = setting.text("name", required=True)
        value = setting.raw("value")
        if value is not None and not isinstance(value, str):
            raise invalid(setting.where("value"), "expected a string")
        settings[key] = value or ""
    return settings


def resource_files(body: Body, what: str) -> tuple[ResourceFile, ...]:
    files: list[ResourceFile] = []
    for item in body.children("resourceFiles"):
        for source in ("storageContainerUrl", "autoStorageContainerName"):
            if source in item:
                raise not_supported(
                    f"{what} property {item.where(source)}", "use httpUrl (a plain HTTP(S) URL)"
                )
        if "identityReference" in item:
            raise not_supported(f"{what} property {item.where('identityReference')}")
        files.append(
            ResourceFile(
                http_url=item.text("httpUrl", required=True),
                file_path=item.text("filePath", required=True),
                file_mode=item.optional_text("fileMode"),
            )
        )
    return tuple(files)


def user_identity(body: Body, what: str) -> UserIdentity:
    identity = body.child("userIdentity")
    if identity is None:
        return UserIdentity()
    if "username" in identity or "userName" in identity:
        raise not_supported(f"{what} property {identity.where('username')}", "use autoUser")
    auto = identity.child("autoUser")
    if auto is None:
        return UserIdentity()
    return UserIdentity(
        elevation_level=auto.choice("elevationLevel", ElevationLevel, ElevationLevel.NON_ADMIN),
        scope=auto.choice("scope", AutoUserScope, AutoUserScope.POOL),
    )


def constraints(body: Body) -> TaskConstraints:
    limits = body.child("constraints")
    if limits is None:
        return TaskConstraints()
    return TaskConstraints(
        max_wall_clock_time=limits.duration("maxWallClockTime"),
        retention_time=limits.duration("retentionTime"),
        max_task_retry_count=limits.optional_integer("maxTaskRetryCount"),
    )


# --- jobs ------------------------------------------------------------------------------------


def preparation_task(body: Body) -> JobPreparationTaskSpec:
    _refuse(body, _SPECIAL_TASK_REFUSED, "Add Job")
    return JobPreparationTaskSpec(
        id=body.text("id", JOB_PREPARATION_TASK_ID),
        command_line=body.text("commandLine", required=True),
        wait_for_success=body.boolean("waitForSuccess", True),
        rerun_on_node_reboot_after_success=body.boolean("rerunOnNodeRebootAfterSuccess", True),
        constraints=constraints(body),
        environment=environment(body, "environmentSettings"),
        resource_files=resource_files(body, "Add Job"),
        user_identity=user_identity(body, "Add Job"),
    )


def release_task(body: Body) -> JobReleaseTaskSpec:
    _refuse(body, _SPECIAL_TASK_REFUSED, "Add Job")
    wall_clock = body.duration("maxWallClockTime")
    if wall_clock is None and "maxWallClockTime" in body:
        raise invalid(body.where("maxWallClockTime"), "a job release task runs 15 minutes at most")
    return JobReleaseTaskSpec(
        id=body.text("id", JOB_RELEASE_TASK_ID),
        command_line=body.text("commandLine", required=True),
        max_wall_clock_time=wall_clock or RELEASE_MAX_WALL_CLOCK,
        retention_time=body.duration("retentionTime"),
        environment=environment(body, "environmentSettings"),
        resource_files=resource_files(body, "Add Job"),
        user_identity=user_identity(body, "Add Job"),
    )


def job_spec(body: Body) -> JobSpec:
    """Add Job's body as a `JobSpec`."""
    _refuse(body, _JOB_REFUSED, "Add Job")
    pool_info = body.child("poolInfo", required=True)
    assert pool_info is not None
    if "autoPoolSpecification" in pool_info:
        raise not_supported("Add Job property poolInfo.autoPoolSpecification", "give poolId")
    if body.boolean("usesTaskDependencies", False):
        raise not_supported("Add Job property usesTaskDependencies")
    if body.text("onTaskFailure", "noaction").lower() != "noaction":
        raise not_supported("Add Job property onTaskFailure", "only noaction is emulated")
    if body.integer("maxParallelTasks", -1) != -1:
        raise not_supported("Add Job property maxParallelTasks", "only -1 (unlimited)")
    limits = body.child("constraints")
    retries = 0
    if limits is not None:
        if limits.duration("maxWallClockTime") is not None:
            raise not_supported("Add Job property constraints.maxWallClockTime")
        retries = limits.integer("maxTaskRetryCount", 0)
    prep = body.child("jobPreparationTask")
    release = body.child("jobReleaseTask")
    return JobSpec(
        id=body.text("id", required=True),
        pool_id=pool_info.text("poolId", required=True),
        preparation=preparation_task(prep) if prep is not None else None,
        release=release_task(release) if release is not None else None,
        common_environment=environment(body, "commonEnvironmentSettings"),
        on_all_tasks_complete=body.choice(
            "onAllTasksComplete", OnAllTasksComplete, OnAllTasksComplete.NO_ACTION
        ),
        max_task_retry_count=retries,
    )


# --- tasks -----------------------------------------------------------------------------------


def task_spec(body: Body) -> TaskSpec:
    """Add Task's body (or one entry of Add Task Collection) as a `TaskSpec`."""
    _refuse(body, _TASK_REFUSED, "Add Task")
    return TaskSpec(
        id=body.text("id", required=True),
        command_line=body.text("commandLine", required=True),
        constraints=constraints(body),
        environment=environment(body, "environmentSettings"),
        resource_files=resource_files(body, "Add Task"),
        user_identity=user_identity(body, "Add Task"),
        required_slots=body.integer("requiredSlots", 1),
    )

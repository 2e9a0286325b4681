"""Specs <-> azure-batch's create options, in both directions: the one mapping of Add Pool (and
Update Pool, Replace Pool Properties), Add Job and Add Task properties.

Specs to SDK (`pool_create_options`, `job_create_options`, `task_create_options`): what the azure
backend sends, and what the local endpoint reproduces of a request to check that it kept every
property. SDK to specs (`pool_spec`, `job_spec`, `task_spec`): what the endpoint makes of a
request, and what the azure backend reads back of a job's settings. The SDK-to-spec functions
take a create-options model or the service's own object (`BatchPool`, `BatchJob`, `BatchTask`),
whose properties have the same names.

A property the specs do not hold is not mapped: the endpoint refuses it (`shapes.unreproduced`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import timedelta
from enum import Enum
from typing import Any, TypeVar

from azure.batch import models

from jobprep_release.backends.base import (
    DEFAULT_RESIZE_TIMEOUT,
    JOB_PREPARATION_TASK_ID,
    JOB_RELEASE_TASK_ID,
    RELEASE_MAX_WALL_CLOCK,
    AutoPoolSpec,
    AutoUserScope,
    ContainerConfiguration,
    DependencyAction,
    ElevationLevel,
    ExitCodeMapping,
    ExitCodeRangeMapping,
    ExitConditions,
    ExitOptions,
    ImageReference,
    InboundNatPool,
    JobAction,
    JobConstraints,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    JobSpec,
    JobUpdate,
    MultiInstanceSettings,
    NodeFillType,
    OnAllTasksComplete,
    OnTaskFailure,
    OsDisk,
    OutputFile,
    OutputFileUploadCondition,
    PoolLifetimeOption,
    PoolSpec,
    PoolUpdate,
    ResourceFile,
    StartTaskSpec,
    TaskConstraints,
    TaskContainerSettings,
    TaskDependencies,
    TaskIdRange,
    TaskSpec,
    UserAccount,
    UserIdentity,
    check_id,
)
from jobprep_release.backends.errors import InvalidRequest
from jobprep_release.backends.schema.shapes import (
    Kind,
    PropertyError,
    format_duration,
    join,
    limited,
    parse_duration,
    properties,
)

DEFAULT_IMAGE = "canonical:ubuntu-24_04-lts:server:latest"
DEFAULT_NODE_AGENT_SKU = "batch.node.ubuntu 24.04"

_E = TypeVar("_E", bound=Enum)


def wire_value(value: Any) -> str | None:
    """An SDK enum or plain string as the service's lower-case wire value."""
    if value is None:
        return None
    if isinstance(value, Enum):
        value = value.value
    return str(value).lower()


def choice(cls: type[_E], value: Any, fallback: _E) -> _E:
    """`value` as a member of `cls`; `fallback` when absent or unknown (a later API's value)."""
    raw = wire_value(value)
    try:
        return cls(raw)
    except ValueError:
        return fallback


def optional_choice(cls: type[_E], value: Any) -> _E | None:
    """`value` as a member of `cls`; None when absent or unknown."""
    raw = wire_value(value)
    return next((member for member in cls if member.value == raw), None)


# --- what tasks share ------------------------------------------------------------------------


def environment_settings(environment: Mapping[str, str]) -> list[models.EnvironmentSetting] | None:
    if not environment:
        return None
    return [
        models.EnvironmentSetting(name=name, value=value) for name, value in environment.items()
    ]


def environment(settings: Sequence[models.EnvironmentSetting] | None) -> dict[str, str]:
    return {setting.name: setting.value or "" for setting in settings or ()}


def metadata_items(metadata: Mapping[str, str]) -> list[models.BatchMetadataItem] | None:
    if not metadata:
        return None
    return [models.BatchMetadataItem(name=name, value=value) for name, value in metadata.items()]


def metadata(items: Sequence[models.BatchMetadataItem] | None) -> dict[str, str]:
    return {item.name: item.value for item in items or ()}


def resource_files(files: Sequence[ResourceFile]) -> list[models.ResourceFile] | None:
    if not files:
        return None
    return [
        models.ResourceFile(
            http_url=file.http_url or None,
            storage_container_url=file.storage_container_url,
            auto_storage_container_name=file.auto_storage_container_name,
            blob_prefix=file.blob_prefix,
            file_path=file.file_path or None,
            file_mode=file.file_mode,
        )
        for file in files
    ]


def resource_file_specs(files: Sequence[models.ResourceFile] | None) -> tuple[ResourceFile, ...]:
    return tuple(
        ResourceFile(
            http_url=f.http_url or "",
            file_path=f.file_path or "",
            file_mode=f.file_mode,
            storage_container_url=f.storage_container_url,
            auto_storage_container_name=f.auto_storage_container_name,
            blob_prefix=f.blob_prefix,
        )
        for f in files or ()
    )


def output_files(files: Sequence[OutputFile]) -> list[models.OutputFile] | None:
    if not files:
        return None
    return [
        models.OutputFile(
            file_pattern=file.file_pattern,
            destination=models.OutputFileDestination(
                container=models.OutputFileBlobContainerDestination(
                    container_url=file.container_url,
                    path=file.path,
                    upload_headers=[
                        models.OutputFileUploadHeader(name=name, value=value)
                        for name, value in file.upload_headers.items()
                    ]
                    or None,
                )
            ),
            upload_options=models.OutputFileUploadConfiguration(
                upload_condition=file.upload_condition.value
            ),
        )
        for file in files
    ]


def output_file_specs(files: Sequence[models.OutputFile] | None) -> tuple[OutputFile, ...]:
    """Output files with a container destination (the only destination the REST API has)."""
    specs = []
    for f in files or ():
        container = f.destination.container if f.destination else None
        options = f.upload_options
        specs.append(
            OutputFile(
                file_pattern=f.file_pattern or "",
                container_url=(container.container_url or "") if container else "",
                path=container.path if container else None,
                upload_condition=choice(
                    OutputFileUploadCondition,
                    options.upload_condition if options else None,
                    OutputFileUploadCondition.TASK_COMPLETION,
                ),
                upload_headers={
                    header.name: header.value or ""
                    for header in ((container.upload_headers or []) if container else [])
                },
            )
        )
    return tuple(specs)


def user_identity(identity: UserIdentity) -> models.UserIdentity:
    if identity.user_name is not None:
        return models.UserIdentity(username=identity.user_name)
    return models.UserIdentity(
        auto_user=models.AutoUserSpecification(
            scope=identity.scope.value, elevation_level=identity.elevation_level.value
        )
    )


def user_identity_spec(identity: models.UserIdentity | None) -> UserIdentity:
    """A task's user: a named user account (``username``, the auto-user then ignored), else
    the auto-user."""
    if identity is not None and identity.username:
        return UserIdentity(user_name=identity.username)
    auto = identity.auto_user if identity else None
    if auto is None:
        return UserIdentity()
    return UserIdentity(
        elevation_level=choice(ElevationLevel, auto.elevation_level, ElevationLevel.NON_ADMIN),
        scope=choice(AutoUserScope, auto.scope, AutoUserScope.POOL),
    )


def task_constraints(constraints: TaskConstraints) -> models.BatchTaskConstraints | None:
    if constraints == TaskConstraints():
        return None
    return models.BatchTaskConstraints(
        max_wall_clock_time=constraints.max_wall_clock_time,
        retention_time=constraints.retention_time,
        max_task_retry_count=constraints.max_task_retry_count,
    )


def task_constraints_spec(limits: models.BatchTaskConstraints | None) -> TaskConstraints:
    if limits is None:
        return TaskConstraints()
    return TaskConstraints(
        max_wall_clock_time=limited(limits.max_wall_clock_time),
        retention_time=limited(limits.retention_time),
        max_task_retry_count=limits.max_task_retry_count,
    )


def exit_options(options: ExitOptions | None) -> models.ExitOptions | None:
    if options is None:
        return None
    return models.ExitOptions(
        job_action=options.job_action.value if options.job_action else None,
        dependency_action=options.dependency_action.value if options.dependency_action else None,
    )


def _options(options: ExitOptions) -> models.ExitOptions:
    return exit_options(options) or models.ExitOptions()


def exit_options_spec(options: models.ExitOptions | None) -> ExitOptions | None:
    if options is None:
        return None
    return ExitOptions(
        job_action=optional_choice(JobAction, options.job_action),
        dependency_action=optional_choice(DependencyAction, options.dependency_action),
    )


def exit_conditions(conditions: ExitConditions | None) -> models.ExitConditions | None:
    if conditions is None:
        return None
    return models.ExitConditions(
        exit_codes=[
            models.ExitCodeMapping(code=item.code, exit_options=_options(item.exit_options))
            for item in conditions.exit_codes
        ]
        or None,
        exit_code_ranges=[
            models.ExitCodeRangeMapping(
                start=item.start, end=item.end, exit_options=_options(item.exit_options)
            )
            for item in conditions.exit_code_ranges
        ]
        or None,
        pre_processing_error=exit_options(conditions.pre_processing_error),
        file_upload_error=exit_options(conditions.file_upload_error),
        default=exit_options(conditions.default),
    )


def exit_conditions_spec(conditions: models.ExitConditions | None) -> ExitConditions | None:
    if conditions is None:
        return None
    return ExitConditions(
        exit_codes=tuple(
            ExitCodeMapping(item.code, exit_options_spec(item.exit_options) or ExitOptions())
            for item in conditions.exit_codes or ()
        ),
        exit_code_ranges=tuple(
            ExitCodeRangeMapping(
                item.start, item.end, exit_options_spec(item.exit_options) or ExitOptions()
            )
            for item in conditions.exit_code_ranges or ()
        ),
        pre_processing_error=exit_options_spec(conditions.pre_processing_error),
        file_upload_error=exit_options_spec(conditions.file_upload_error),
        default=exit_options_spec(conditions.default),
    )


def task_dependencies(depends_on: TaskDependencies | None) -> models.BatchTaskDependencies | None:
    if depends_on is None:
        return None
    return models.BatchTaskDependencies(
        task_ids=list(depends_on.task_ids) or None,
        task_id_ranges=[
            models.BatchTaskIdRange(start=item.start, end=item.end)
            for item in depends_on.task_id_ranges
        ]
        or None,
    )


def task_dependencies_spec(
    depends_on: models.BatchTaskDependencies | None,
) -> TaskDependencies | None:
    if depends_on is None:
        return None
    return TaskDependencies(
        task_ids=tuple(depends_on.task_ids or ()),
        task_id_ranges=tuple(
            TaskIdRange(item.start, item.end) for item in depends_on.task_id_ranges or ()
        ),
    )


# --- pools -----------------------------------------------------------------------------------


def image_reference(urn: str) -> models.BatchVmImageReference:
    """``publisher:offer:sku:version`` as an image reference; `InvalidRequest` otherwise."""
    parts = urn.split(":")
    if len(parts) != 4 or not all(part.strip() for part in parts):
        raise InvalidRequest(
            f"invalid image {urn!r}: give a marketplace image URN publisher:offer:sku:version, "
            f"e.g. {DEFAULT_IMAGE}",
            code="InvalidPropertyValue",
        )
    publisher, offer, sku, version = (part.strip() for part in parts)
    return models.BatchVmImageReference(publisher=publisher, offer=offer, sku=sku, version=version)


def image_reference_model(reference: ImageReference) -> models.BatchVmImageReference:
    return models.BatchVmImageReference(
        publisher=reference.publisher,
        offer=reference.offer,
        sku=reference.sku,
        version=reference.version,
        virtual_machine_image_id=reference.virtual_machine_image_id,
    )


def image_reference_spec(reference: models.BatchVmImageReference | None) -> ImageReference | None:
    """The reference as asked; a marketplace image without a version is ``latest``."""
    if reference is None:
        return None
    version = reference.version
    if version is None and reference.publisher is not None:
        version = "latest"
    return ImageReference(
        publisher=reference.publisher,
        offer=reference.offer,
        sku=reference.sku,
        version=version,
        virtual_machine_image_id=reference.virtual_machine_image_id,
    )


def user_accounts(accounts: Sequence[UserAccount]) -> list[models.UserAccount] | None:
    if not accounts:
        return None
    return [
        models.UserAccount(
            name=account.name,
            password=account.password,
            elevation_level=account.elevation_level.value,
            linux_user_configuration=models.LinuxUserConfiguration(
                uid=account.uid, gid=account.gid, ssh_private_key=account.ssh_private_key
            )
            if (account.uid, account.gid, account.ssh_private_key) != (None, None, None)
            else None,
        )
        for account in accounts
    ]


def user_account_specs(accounts: Sequence[models.UserAccount] | None) -> tuple[UserAccount, ...]:
    specs = []
    for account in accounts or ():
        linux = account.linux_user_configuration
        specs.append(
            UserAccount(
                name=account.name,
                password=account.password,
                elevation_level=choice(
                    ElevationLevel, account.elevation_level, ElevationLevel.NON_ADMIN
                ),
                uid=linux.uid if linux else None,
                gid=linux.gid if linux else None,
                ssh_private_key=linux.ssh_private_key if linux else None,
            )
        )
    return tuple(specs)


def _enum_text(value: Any) -> str | None:
    """An SDK enum's wire value as sent (``dockerCompatible``), or a plain string."""
    if value is None:
        return None
    return str(value.value if isinstance(value, Enum) else value)


def container_settings(
    settings: TaskContainerSettings | None,
) -> models.BatchTaskContainerSettings | None:
    if settings is None:
        return None
    return models.BatchTaskContainerSettings(
        image_name=settings.image_name,
        container_run_options=settings.container_run_options,
        working_directory=settings.working_directory,
    )


def container_settings_spec(
    settings: models.BatchTaskContainerSettings | None,
) -> TaskContainerSettings | None:
    """A task's ``containerSettings``; ``workingDirectory`` is ``taskWorkingDirectory``
    unless given (the service's default). ``registry`` is not mapped: refused."""
    if settings is None:
        return None
    return TaskContainerSettings(
        image_name=settings.image_name or "",
        container_run_options=settings.container_run_options,
        working_directory=_enum_text(settings.working_directory) or "taskWorkingDirectory",
    )


def container_configuration(
    configuration: ContainerConfiguration | None,
) -> models.BatchContainerConfiguration | None:
    if configuration is None:
        return None
    return models.BatchContainerConfiguration(
        type=configuration.type,
        container_image_names=list(configuration.container_image_names) or None,
    )


def container_configuration_spec(
    configuration: models.BatchContainerConfiguration | None,
) -> ContainerConfiguration | None:
    """A pool's ``containerConfiguration``. ``containerRegistries`` is not mapped: refused."""
    if configuration is None:
        return None
    return ContainerConfiguration(
        type=_enum_text(configuration.type) or "dockerCompatible",
        container_image_names=tuple(configuration.container_image_names or ()),
    )


def start_task(spec: StartTaskSpec) -> models.BatchStartTask:
    return models.BatchStartTask(
        command_line=spec.command_line,
        resource_files=resource_files(spec.resource_files),
        environment_settings=environment_settings(spec.environment),
        user_identity=user_identity(spec.user_identity),
        max_task_retry_count=spec.max_task_retry_count,
        wait_for_success=spec.wait_for_success,
        container_settings=container_settings(spec.container_settings),
    )


def start_task_spec(task: models.BatchStartTask | None) -> StartTaskSpec | None:
    """A pool's start task; ``waitForSuccess`` is true unless false (the service's default)."""
    if task is None:
        return None
    return StartTaskSpec(
        command_line=task.command_line or "",
        environment=environment(task.environment_settings),
        resource_files=resource_file_specs(task.resource_files),
        user_identity=user_identity_spec(task.user_identity),
        max_task_retry_count=task.max_task_retry_count or 0,
        wait_for_success=task.wait_for_success is not False,
        container_settings=container_settings_spec(task.container_settings),
    )


def pool_create_options(spec: PoolSpec) -> models.BatchPoolCreateOptions:
    if spec.image_reference is not None:
        reference = image_reference_model(spec.image_reference)
    else:
        reference = image_reference(spec.image or DEFAULT_IMAGE)
    return models.BatchPoolCreateOptions(
        id=spec.id,
        display_name=spec.display_name,
        vm_size=spec.vm_size,
        virtual_machine_configuration=models.VirtualMachineConfiguration(
            image_reference=reference,
            node_agent_sku_id=spec.node_agent_sku_id or DEFAULT_NODE_AGENT_SKU,
            container_configuration=container_configuration(spec.container_configuration),
            node_placement_configuration=models.BatchNodePlacementConfiguration(
                policy=spec.node_placement_policy
            )
            if spec.node_placement_policy
            else None,
            os_disk=os_disk(spec.os_disk),
        ),
        upgrade_policy=upgrade_policy(spec.upgrade_policy_mode),
        # the service's defaults go unsaid (`shapes.DEFAULTS` has them)
        resize_timeout=None
        if spec.resize_timeout == DEFAULT_RESIZE_TIMEOUT
        else spec.resize_timeout,
        # an autoscaled pool's targets come from its formula and are not asked for
        target_dedicated_nodes=None if spec.enable_auto_scale else spec.target_dedicated_nodes,
        target_low_priority_nodes=None
        if spec.enable_auto_scale
        else spec.target_low_priority_nodes,
        enable_auto_scale=spec.enable_auto_scale or None,
        auto_scale_formula=spec.auto_scale_formula,
        auto_scale_evaluation_interval=spec.auto_scale_evaluation_interval,
        enable_inter_node_communication=spec.enable_inter_node_communication or None,
        network_configuration=network_configuration(spec.inbound_nat_pools),
        task_slots_per_node=spec.task_slots_per_node,
        task_scheduling_policy=models.BatchTaskSchedulingPolicy(
            node_fill_type=spec.node_fill_type.value, job_default_order=spec.job_default_order
        ),
        metadata=metadata_items(spec.metadata),
        start_task=start_task(spec.start_task) if spec.start_task else None,
        user_accounts=user_accounts(spec.user_accounts),
    )


def pool_spec(pool: models.BatchPoolCreateOptions | models.BatchPool) -> PoolSpec:
    """A pool's settings as a `PoolSpec` (``image`` None: the backend's choice)."""
    configuration = pool.virtual_machine_configuration
    policy = pool.task_scheduling_policy
    return PoolSpec(
        id=pool.id or "",
        vm_size=pool.vm_size or "",
        target_dedicated_nodes=pool.target_dedicated_nodes or 0,
        target_low_priority_nodes=pool.target_low_priority_nodes or 0,
        task_slots_per_node=pool.task_slots_per_node or 1,
        node_fill_type=choice(
            NodeFillType, policy.node_fill_type if policy else None, NodeFillType.SPREAD
        ),
        job_default_order=wire_value(policy.job_default_order) if policy else None,
        node_agent_sku_id=configuration.node_agent_sku_id if configuration else None,
        image_reference=image_reference_spec(
            configuration.image_reference if configuration else None
        ),
        display_name=pool.display_name,
        metadata=metadata(pool.metadata),
        resize_timeout=pool.resize_timeout or DEFAULT_RESIZE_TIMEOUT,
        enable_inter_node_communication=bool(pool.enable_inter_node_communication),
        start_task=start_task_spec(pool.start_task),
        user_accounts=user_account_specs(pool.user_accounts),
        enable_auto_scale=bool(pool.enable_auto_scale),
        auto_scale_formula=pool.auto_scale_formula,
        auto_scale_evaluation_interval=pool.auto_scale_evaluation_interval,
        inbound_nat_pools=inbound_nat_pools(pool.network_configuration),
        container_configuration=container_configuration_spec(
            configuration.container_configuration if configuration else None
        ),
        upgrade_policy_mode=wire_value(pool.upgrade_policy.mode) if pool.upgrade_policy else None,
        node_placement_policy=_placement(configuration),
        os_disk=os_disk_spec(configuration.os_disk if configuration else None),
    )


def upgrade_policy(mode: str | None) -> models.UpgradePolicy | None:
    return models.UpgradePolicy(mode=mode) if mode is not None else None


def _placement(configuration: models.VirtualMachineConfiguration | None) -> str | None:
    placement = configuration.node_placement_configuration if configuration else None
    return wire_value(placement.policy) if placement is not None else None


def os_disk(disk: OsDisk | None) -> models.BatchOsDisk | None:
    if disk is None:
        return None
    return models.BatchOsDisk(
        caching=disk.caching, write_accelerator_enabled=disk.write_accelerator_enabled
    )


def os_disk_spec(disk: models.BatchOsDisk | None) -> OsDisk | None:
    """A pool's ``osDisk`` (caching and the write accelerator; the others are not mapped)."""
    if disk is None:
        return None
    return OsDisk(
        caching=wire_value(disk.caching), write_accelerator_enabled=disk.write_accelerator_enabled
    )


def network_configuration(pools: Sequence[InboundNatPool]) -> models.NetworkConfiguration | None:
    """A pool's network configuration: its inbound NAT pools (None: none)."""
    if not pools:
        return None
    return models.NetworkConfiguration(
        endpoint_configuration=models.BatchPoolEndpointConfiguration(
            inbound_nat_pools=[models.BatchInboundNatPool(**asdict(nat)) for nat in pools]
        )
    )


def inbound_nat_pools(
    configuration: models.NetworkConfiguration | None,
) -> tuple[InboundNatPool, ...]:
    endpoints = configuration.endpoint_configuration if configuration else None
    return tuple(
        InboundNatPool(
            name=nat.name,
            protocol=wire_value(nat.protocol) or "tcp",
            backend_port=nat.backend_port,
            frontend_port_range_start=nat.frontend_port_range_start,
            frontend_port_range_end=nat.frontend_port_range_end,
        )
        for nat in (endpoints.inbound_nat_pools if endpoints else None) or ()
    )


def pool_update_options(update: PoolUpdate) -> models.BatchPoolUpdateOptions:
    """Update Pool's body: the properties `update` gives (metadata, even empty, when given)."""
    configuration = None
    if update.image_reference is not None and update.node_agent_sku_id is not None:
        configuration = models.VirtualMachineConfiguration(
            image_reference=image_reference_model(update.image_reference),
            node_agent_sku_id=update.node_agent_sku_id,
        )
    fill = update.node_fill_type
    return models.BatchPoolUpdateOptions(
        display_name=update.display_name,
        vm_size=update.vm_size,
        enable_inter_node_communication=update.enable_inter_node_communication,
        start_task=start_task(update.start_task) if update.start_task is not None else None,
        metadata=None if update.metadata is None else metadata_items(update.metadata) or [],
        virtual_machine_configuration=configuration,
        task_slots_per_node=update.task_slots_per_node,
        task_scheduling_policy=models.BatchTaskSchedulingPolicy(
            node_fill_type=fill.value, job_default_order=update.job_default_order
        )
        if fill is not None
        else None,
        user_accounts=None
        if update.user_accounts is None
        else user_accounts(update.user_accounts) or [],
        upgrade_policy=upgrade_policy(update.upgrade_policy_mode),
    )


def pool_update(options: models.BatchPoolUpdateOptions) -> PoolUpdate:
    """Update Pool's body as a `PoolUpdate` (``image`` None: the backend's choice)."""
    configuration = options.virtual_machine_configuration
    policy = options.task_scheduling_policy
    return PoolUpdate(
        display_name=options.display_name,
        vm_size=options.vm_size,
        enable_inter_node_communication=options.enable_inter_node_communication,
        start_task=start_task_spec(options.start_task),
        metadata=None if options.metadata is None else metadata(options.metadata),
        task_slots_per_node=options.task_slots_per_node,
        node_fill_type=optional_choice(NodeFillType, policy.node_fill_type) if policy else None,
        job_default_order=wire_value(policy.job_default_order) if policy else None,
        image_reference=image_reference_spec(configuration.image_reference)
        if configuration
        else None,
        node_agent_sku_id=configuration.node_agent_sku_id if configuration else None,
        user_accounts=None
        if options.user_accounts is None
        else user_account_specs(options.user_accounts),
        upgrade_policy_mode=wire_value(options.upgrade_policy.mode)
        if options.upgrade_policy
        else None,
    )


def pool_replace_options(
    start: StartTaskSpec | None, items: Mapping[str, str]
) -> models.BatchPoolReplaceOptions:
    """Replace Pool Properties' body: the start task (absent: removed) and all the metadata;
    no application packages (none are emulated)."""
    return models.BatchPoolReplaceOptions(
        start_task=start_task(start) if start is not None else None,
        application_package_references=[],
        metadata=metadata_items(items) or [],
    )


def pool_replacement(
    options: models.BatchPoolReplaceOptions,
) -> tuple[StartTaskSpec | None, dict[str, str]]:
    """Replace Pool Properties' body: the start task and the metadata it sets."""
    return start_task_spec(options.start_task), metadata(options.metadata)


# --- jobs ------------------------------------------------------------------------------------


def _task_settings(spec: JobPreparationTaskSpec | JobReleaseTaskSpec | TaskSpec) -> dict[str, Any]:
    """What every kind of task has: id, command line, files, environment, identity."""
    return {
        "id": spec.id,
        "command_line": spec.command_line,
        "resource_files": resource_files(spec.resource_files),
        "environment_settings": environment_settings(spec.environment),
        "user_identity": user_identity(spec.user_identity),
        "container_settings": container_settings(spec.container_settings),
    }


def _task_settings_spec(
    task: models.BatchJobPreparationTask
    | models.BatchJobReleaseTask
    | models.BatchTaskCreateOptions
    | models.BatchTask,
) -> dict[str, Any]:
    return {
        "command_line": task.command_line or "",
        "environment": environment(task.environment_settings),
        "resource_files": resource_file_specs(task.resource_files),
        "user_identity": user_identity_spec(task.user_identity),
        "container_settings": container_settings_spec(task.container_settings),
    }


def preparation_task(spec: JobPreparationTaskSpec) -> models.BatchJobPreparationTask:
    return models.BatchJobPreparationTask(
        **_task_settings(spec),
        constraints=task_constraints(spec.constraints),
        wait_for_success=spec.wait_for_success,
        rerun_on_node_reboot_after_success=spec.rerun_on_node_reboot_after_success,
    )


def preparation_task_spec(task: models.BatchJobPreparationTask) -> JobPreparationTaskSpec:
    return JobPreparationTaskSpec(
        **_task_settings_spec(task),
        id=task.id or JOB_PREPARATION_TASK_ID,
        wait_for_success=task.wait_for_success is not False,
        rerun_on_node_reboot_after_success=task.rerun_on_node_reboot_after_success is not False,
        constraints=task_constraints_spec(task.constraints),
    )


def release_task(spec: JobReleaseTaskSpec) -> models.BatchJobReleaseTask:
    return models.BatchJobReleaseTask(
        **_task_settings(spec),
        max_wall_clock_time=spec.max_wall_clock_time,
        retention_time=spec.retention_time,
    )


def release_task_spec(task: models.BatchJobReleaseTask) -> JobReleaseTaskSpec:
    """A release task's settings; its wall clock is 15 minutes unless shorter (Batch's rule)."""
    wall_clock = task.max_wall_clock_time
    if wall_clock is not None and (
        limited(wall_clock) is None or wall_clock > RELEASE_MAX_WALL_CLOCK
    ):
        raise PropertyError(
            "jobReleaseTask.maxWallClockTime", "a job release task runs 15 minutes at most"
        )
    return JobReleaseTaskSpec(
        **_task_settings_spec(task),
        id=task.id or JOB_RELEASE_TASK_ID,
        max_wall_clock_time=wall_clock or RELEASE_MAX_WALL_CLOCK,
        retention_time=limited(task.retention_time),
    )


def pool_info(spec: JobSpec) -> models.BatchPoolInfo:
    """The job's pool: its id, or the auto pool's specification (with the id too when a
    request gave both, for the endpoint to refuse; the service reports the specification
    alone, the auto pool's id in the job's ``executionInfo.poolId``)."""
    auto = spec.auto_pool
    if auto is None:
        return models.BatchPoolInfo(pool_id=spec.pool_id)
    pool = pool_create_options(auto.pool).as_dict()
    pool.pop("id", None)
    return models.BatchPoolInfo(
        pool_id=spec.pool_id or None,
        auto_pool_specification=models.BatchAutoPoolSpecification(
            auto_pool_id_prefix=auto.id_prefix,
            pool_lifetime_option=auto.lifetime.value,
            keep_alive=auto.keep_alive or None,
            pool=models.BatchPoolSpecification(pool),
        ),
    )


def auto_pool_spec(auto: models.BatchAutoPoolSpecification | None) -> AutoPoolSpec | None:
    if auto is None:
        return None
    pool = auto.pool.as_dict() if auto.pool is not None else {}
    return AutoPoolSpec(
        pool=pool_spec(models.BatchPoolCreateOptions({**pool, "id": ""})),
        id_prefix=auto.auto_pool_id_prefix,
        lifetime=choice(PoolLifetimeOption, auto.pool_lifetime_option, PoolLifetimeOption.JOB),
        keep_alive=bool(auto.keep_alive),
    )


def job_create_options(spec: JobSpec) -> models.BatchJobCreateOptions:
    return models.BatchJobCreateOptions(
        id=spec.id,
        display_name=spec.display_name,
        pool_info=pool_info(spec),
        job_preparation_task=preparation_task(spec.preparation) if spec.preparation else None,
        job_release_task=release_task(spec.release) if spec.release else None,
        common_environment_settings=environment_settings(spec.common_environment),
        all_tasks_complete_mode=spec.on_all_tasks_complete.value,
        constraints=job_constraints(
            JobConstraints(spec.max_wall_clock_time, spec.max_task_retry_count)
        ),
        metadata=metadata_items(spec.metadata),
        # the service's defaults go unsaid: maxParallelTasks and allowTaskPreemption are "not
        # available by default" on an account, so a job that does not use them never sends them
        uses_task_dependencies=spec.uses_task_dependencies or None,
        task_failure_mode=None
        if spec.on_task_failure is OnTaskFailure.NO_ACTION
        else spec.on_task_failure.value,
        priority=spec.priority or None,
        max_parallel_tasks=None if spec.max_parallel_tasks == -1 else spec.max_parallel_tasks,
        allow_task_preemption=spec.allow_task_preemption or None,
    )


def job_constraints(constraints: JobConstraints) -> models.BatchJobConstraints:
    return models.BatchJobConstraints(
        max_wall_clock_time=constraints.max_wall_clock_time,
        max_task_retry_count=constraints.max_task_retry_count,
    )


def job_constraints_spec(constraints: models.BatchJobConstraints | None) -> JobConstraints:
    if constraints is None:
        return JobConstraints()
    return JobConstraints(
        max_wall_clock_time=limited(constraints.max_wall_clock_time),
        max_task_retry_count=constraints.max_task_retry_count or 0,
    )


def job_update_options(update: JobUpdate) -> models.BatchJobUpdateOptions:
    """Update Job's body (what `update` gives; the rest left out, so left unchanged)."""
    return models.BatchJobUpdateOptions(
        priority=update.priority,
        max_parallel_tasks=update.max_parallel_tasks,
        allow_task_preemption=update.allow_task_preemption,
        constraints=job_constraints(update.constraints) if update.constraints else None,
        pool_info=_updated_pool_info(update),
        all_tasks_complete_mode=update.on_all_tasks_complete.value
        if update.on_all_tasks_complete
        else None,
        metadata=None if update.metadata is None else metadata_items(update.metadata) or [],
    )


def _updated_pool_info(update: JobUpdate) -> models.BatchPoolInfo | None:
    if update.auto_pool is not None:
        return pool_info(JobSpec(id="", pool_id=update.pool_id or "", auto_pool=update.auto_pool))
    return models.BatchPoolInfo(pool_id=update.pool_id) if update.pool_id else None


def job_replacement(update: JobUpdate, pool_id: str) -> models.BatchJob:
    """Replace Job's body: `update` as a job (``poolInfo`` required: `pool_id` unless it
    changes the pool or gives the auto pool)."""
    options = job_update_options(update)
    if options.pool_info is None:
        options.pool_info = models.BatchPoolInfo(pool_id=pool_id)
    return models.BatchJob(options.as_dict())


def job_update(job: models.BatchJobUpdateOptions | models.BatchJob) -> JobUpdate:
    """Update Job's (or Replace Job's) body as a `JobUpdate`: what it leaves out is None."""
    return JobUpdate(
        priority=job.priority,
        max_parallel_tasks=job.max_parallel_tasks,
        allow_task_preemption=job.allow_task_preemption,
        constraints=None if job.constraints is None else job_constraints_spec(job.constraints),
        pool_id=job.pool_info.pool_id if job.pool_info else None,
        auto_pool=auto_pool_spec(job.pool_info.auto_pool_specification if job.pool_info else None),
        on_all_tasks_complete=optional_choice(OnAllTasksComplete, job.all_tasks_complete_mode),
        metadata=None if job.metadata is None else metadata(job.metadata),
    )


def job_spec(job: models.BatchJobCreateOptions | models.BatchJob) -> JobSpec:
    """A job's settings (a request's, or as the service reports them) as a `JobSpec`."""
    prep, release, constraints = job.job_preparation_task, job.job_release_task, job.constraints
    return JobSpec(
        id=job.id or "",
        pool_id=job.pool_info.pool_id if job.pool_info and job.pool_info.pool_id else "",
        auto_pool=auto_pool_spec(job.pool_info.auto_pool_specification if job.pool_info else None),
        preparation=preparation_task_spec(prep) if prep is not None else None,
        release=release_task_spec(release) if release is not None else None,
        common_environment=environment(job.common_environment_settings),
        on_all_tasks_complete=choice(
            OnAllTasksComplete, job.all_tasks_complete_mode, OnAllTasksComplete.NO_ACTION
        ),
        max_task_retry_count=job_constraints_spec(constraints).max_task_retry_count,
        max_wall_clock_time=job_constraints_spec(constraints).max_wall_clock_time,
        display_name=job.display_name,
        metadata=metadata(job.metadata),
        on_task_failure=choice(OnTaskFailure, job.task_failure_mode, OnTaskFailure.NO_ACTION),
        uses_task_dependencies=bool(job.uses_task_dependencies),
        priority=job.priority or 0,
        max_parallel_tasks=-1 if job.max_parallel_tasks is None else job.max_parallel_tasks,
        allow_task_preemption=bool(job.allow_task_preemption),
    )


# --- tasks -----------------------------------------------------------------------------------


def task_create_options(spec: TaskSpec) -> models.BatchTaskCreateOptions:
    return models.BatchTaskCreateOptions(
        **_task_settings(spec),
        display_name=spec.display_name,
        constraints=task_constraints(spec.constraints),
        required_slots=spec.required_slots,
        exit_conditions=exit_conditions(spec.exit_conditions),
        depends_on=task_dependencies(spec.depends_on),
        output_files=output_files(spec.output_files),
        multi_instance_settings=_multi_instance(spec.multi_instance),
    )


def _multi_instance(settings: MultiInstanceSettings | None) -> models.MultiInstanceSettings | None:
    if settings is None:
        return None
    model = models.MultiInstanceSettings({"numberOfInstances": settings.number_of_instances})
    if settings.coordination_command_line is not None:
        model.coordination_command_line = settings.coordination_command_line
    model.common_resource_files = resource_files(settings.common_resource_files)
    return model


def _multi_instance_spec(
    settings: models.MultiInstanceSettings | None,
) -> MultiInstanceSettings | None:
    if settings is None:
        return None
    return MultiInstanceSettings(
        number_of_instances=settings.number_of_instances or 1,
        coordination_command_line=settings.coordination_command_line,
        common_resource_files=resource_file_specs(settings.common_resource_files),
    )


def task_spec(task: models.BatchTaskCreateOptions | models.BatchTask) -> TaskSpec:
    """A task's settings (a request's, or as the service reports them) as a `TaskSpec`."""
    return TaskSpec(
        **_task_settings_spec(task),
        id=task.id or "",
        constraints=task_constraints_spec(task.constraints),
        required_slots=task.required_slots or 1,
        display_name=task.display_name,
        exit_conditions=exit_conditions_spec(task.exit_conditions),
        depends_on=task_dependencies_spec(task.depends_on),
        output_files=output_file_specs(task.output_files),
        multi_instance=_multi_instance_spec(task.multi_instance_settings),
    )


# --- the service's limits --------------------------------------------------------------------

Limit = Callable[[Any], str | None]
"""A check of one property's value (JSON, as `shapes.conform` gives it): why the service
refuses it, or None."""


def _within(low: int | None = None, high: int | None = None) -> Limit:
    def check(value: Any) -> str | None:
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            return f"{value} is not an integer {bounds}"
        return None

    return check


def _at_least(shortest: timedelta) -> Limit:
    def check(value: Any) -> str | None:
        length = parse_duration(value)
        if length is not None and length < shortest:
            return f"{value} is shorter than {format_duration(shortest)}"
        return None

    return check


def _duration_within(shortest: timedelta, longest: timedelta) -> Limit:
    def check(value: Any) -> str | None:
        length = parse_duration(value)
        if length is not None and not shortest <= length <= longest:
            bounds = f"{format_duration(shortest)} to {format_duration(longest)}"
            return f"{value} is not from {bounds}"
        return None

    return check


def _longest_text(characters: int) -> Limit:
    def check(value: Any) -> str | None:
        if len(value) > characters:
            return f"{len(value)} characters are more than {characters}"
        return None

    return check


def _id(value: Any) -> str | None:
    try:
        check_id("object", value)
    except InvalidRequest:
        return f"{value!r} is not 1 to 64 letters, digits, hyphens or underscores"
    return None


def _parallel(value: Any) -> str | None:
    if value == -1 or value > 0:
        return None
    return f"{value} is neither -1 nor greater than 0"


def _id_prefix(value: Any) -> str | None:
    if len(value) > 20 or not re.fullmatch(r"[A-Za-z0-9_-]*", value):
        return f"{value!r} is not up to 20 letters, digits, hyphens or underscores"
    return None


def _unique_names(value: Any) -> str | None:
    names = [str(item.get("name", "")) for item in value if isinstance(item, Mapping)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    return f"the name {repeated[0]} is given more than once" if repeated else None


_POSITIVE = _at_least(timedelta(seconds=1))
_NAT_POOL_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,75}[A-Za-z0-9_])?")


def _frontend_port(value: Any) -> str | None:
    if 1 <= value <= 65534 and not 50000 <= value <= 55000:
        return None
    return "1 to 65534 but 50000 to 55000, which Batch reserves"


LOCAL_SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
"""The subscription the local account is taken to be in (it has none): every real subnet is
then one of another subscription, refused as the service refuses it."""
_SUBNET_ID = re.compile(
    r"/subscriptions/(?P<subscription>[^/]+)/resourceGroups/[^/]+/providers/"
    r"Microsoft\.(?:Network|ClassicNetwork)/virtualNetworks/[^/]+/subnets/[^/]+",
    re.IGNORECASE,
)


def subnet_refusal(subnet_id: str) -> str | None:
    """Why a pool's ``subnetId`` is refused with 400 (the service's recorded reason for a
    subnet of another subscription), or None for one of `LOCAL_SUBSCRIPTION` (the endpoint
    then refuses it with 501: its nodes join no virtual network)."""
    found = _SUBNET_ID.fullmatch(subnet_id)
    if found is None:
        return (
            "The specified subnetId must be of the form /subscriptions/{subscription}/"
            "resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks/{vnet}/"
            "subnets/{subnet}"
        )
    if found["subscription"].lower() != LOCAL_SUBSCRIPTION:
        return (
            "The specified subnetId is in a different subscription and cannot be used with "
            f"the current Batch account in subscription {LOCAL_SUBSCRIPTION}"
        )
    return None


_EVALUATION_INTERVAL = _duration_within(timedelta(minutes=5), timedelta(hours=168))
_DISPLAY_NAME = _longest_text(1024)
_CONSTRAINTS = {"maxTaskRetryCount": _within(-1), "maxWallClockTime": _POSITIVE}
_TASK_LIMITS = {"id": _id, "displayName": _DISPLAY_NAME, "environmentSettings": _unique_names}

_POOL_LIMITS: Mapping[str, Limit] = {
    "displayName": _DISPLAY_NAME,
    "resizeTimeout": _at_least(timedelta(minutes=5)),
    "taskSlotsPerNode": _within(1, 256),
    "targetDedicatedNodes": _within(0),
    "targetLowPriorityNodes": _within(0),
    "metadata": _unique_names,
    "userAccounts": _unique_names,
    "autoScaleEvaluationInterval": _EVALUATION_INTERVAL,
}
"""Add Pool's limits, an auto pool's specification's too."""

LIMITS: Mapping[type, Mapping[str, Limit]] = {
    models.BatchPoolCreateOptions: {"id": _id, **_POOL_LIMITS},
    models.BatchPoolSpecification: _POOL_LIMITS,
    models.UserAccount: {"name": _longest_text(20)},
    models.BatchPoolUpdateOptions: {
        "displayName": _DISPLAY_NAME,
        "taskSlotsPerNode": _within(1, 256),
        "metadata": _unique_names,
        "userAccounts": _unique_names,
    },
    models.BatchPoolReplaceOptions: {"metadata": _unique_names},
    models.BatchPoolEnableAutoScaleOptions: {"autoScaleEvaluationInterval": _EVALUATION_INTERVAL},
    models.BatchAutoPoolSpecification: {"autoPoolIdPrefix": _id_prefix},
    models.BatchPoolResizeOptions: {
        "resizeTimeout": _at_least(timedelta(minutes=5)),
        "targetDedicatedNodes": _within(0),
        "targetLowPriorityNodes": _within(0),
    },
    models.NetworkConfiguration: {"subnetId": lambda value: subnet_refusal(str(value))},
    models.BatchPoolEndpointConfiguration: {
        "inboundNATPools": lambda value: None if len(value) <= 5 else "at most 5 NAT pools",
    },
    models.BatchInboundNatPool: {
        "name": lambda value: (
            None
            if _NAT_POOL_NAME.fullmatch(str(value))
            else "letters, digits, underscores, periods and hyphens, at most 77, starting with a "
            "letter or digit, ending with a letter, digit or underscore"
        ),
        "backendPort": lambda value: (
            None
            if 1 <= value <= 65535 and value not in (29876, 29877)
            else "1 to 65535 but 29876 and 29877, which Batch reserves"
        ),
        "frontendPortRangeStart": _frontend_port,
        "frontendPortRangeEnd": _frontend_port,
    },
    models.BatchNodeRemoveOptions: {
        "resizeTimeout": _at_least(timedelta(minutes=5)),
        "nodeList": lambda value: None if 1 <= len(value) <= 100 else "give 1 to 100 node ids",
    },
    models.BatchJobCreateOptions: {
        "id": _id,
        "displayName": _DISPLAY_NAME,
        "priority": _within(-1000, 1000),
        "maxParallelTasks": _parallel,
        "metadata": _unique_names,
        "commonEnvironmentSettings": _unique_names,
    },
    models.BatchJobUpdateOptions: {
        "priority": _within(-1000, 1000),
        "maxParallelTasks": _parallel,
        "metadata": _unique_names,
    },
    models.BatchJob: {
        "priority": _within(-1000, 1000),
        "maxParallelTasks": _parallel,
        "metadata": _unique_names,
    },
    models.BatchStartTask: {
        "environmentSettings": _unique_names,
        "maxTaskRetryCount": _within(-1),
    },
    models.BatchJobConstraints: _CONSTRAINTS,
    models.BatchJobScheduleCreateOptions: {
        "id": _id,
        "displayName": _DISPLAY_NAME,
        "metadata": _unique_names,
    },
    models.BatchJobScheduleConfiguration: {
        "startWindow": _at_least(timedelta(minutes=1)),
        "recurrenceInterval": _at_least(timedelta(minutes=1)),
    },
    models.BatchJobSpecification: {
        "displayName": _DISPLAY_NAME,
        "priority": _within(-1000, 1000),
        "maxParallelTasks": _within(-1),
        "metadata": _unique_names,
        "commonEnvironmentSettings": _unique_names,
    },
    models.BatchTaskConstraints: _CONSTRAINTS,
    models.BatchJobPreparationTask: _TASK_LIMITS,
    models.BatchJobReleaseTask: {**_TASK_LIMITS, "maxWallClockTime": _POSITIVE},
    models.BatchTaskCreateOptions: {**_TASK_LIMITS, "requiredSlots": _within(1)},
    models.MultiInstanceSettings: {"numberOfInstances": _within(1)},
}
"""Per model, the limits the service sets on its properties' values, each refused with 400
``InvalidPropertyValue`` naming the property. Source: the Batch REST API reference
(api-version 2025-06-01): Add Pool (``id`` up to 64 letters, digits, hyphens and underscores;
``displayName`` up to 1,024 characters; ``resizeTimeout`` at least 5 minutes;
``taskSlotsPerNode`` at most 256; ``autoScaleEvaluationInterval`` 5 minutes to 168 hours, as
Enable Pool Auto Scale has it too), Resize Pool, Remove Nodes (``nodeList`` of at most 100
ids), Add Job, Update Job and Replace Job (``priority`` -1000 to 1000; ``maxParallelTasks``
-1 or greater than 0), Add Task (``requiredSlots`` at least 1), the constraints
(``maxTaskRetryCount`` -1, unlimited, or more; ``maxWallClockTime`` a positive duration) and
metadata and environment settings (names unique in their list), Add Job Schedule
(``startWindow`` and ``recurrenceInterval`` at least 1 minute)."""


def check_limits(model: type, document: Mapping[str, Any], path: str = "") -> None:
    """`PropertyError` (path and reason) for the first value of `document` (JSON of `model`,
    conformed) outside the service's limits (`LIMITS`), recursively."""
    known = properties(model)
    limits = LIMITS.get(model, {})
    for name, value in document.items():
        where = join(path, name)
        limit = limits.get(name)
        reason = limit(value) if limit is not None and value is not None else None
        if reason is not None:
            raise PropertyError(where, reason)
        found = known.get(name)
        if found is None:
            continue
        shape = found.shape
        if shape.kind is Kind.MODEL and shape.model is not None and isinstance(value, Mapping):
            check_limits(shape.model, value, where)
        elif shape.kind is Kind.LIST and shape.item and shape.item.model is not None:
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    check_limits(shape.item.model, item, f"{where}[{index}]")

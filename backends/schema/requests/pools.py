"""Add Pool, Update Pool and Replace Pool Properties: `PoolSpec` / `PoolUpdate` <-> the SDK's
pool options, in both directions (images, user accounts, container configuration, start
task, OS disk, inbound NAT pools), and the service's limits on pools and their nodes."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from azure.batch import models

from jobprep_release.backends.base import (
    DEFAULT_RESIZE_TIMEOUT,
    ContainerConfiguration,
    ElevationLevel,
    ImageReference,
    InboundNatPool,
    NodeFillType,
    OsDisk,
    PoolSpec,
    PoolUpdate,
    StartTaskSpec,
    UserAccount,
)
from jobprep_release.backends.errors import InvalidRequest
from jobprep_release.backends.schema.requests.common import (
    DISPLAY_NAME,
    Limit,
    at_least,
    choice,
    container_settings,
    container_settings_spec,
    duration_within,
    enum_text,
    environment,
    environment_settings,
    id_limit,
    longest_text,
    metadata,
    metadata_items,
    optional_choice,
    resource_file_specs,
    resource_files,
    unique_names,
    user_identity,
    user_identity_spec,
    wire_value,
    within,
)

DEFAULT_IMAGE = "canonical:ubuntu-24_04-lts:server:latest"


DEFAULT_NODE_AGENT_SKU = "batch.node.ubuntu 24.04"


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
        type=enum_text(configuration.type) or "dockerCompatible",
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


# --- the service's limits -------------------------------------------------------------------------


def _id_prefix(value: Any) -> str | None:
    if len(value) > 20 or not re.fullmatch(r"[A-Za-z0-9_-]*", value):
        return f"{value!r} is not up to 20 letters, digits, hyphens or underscores"
    return None


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


_EVALUATION_INTERVAL = duration_within(timedelta(minutes=5), timedelta(hours=168))


_POOL_LIMITS: Mapping[str, Limit] = {
    "displayName": DISPLAY_NAME,
    "resizeTimeout": at_least(timedelta(minutes=5)),
    "taskSlotsPerNode": within(1, 256),
    "targetDedicatedNodes": within(0),
    "targetLowPriorityNodes": within(0),
    "metadata": unique_names,
    "userAccounts": unique_names,
    "autoScaleEvaluationInterval": _EVALUATION_INTERVAL,
}
"""Add Pool's limits, an auto pool's specification's too."""


LIMITS: Mapping[type, Mapping[str, Limit]] = {
    models.BatchPoolCreateOptions: {"id": id_limit, **_POOL_LIMITS},
    models.BatchPoolSpecification: _POOL_LIMITS,
    models.UserAccount: {"name": longest_text(20)},
    models.BatchPoolUpdateOptions: {
        "displayName": DISPLAY_NAME,
        "taskSlotsPerNode": within(1, 256),
        "metadata": unique_names,
        "userAccounts": unique_names,
    },
    models.BatchPoolReplaceOptions: {"metadata": unique_names},
    models.BatchPoolEnableAutoScaleOptions: {"autoScaleEvaluationInterval": _EVALUATION_INTERVAL},
    models.BatchAutoPoolSpecification: {"autoPoolIdPrefix": _id_prefix},
    models.BatchPoolResizeOptions: {
        "resizeTimeout": at_least(timedelta(minutes=5)),
        "targetDedicatedNodes": within(0),
        "targetLowPriorityNodes": within(0),
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
        "resizeTimeout": at_least(timedelta(minutes=5)),
        "nodeList": lambda value: None if 1 <= len(value) <= 100 else "give 1 to 100 node ids",
    },
    models.BatchStartTask: {
        "environmentSettings": unique_names,
        "maxTaskRetryCount": within(-1),
    },
}
"""The service's limits on pools' properties, their nodes' (Remove Nodes) and their start
tasks' (`limits.LIMITS` has the sources)."""

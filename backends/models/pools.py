"""Pools: the pool to create (`PoolSpec`, with its start task, user accounts, image and
network settings), Update Pool (`PoolUpdate`), and the pool as the service reports it (`Pool`,
with its autoscale runs and resize errors)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from jobprep_release.backends.models.common import (
    ElevationLevel,
    ResourceFile,
    TaskContainerSettings,
    UserIdentity,
)
from jobprep_release.backends.models.value import Value

DEFAULT_RESIZE_TIMEOUT = timedelta(minutes=15)
DEFAULT_AUTO_SCALE_EVALUATION_INTERVAL = timedelta(minutes=15)


class NodeFillType(StrEnum):
    SPREAD = "spread"
    PACK = "pack"


class PoolState(StrEnum):
    ACTIVE = "active"
    DELETING = "deleting"


class AllocationState(StrEnum):
    STEADY = "steady"
    RESIZING = "resizing"
    STOPPING = "stopping"


# --- specs: what the app asks for ------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class UserAccount(Value):
    """A user account the service creates on every node of a pool (REST UserAccount, with its
    linuxUserConfiguration: `uid` and `gid` chosen by the node when None, `ssh_private_key`
    for SSH between the pool's nodes)."""

    name: str
    password: str
    elevation_level: ElevationLevel = ElevationLevel.NON_ADMIN
    uid: int | None = None
    gid: int | None = None
    ssh_private_key: str | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ImageReference(Value):
    """A pool's image as Batch names it: a marketplace image (`publisher`, `offer`, `sku`,
    `version`) or an image id (`virtual_machine_image_id`; a Docker image on the local endpoint).
    """

    publisher: str | None = None
    offer: str | None = None
    sku: str | None = None
    version: str | None = None
    virtual_machine_image_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class InboundNatPool(Value):
    """An inbound NAT pool of the pool's endpoint configuration (REST BatchInboundNatPool):
    each node's `backend_port` is reached from outside on a port of the frontend range."""

    name: str
    protocol: str
    backend_port: int
    frontend_port_range_start: int
    frontend_port_range_end: int


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ContainerConfiguration(Value):
    """A pool's ``virtualMachineConfiguration.containerConfiguration``: `type`
    ``dockerCompatible`` (or ``criCompatible``), and the images each node pulls as it starts
    (`container_image_names`). Registries are not emulated (no registry is reachable here)."""

    type: str = "dockerCompatible"
    container_image_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class OsDisk(Value):
    """A pool's ``virtualMachineConfiguration.osDisk`` as far as a local node honours it: the
    REST reference's defaults (BatchOsDisk: caching ``none`` for standard storage; the write
    accelerator off), kept and shown back. Other settings (ephemeral placement, size, managed
    disk) would need an Azure VM disk: refused."""

    caching: str | None = None
    write_accelerator_enabled: bool | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class StartTaskSpec(Value):
    """A pool's start task (REST StartTask): run on each node as it joins the pool, and again
    when it reboots or is reimaged. `max_task_retry_count` 0 (the default) runs it once, -1
    retries without limit; with `wait_for_success` (the service's default) the node takes no
    task until it succeeds, and is `starttaskfailed` when it fails for good."""

    command_line: str
    environment: Mapping[str, str] = field(default_factory=dict)
    resource_files: Sequence[ResourceFile] = ()
    user_identity: UserIdentity = field(default_factory=UserIdentity)
    max_task_retry_count: int = 0
    wait_for_success: bool = True
    container_settings: TaskContainerSettings | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PoolSpec(Value):
    """A pool to create. `image` is backend-specific: a Docker image, or an Azure image URN;
    `image_reference`, when given, is the image as the Batch API names it (the azure backend
    sends it instead of `image`; the local endpoint shows it back).

    `display_name`, `metadata` (name -> value, in order), `resize_timeout` and
    `enable_inter_node_communication` are Batch's pool properties of those names: kept and
    reported back (containers of one pool can reach each other).
    """

    id: str
    vm_size: str = "standard_d1_v2"
    target_dedicated_nodes: int = 2
    target_low_priority_nodes: int = 0
    task_slots_per_node: int = 1
    node_fill_type: NodeFillType = NodeFillType.PACK
    image: str | None = None
    node_agent_sku_id: str | None = None
    image_reference: ImageReference | None = None
    display_name: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    resize_timeout: timedelta = DEFAULT_RESIZE_TIMEOUT
    enable_inter_node_communication: bool = False
    inbound_nat_pools: tuple[InboundNatPool, ...] = ()
    """``networkConfiguration.endpointConfiguration.inboundNATPools``."""
    start_task: StartTaskSpec | None = None
    user_accounts: Sequence[UserAccount] = ()
    enable_auto_scale: bool = False
    """Autoscale (REST enableAutoScale): the targets come from `auto_scale_formula`, evaluated
    every `auto_scale_evaluation_interval` (15 minutes when None)."""
    auto_scale_formula: str | None = None
    auto_scale_evaluation_interval: timedelta | None = None
    container_configuration: ContainerConfiguration | None = None
    job_default_order: str | None = None
    """``taskSchedulingPolicy.jobDefaultOrder``: ``none`` or ``creationtime`` (jobs of equal
    priority get slots oldest first here, which either allows); None when not given."""
    upgrade_policy_mode: str | None = None
    """``upgradePolicy.mode``: ``manual`` (the only mode a local node has: its image changes
    only when Update Pool changes it on an empty pool); None when not given."""
    node_placement_policy: str | None = None
    """``virtualMachineConfiguration.nodePlacementConfiguration.policy``: ``regional`` (the
    service's default; every local node is in one place); None when not given."""
    os_disk: OsDisk | None = None
    target_node_communication_mode: str | None = None
    """``targetNodeCommunicationMode`` (api-versions 2022-10-01.16.0 to 2024-07-01.20.0):
    ``default``, ``classic`` or ``simplified``; None when not given."""
    resource_tags: Mapping[str, str] = field(default_factory=dict)
    """``resourceTags`` (api-versions before 2025-06-01): kept and shown back; a local pool
    has no Azure resources to propagate them to."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PoolUpdate(Value):
    """Update Pool (REST PATCH ``/pools/{poolId}``): each property given replaces the pool's;
    None leaves it as it is. A start task given applies on nodes that join the pool or boot
    afresh from then on (REST BatchPoolUpdateOptions.startTask); `metadata` replaces all of
    it (an empty mapping removes it). The others (display name, VM size, slots, fill type,
    image, inter-node communication, user accounts, upgrade policy) "can be updated only when
    the pool is empty"; `target_node_communication_mode` (PATCH before api-version 2025-06-01)
    at any time."""

    display_name: str | None = None
    vm_size: str | None = None
    enable_inter_node_communication: bool | None = None
    start_task: StartTaskSpec | None = None
    metadata: Mapping[str, str] | None = None
    task_slots_per_node: int | None = None
    node_fill_type: NodeFillType | None = None
    job_default_order: str | None = None
    image_reference: ImageReference | None = None
    node_agent_sku_id: str | None = None
    user_accounts: Sequence[UserAccount] | None = None
    upgrade_policy_mode: str | None = None
    target_node_communication_mode: str | None = None
    image: str | None = None
    """The backend's image for `image_reference` (a Docker image on the local endpoint)."""

    def applied_to(self, spec: PoolSpec) -> PoolSpec:
        """`spec` with this update's properties in place of its own."""
        changes = {
            name: getattr(self, name)
            for name in self.__slots__
            if name != "image" and getattr(self, name) is not None
        }
        if self.image_reference is not None:
            changes["image"] = self.image
        return replace(spec, **changes)


# --- views: what the service reports ---------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Pool(Value):
    id: str
    vm_size: str
    state: PoolState
    allocation_state: AllocationState
    target_dedicated_nodes: int
    current_dedicated_nodes: int
    task_slots_per_node: int
    node_fill_type: NodeFillType
    creation_time: datetime | None = None
    last_modified: datetime | None = None
    etag: str | None = None
    state_transition_time: datetime | None = None
    previous_state: PoolState | None = None
    previous_state_transition_time: datetime | None = None
    allocation_state_transition_time: datetime | None = None
    """The times, ETag and previous state are those the service recorded when the change
    happened; None where a backend does not report them."""
    resize_errors: tuple[ResizeError, ...] = ()
    """Errors of the last resize (REST resizeErrors), once the pool is steady again."""
    target_low_priority_nodes: int = 0
    current_low_priority_nodes: int = 0
    auto_scale_run: AutoScaleRun | None = None
    """The last autoscale evaluation (REST autoScaleRun); None before the first."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class AutoScaleRun(Value):
    """One evaluation of an autoscale formula (REST AutoScaleRun): when, the final value of
    each variable (``$TargetDedicatedNodes=3;...``), or why it failed (`error`)."""

    timestamp: datetime
    results: str | None = None
    error: AutoScaleRunError | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class AutoScaleRunError(Value):
    """Why an evaluation failed (REST AutoScaleRunError): code, message, detail values."""

    code: str
    message: str
    values: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ResizeError(Value):
    """One error of a pool's last resize (REST ResizeError): ``AllocationTimedout``,
    ``ResizeStopped``, ..."""

    code: str
    message: str

"""Every property of Add Pool, Add Job and Add Task (api-version 2025-06-01) is either honoured,
and returned by GET with the value sent, or refused with 501 ``NotSupported`` naming it: never
accepted and dropped.

The properties are enumerated from azure-batch's own create-options models, recursively, so a
property the SDK knows cannot be missed here. Each test sends a valid minimal body plus that one
property (with the required properties of the objects holding it), then reads the object back.
Pools have no nodes (no containers are made); jobs and tasks use one such pool and one job.
"""

from __future__ import annotations

import queue
import threading
import time
import types
import typing
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import anyio
import docker
import isodate  # type: ignore[import-untyped]
import pytest
from azure.batch import BatchClient, models
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from jobprep_release.backends.docker.rest import RunningEndpoint
from jobprep_release.backends.schema.requests import LOCAL_SUBSCRIPTION
from tests.conftest import labelled, remove_labelled
from tests.endpoint.harness import endpoint
from tests.endpoint.support import API_VERSION

SUFFIX = uuid.uuid4().hex[:8]
POOL = f"TestPool-{SUFFIX}-props"
JOB = f"TestJob-{SUFFIX}-props"


# --- the properties, from the SDK's models ---------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    path: str
    """REST names from the body down, ``[0]`` for an array's first item."""
    kind: Any
    """The Python type the SDK declares (str, int, bool, timedelta, ...) or an Enum class."""
    is_list: bool


def _fields(model: type) -> list[tuple[str, Any, bool, bool]]:
    """(REST name, type, is required, is sent on create) of each property of `model`."""
    model()  # the SDK builds its field table on first use
    hints = typing.get_type_hints(model, localns={"_models": models})
    found = []
    for attribute, field in model._attr_to_rest_field.items():  # type: ignore[attr-defined]
        hint = hints[attribute]
        args = typing.get_args(hint)
        optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
        visibility = field._visibility
        found.append(
            (field._rest_name, hint, not optional, visibility is None or "create" in visibility)
        )
    return found


def _plain(hint: Any) -> tuple[Any, bool]:
    """The item type of a hint (Optional and list removed; a str enum as its Enum) and whether
    it was a list."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        enums = [arg for arg in args if isinstance(arg, type) and issubclass(arg, Enum)]
        if enums:
            return enums[0], False
        return _plain(args[0])
    if typing.get_origin(hint) is list:
        return _plain(typing.get_args(hint)[0])[0], True
    return hint, False


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and hasattr(kind, "as_dict")


def leaves(model: type, path: str = "") -> list[Leaf]:
    found: list[Leaf] = []
    for name, hint, _, writable in _fields(model):
        if not writable:
            continue
        kind, is_list = _plain(hint)
        where = f"{path}.{name}" if path else name
        if _is_model(kind):
            found += leaves(kind, where + ("[0]" if is_list else ""))
        else:
            found.append(Leaf(where, kind, is_list))
    return found


# --- sample values ---------------------------------------------------------------------------

# Values that must make sense to what runs them (the rest are any value of their type).
OVERRIDES: dict[str, Any] = {
    "vmSize": "standard_d2_v3",
    "targetDedicatedNodes": 0,  # no containers
    "virtualMachineConfiguration.nodeAgentSKUId": "batch.node.ubuntu 24.04",
    "virtualMachineConfiguration.imageReference.virtualMachineImageId": "debian:bookworm-slim",
    "poolInfo.poolId": POOL,
    "poolInfo.autoPoolSpecification.autoPoolIdPrefix": "sample",  # up to 20 characters
    "poolInfo.autoPoolSpecification.pool.vmSize": "standard_d2_v3",
    "poolInfo.autoPoolSpecification.pool.targetDedicatedNodes": 0,  # no containers
    "poolInfo.autoPoolSpecification.pool.targetLowPriorityNodes": 0,
    "poolInfo.autoPoolSpecification.pool.virtualMachineConfiguration.nodeAgentSKUId": (
        "batch.node.ubuntu 24.04"
    ),
    "poolInfo.autoPoolSpecification.pool.virtualMachineConfiguration.imageReference."
    "virtualMachineImageId": "debian:bookworm-slim",
    "requiredSlots": 2,
}
# Properties an object needs beside the one under test, where the SDK cannot say so (one of
# several sources): a resource file's URL and path, an output file's container.
SIBLINGS: dict[type, dict[str, Any]] = {
    models.ResourceFile: {"httpUrl": "https://example.com/data.txt", "filePath": "data.txt"},
    models.OutputFileDestination: {"container": {"containerUrl": "https://example.com/c?sv=x"}},
    models.BatchInboundNatPool: {
        "name": "web",
        "protocol": "tcp",
        "backendPort": 8080,
        "frontendPortRangeStart": 47000,
        "frontendPortRangeEnd": 47099,
    },
}
# A resource file's other sources replace its URL (one source per file); a blob prefix needs
# a container.
SOURCE_SIBLINGS: dict[str, dict[str, Any]] = {
    "storageContainerUrl": {},
    "autoStorageContainerName": {},
    "blobPrefix": {"storageContainerUrl": "https://example.com/container?sv=x"},
}

# Samples where the type's usual one is outside the service's limits (REST InboundNATPool: a
# frontend range of at least 40 ports; NetworkConfiguration.subnetId: an ARM subnet id, here
# one of the subscription the local account is taken to be in).
NAMED_SAMPLES: dict[str, Any] = {
    "frontendPortRangeStart": 46000,
    "frontendPortRangeEnd": 47199,
    "subnetId": f"/subscriptions/{LOCAL_SUBSCRIPTION}/resourceGroups/g/providers/"
    "Microsoft.Network/virtualNetworks/v/subnets/s",
}


# A named user (``userIdentity.username``) is one of the pool's user accounts: the module's pool
# has the account every sample names, and a pool naming it in its start task gets it too.
ACCOUNTS = [{"name": "sample-username", "password": "sample-password"}]


# The service's defaults (REST reference, api-version 2025-06-01) where a value of the type's
# usual sample (True, an enum's last value) would be the default: a sample equal to the default
# could not tell a property honoured from one dropped.
SERVICE_DEFAULTS: dict[str, Any] = {
    "waitForSuccess": True,
    "rerunOnNodeRebootAfterSuccess": True,
    "killJobOnCompletion": True,
    "runExclusive": True,
    "allowLowPriorityNode": True,
    "enableAutomaticUpdates": True,
    "scope": "pool",
    "elevationLevel": "nonadmin",
    "nodeFillType": "spread",
    "jobDefaultOrder": "none",
    "onAllTasksComplete": "noaction",
    "onTaskFailure": "noaction",
    "workingDirectory": "taskWorkingDirectory",
}


def sample(kind: Any, name: str) -> Any:
    """A value of `kind` for the property `name`, never the service's default for it."""
    default = SERVICE_DEFAULTS.get(name)
    if name in NAMED_SAMPLES:
        return NAMED_SAMPLES[name]
    if isinstance(kind, type) and issubclass(kind, Enum):
        values = [str(member.value) for member in reversed(list(kind))]
        return next(value for value in values if value != default)
    if kind is bool:
        return default is not True
    if kind is int:
        return 2
    if kind is float:
        return 1.5
    if kind is timedelta:
        return "PT10M"
    if kind is datetime:
        return "2025-06-01T00:00:00Z"
    if typing.get_origin(kind) is dict:
        return {"key": "value"}
    if name in ("commandLine", "coordinationCommandLine"):
        return "/bin/true"
    return f"sample-{name}"


def required_of(model: type) -> dict[str, Any]:
    """A minimal valid object of `model`: its required properties, recursively."""
    document: dict[str, Any] = dict(SIBLINGS.get(model, {}))
    for name, hint, required, writable in _fields(model):
        if not (required and writable) or name in document:
            continue
        kind, is_list = _plain(hint)
        value = required_of(kind) if _is_model(kind) else sample(kind, name)
        document[name] = [value] if is_list else value
    return document


def body_with(base: dict[str, Any], model: type, leaf: Leaf) -> tuple[dict[str, Any], Any]:
    """`base` with `leaf` set to a sample value (and the objects on its way made valid)."""
    body = _merge(required_of(model), base)
    node, current = body, model
    parts = leaf.path.split(".")
    for part in parts[:-1]:
        name, is_item = part.removesuffix("[0]"), part.endswith("[0]")
        (hint,) = [h for n, h, _, _ in _fields(current) if n == name]
        current = _plain(hint)[0]
        existing = node.get(name)
        if is_item:
            existing = (existing or [{}])[0]
        child = _merge(required_of(current), existing or {})
        node[name] = [child] if is_item else child
        node = child
    value = OVERRIDES.get(leaf.path, sample(leaf.kind, parts[-1]))
    if parts[-1] in SOURCE_SIBLINGS and "httpUrl" in node:
        del node["httpUrl"]
        node.update(SOURCE_SIBLINGS[parts[-1]])
    node[parts[-1]] = [value] if leaf.is_list else value
    return body, node[parts[-1]]


def _merge(defaults: Any, given: Any) -> Any:
    if isinstance(defaults, dict) and isinstance(given, dict):
        return {**defaults, **{k: _merge(defaults.get(k), v) for k, v in given.items()}}
    return defaults if given is None else given


def at(document: Any, path: str) -> Any:
    for part in path.split("."):
        name, is_item = part.removesuffix("[0]"), part.endswith("[0]")
        if not isinstance(document, dict) or name not in document:
            return None
        document = document[name]
        if is_item:
            document = document[0] if isinstance(document, list) and document else None
    return document


def same(kind: Any, sent: Any, got: Any) -> bool:
    """Equal as the service means it: enums without regard to case, durations by length."""
    if isinstance(sent, list) and isinstance(got, list) and len(sent) == len(got):
        return all(same(kind, a, b) for a, b in zip(sent, got, strict=True))
    if isinstance(kind, type) and issubclass(kind, Enum):
        return isinstance(got, str) and got.lower() == str(sent).lower()
    if kind is timedelta:
        return isinstance(got, str) and isodate.parse_duration(got) == isodate.parse_duration(sent)
    return bool(got == sent)


# --- the endpoint, once for the module -------------------------------------------------------


@dataclass
class Served:
    running: RunningEndpoint
    client: BatchClient

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        request = HttpRequest(method, path, params={"api-version": API_VERSION}, json=body)
        response: Any
        try:
            response = self.client.send_request(request)
        except HttpResponseError as exc:  # the pipeline raises for errors; their answer stands
            assert exc.response is not None
            response = exc.response
        content = response.content
        return response.status_code, (response.json() if content else None)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient
) -> Iterator[Served]:
    """The endpoint served from a thread of its own for the module's tests, with a pool that
    has no nodes and a job on it; afterwards, nothing of the module's pools is left."""
    state_dir: Path = tmp_path_factory.mktemp("state")
    ready: queue.Queue[RunningEndpoint | BaseException] = queue.Queue()
    stop = threading.Event()

    async def serve() -> None:
        try:
            async with endpoint(state_dir) as running:
                ready.put(running)
                await anyio.to_thread.run_sync(stop.wait)
        except BaseException as exc:
            ready.put(exc)
            raise

    thread = threading.Thread(target=anyio.run, args=(serve,), daemon=True)
    thread.start()
    running = ready.get(timeout=120)
    assert isinstance(running, RunningEndpoint), running
    credential = AzureNamedKeyCredential(running.account, running.key)
    client = BatchClient(running.url, credential, retry_total=0, connection_timeout=10)
    server = Served(running, client)
    try:
        pool = {**POOL_BASE, "id": POOL, "taskSlotsPerNode": 4, "userAccounts": ACCOUNTS}
        assert server.call("POST", "/pools", pool)[0] == 201
        # A job in which every task property may be given (job actions, dependencies).
        job = {
            "id": JOB,
            "poolInfo": {"poolId": POOL},
            "onTaskFailure": "performexitoptionsjobaction",
            "usesTaskDependencies": True,
        }
        assert server.call("POST", "/jobs", job)[0] == 201
        yield server
        left = [p["id"] for p in server.call("GET", "/pools")[1]["value"] if SUFFIX in p["id"]]
        assert left == [POOL], left  # each test removed its own pool
        assert labelled(docker_client, POOL) == (0, 0)  # a pool without nodes has no containers
    finally:
        server.call("DELETE", f"/jobs/{JOB}")
        server.call("DELETE", f"/pools/{POOL}")
        client.close()
        stop.set()
        thread.join(60)
        remove_labelled(docker_client, POOL)


POOL_BASE: dict[str, Any] = {
    "vmSize": "standard_d1_v2",
    "virtualMachineConfiguration": {
        "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
        "nodeAgentSKUId": "batch.node.ubuntu 24.04",
    },
    "targetDedicatedNodes": 0,
}


_CONTAINER = {
    f"containerSettings.{name}" for name in ("imageName", "containerRunOptions", "workingDirectory")
}
_TASK_HONOURED = {
    *_CONTAINER,
    "id",
    "userIdentity.username",
    "commandLine",
    "displayName",
    "requiredSlots",
    "constraints.maxTaskRetryCount",
    "constraints.maxWallClockTime",
    "constraints.retentionTime",
    "environmentSettings[0].name",
    "environmentSettings[0].value",
    "resourceFiles[0].httpUrl",
    "resourceFiles[0].filePath",
    "resourceFiles[0].fileMode",
    "resourceFiles[0].storageContainerUrl",
    "resourceFiles[0].autoStorageContainerName",
    "resourceFiles[0].blobPrefix",
    "outputFiles[0].filePattern",
    "outputFiles[0].destination.container.containerUrl",
    "outputFiles[0].destination.container.path",
    "outputFiles[0].destination.container.uploadHeaders[0].name",
    "outputFiles[0].destination.container.uploadHeaders[0].value",
    "outputFiles[0].uploadOptions.uploadCondition",
    "userIdentity.autoUser.elevationLevel",
    "userIdentity.autoUser.scope",
    "multiInstanceSettings.numberOfInstances",
    "multiInstanceSettings.coordinationCommandLine",
    "multiInstanceSettings.commonResourceFiles[0].httpUrl",
    "multiInstanceSettings.commonResourceFiles[0].filePath",
    "multiInstanceSettings.commonResourceFiles[0].fileMode",
    "multiInstanceSettings.commonResourceFiles[0].storageContainerUrl",
    "multiInstanceSettings.commonResourceFiles[0].autoStorageContainerName",
    "multiInstanceSettings.commonResourceFiles[0].blobPrefix",
}
_TASK_HONOURED |= {
    "dependsOn.taskIds",
    "dependsOn.taskIdRanges[0].start",
    "dependsOn.taskIdRanges[0].end",
    *(
        f"exitConditions.{where}.{action}"
        for where in (
            "exitCodes[0].exitOptions",
            "exitCodeRanges[0].exitOptions",
            "preProcessingError",
            "fileUploadError",
            "default",
        )
        for action in ("jobAction", "dependencyAction")
    ),
    "exitConditions.exitCodes[0].code",
    "exitConditions.exitCodeRanges[0].start",
    "exitConditions.exitCodeRanges[0].end",
}
_PREP_RELEASE = {"id", "commandLine", *(p for p in _TASK_HONOURED if p.startswith(("env", "res")))}
_PREP_RELEASE |= _CONTAINER
_AUTO_POOL = "poolInfo.autoPoolSpecification"
_POOL_HONOURED = {
    "id",
    "vmSize",
    "displayName",
    "metadata[0].name",
    "metadata[0].value",
    "resizeTimeout",
    "targetDedicatedNodes",
    "targetLowPriorityNodes",
    "taskSlotsPerNode",
    "enableInterNodeCommunication",
    "taskSchedulingPolicy.nodeFillType",
    "taskSchedulingPolicy.jobDefaultOrder",
    *(
        f"networkConfiguration.endpointConfiguration.inboundNATPools[0].{name}"
        for name in (
            "name",
            "protocol",
            "backendPort",
            "frontendPortRangeStart",
            "frontendPortRangeEnd",
        )
    ),
    "virtualMachineConfiguration.nodeAgentSKUId",
    "virtualMachineConfiguration.containerConfiguration.type",
    "virtualMachineConfiguration.containerConfiguration.containerImageNames",
    *(
        f"virtualMachineConfiguration.imageReference.{name}"
        for name in ("publisher", "offer", "sku", "version", "virtualMachineImageId")
    ),
    *(f"startTask.{path}" for path in _PREP_RELEASE if path != "id"),
    "startTask.userIdentity.username",
    "startTask.maxTaskRetryCount",
    *(f"userAccounts[0].{name}" for name in ("name", "password", "elevationLevel")),
    *(f"userAccounts[0].linuxUserConfiguration.{name}" for name in ("uid", "gid", "sshPrivateKey")),
    "startTask.waitForSuccess",
    "startTask.userIdentity.autoUser.elevationLevel",
    "startTask.userIdentity.autoUser.scope",
}
HONOURED: dict[type, set[str]] = {
    models.BatchPoolCreateOptions: _POOL_HONOURED,
    models.BatchJobCreateOptions: {
        "id",
        "displayName",
        "poolInfo.poolId",
        "onAllTasksComplete",
        "constraints.maxTaskRetryCount",
        "constraints.maxWallClockTime",
        "priority",
        "maxParallelTasks",
        "allowTaskPreemption",
        "usesTaskDependencies",
        "onTaskFailure",
        "commonEnvironmentSettings[0].name",
        "commonEnvironmentSettings[0].value",
        "metadata[0].name",
        "metadata[0].value",
        *(f"jobPreparationTask.{path}" for path in _PREP_RELEASE),
        "jobPreparationTask.waitForSuccess",
        "jobPreparationTask.rerunOnNodeRebootAfterSuccess",
        "jobPreparationTask.constraints.maxTaskRetryCount",
        "jobPreparationTask.constraints.maxWallClockTime",
        "jobPreparationTask.constraints.retentionTime",
        "jobPreparationTask.userIdentity.username",
        "jobPreparationTask.userIdentity.autoUser.elevationLevel",
        "jobPreparationTask.userIdentity.autoUser.scope",
        *(f"jobReleaseTask.{path}" for path in _PREP_RELEASE),
        "jobReleaseTask.maxWallClockTime",
        "jobReleaseTask.retentionTime",
        "jobReleaseTask.userIdentity.username",
        "jobReleaseTask.userIdentity.autoUser.elevationLevel",
        "jobReleaseTask.userIdentity.autoUser.scope",
        *(f"{_AUTO_POOL}.{name}" for name in ("autoPoolIdPrefix", "poolLifetimeOption")),
        f"{_AUTO_POOL}.keepAlive",
        *(f"{_AUTO_POOL}.pool.{path}" for path in _POOL_HONOURED if path != "id"),
    },
    models.BatchTaskCreateOptions: _TASK_HONOURED,
}
"""The properties the endpoint honours (README: what the Docker service emulates), written out
so that one dropped into a refusal (or a refused one now accepted) fails its test."""


def check(
    served: Served, leaf: Leaf, status: int, answer: Any, sent: Any, get: str, model: type
) -> None:
    """For an honoured property (`HONOURED`), 201 and GET shows `sent` at the leaf's path; for
    any other, 501 naming the leaf (or an object holding it)."""
    honoured = leaf.path in HONOURED[model]
    assert (status == 201) is honoured, (leaf.path, status, answer)
    if status == 201:
        got_status, got = served.call("GET", get)
        assert got_status == 200, got
        assert same(leaf.kind, sent, at(got, leaf.path)), (
            f"{leaf.path} was accepted and dropped: sent {sent!r}, GET has {at(got, leaf.path)!r}"
        )
        return
    assert status == 501, (leaf.path, status, answer)
    assert answer["code"] == "NotSupported", answer
    named = [value["value"] for value in answer.get("values", []) if value["key"] == "PropertyName"]
    assert any(
        leaf.path == name or leaf.path.startswith((name + ".", name + "[")) for name in named
    ), (leaf.path, named, answer["message"]["value"])
    assert any(name in answer["message"]["value"] for name in named)


# --- the tests -------------------------------------------------------------------------------

POOL_LEAVES = leaves(models.BatchPoolCreateOptions)
JOB_LEAVES = leaves(models.BatchJobCreateOptions)
TASK_LEAVES = leaves(models.BatchTaskCreateOptions)


def test_the_models_are_read_whole() -> None:
    """The enumeration reaches the properties the REST reference lists (spot checks in each
    create body, nested objects and arrays of objects included)."""
    pool = {leaf.path for leaf in POOL_LEAVES}
    assert {"displayName", "metadata[0].name", "resizeTimeout"} <= pool
    assert "virtualMachineConfiguration.osDisk.diskSizeGB" in pool
    assert "virtualMachineConfiguration.securityProfile.encryptionAtHost" in pool
    assert "startTask.resourceFiles[0].httpUrl" in pool
    assert "virtualMachineConfiguration.imageReference.exactVersion" not in pool  # read-only
    job = {leaf.path for leaf in JOB_LEAVES}
    assert {"priority", "jobPreparationTask.waitForSuccess", "jobReleaseTask.retentionTime"} <= job
    assert "poolInfo.autoPoolSpecification.pool.vmSize" in job
    task = {leaf.path for leaf in TASK_LEAVES}
    assert {"affinityInfo.affinityId", "constraints.maxTaskRetryCount", "requiredSlots"} <= task


def test_samples_are_not_the_services_defaults() -> None:
    """Each sample differs from the service's default, so a dropped property shows."""
    for leaf in POOL_LEAVES + JOB_LEAVES + TASK_LEAVES:
        name = leaf.path.rsplit(".", 1)[-1]
        if name in SERVICE_DEFAULTS:
            assert sample(leaf.kind, name) != SERVICE_DEFAULTS[name], leaf.path
        elif leaf.kind is bool:
            assert sample(leaf.kind, name) is True  # the service's boolean default is false
    assert sample(bool, "waitForSuccess") is False
    assert sample(bool, "enableInterNodeCommunication") is True


def add_and_check(
    served: Served, leaf: Leaf, model: type, base: dict[str, Any], collection: str
) -> None:
    """Add an object of `base` with `leaf` set, check the answer, remove what was added."""
    object_id = base["id"]
    body, sent = body_with(base, model, leaf)
    if leaf.path == "id":
        body["id"] = sent = object_id
    status, answer = served.call("POST", collection, body)
    try:
        check(served, leaf, status, answer, sent, f"{collection}/{object_id}", model)
    finally:
        if status == 201:
            served.call("DELETE", f"{collection}/{object_id}")
            gone_within(served, f"{collection}/{object_id}", 120)


def gone_within(served: Served, path: str, seconds: float) -> None:
    """Wait until GET `path` is 404: a pool with nodes (spot nodes) is deleted in the
    background, its containers first."""
    deadline = time.monotonic() + seconds
    while served.call("GET", path)[0] != 404:
        assert time.monotonic() < deadline, f"{path} was not deleted within {seconds} s"
        time.sleep(0.1)


AUTOSCALE = ("enableAutoScale", "autoScaleFormula", "autoScaleEvaluationInterval")
"""Add Pool's autoscale properties, honoured together only (REST Add Pool: with
``enableAutoScale`` a formula and no target counts; without it, no formula and no interval)."""


@pytest.mark.parametrize("leaf", POOL_LEAVES, ids=lambda leaf: leaf.path)
def test_add_pool_property(served: Served, leaf: Leaf) -> None:
    base = {**POOL_BASE, "id": f"TestPool-{SUFFIX}-{uuid.uuid4().hex[:6]}"}
    if leaf.path in AUTOSCALE:  # alone, each is refused as the service refuses it
        body, _ = body_with(base, models.BatchPoolCreateOptions, leaf)
        status, answer = served.call("POST", "/pools", body)
        assert status == 400, answer
        assert answer["code"] in ("MissingRequiredProperty", "InvalidPropertyValue"), answer
        return
    if leaf.path == "startTask.userIdentity.username":
        base["userAccounts"] = ACCOUNTS
    add_and_check(served, leaf, models.BatchPoolCreateOptions, base, "/pools")


def test_add_pool_autoscale_properties(served: Served) -> None:
    """Together (and without target counts), the autoscale properties are honoured."""
    pool_id = f"TestPool-{SUFFIX}-{uuid.uuid4().hex[:6]}"
    base = {name: value for name, value in POOL_BASE.items() if name != "targetDedicatedNodes"}
    sent = {
        "enableAutoScale": True,
        "autoScaleFormula": "$TargetDedicatedNodes = 0;",
        "autoScaleEvaluationInterval": "PT6M",
    }
    status, answer = served.call("POST", "/pools", {**base, **sent, "id": pool_id})
    try:
        assert status == 201, answer
        got_status, got = served.call("GET", f"/pools/{pool_id}")
        assert got_status == 200, got
        assert {name: got.get(name) for name in sent} == sent
    finally:
        if status == 201:
            served.call("DELETE", f"/pools/{pool_id}")


@pytest.mark.parametrize("leaf", JOB_LEAVES, ids=lambda leaf: leaf.path)
def test_add_job_property(served: Served, leaf: Leaf) -> None:
    base: dict[str, Any] = {"id": f"TestJob-{SUFFIX}-{uuid.uuid4().hex[:6]}"}
    base["poolInfo"] = {"poolId": POOL}
    if leaf.path.startswith("jobReleaseTask."):  # a release task needs a preparation task
        base["jobPreparationTask"] = {"commandLine": "/bin/true"}
    if not leaf.path.startswith(_AUTO_POOL):
        add_and_check(served, leaf, models.BatchJobCreateOptions, base, "/jobs")
        return
    # An auto pool instead of the pool; whatever pool the job made is removed afterwards.
    pool = {name: value for name, value in POOL_BASE.items() if name != "targetDedicatedNodes"}
    if leaf.path.endswith(".pool.startTask.userIdentity.username"):
        pool["userAccounts"] = ACCOUNTS
    base["poolInfo"] = {"autoPoolSpecification": {"poolLifetimeOption": "job", "pool": pool}}
    before = {pool["id"] for pool in served.call("GET", "/pools")[1]["value"]}
    try:
        if leaf.path.rsplit(".", 1)[-1] in AUTOSCALE:  # alone, refused as by Add Pool
            body, _ = body_with(base, models.BatchJobCreateOptions, leaf)
            status, answer = served.call("POST", "/jobs", body)
            assert status == 400, answer
            return
        add_and_check(served, leaf, models.BatchJobCreateOptions, base, "/jobs")
    finally:
        for made in {pool["id"] for pool in served.call("GET", "/pools")[1]["value"]} - before:
            served.call("DELETE", f"/pools/{made}")


@pytest.mark.parametrize("leaf", TASK_LEAVES, ids=lambda leaf: leaf.path)
def test_add_task_property(served: Served, leaf: Leaf) -> None:
    """Tasks stay in the module's job (a pool without nodes never runs them)."""
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    body, sent = body_with(
        {"id": task_id, "commandLine": "/bin/true"}, models.BatchTaskCreateOptions, leaf
    )
    if leaf.path == "id":
        body["id"] = sent = task_id
    status, answer = served.call("POST", f"/jobs/{JOB}/tasks", body)
    check(
        served,
        leaf,
        status,
        answer,
        sent,
        f"/jobs/{JOB}/tasks/{task_id}",
        models.BatchTaskCreateOptions,
    )


SCHEDULE_LEAVES = leaves(models.BatchJobScheduleCreateOptions)
_SCHEDULE_JOB = "jobSpecification"
HONOURED[models.BatchJobScheduleCreateOptions] = {
    "id",
    "displayName",
    "metadata[0].name",
    "metadata[0].value",
    *(f"schedule.{name}" for name in ("doNotRunUntil", "doNotRunAfter")),
    *(f"schedule.{name}" for name in ("startWindow", "recurrenceInterval")),
    *(f"{_SCHEDULE_JOB}.{path}" for path in HONOURED[models.BatchJobCreateOptions] if path != "id"),
}


@pytest.mark.parametrize("leaf", SCHEDULE_LEAVES, ids=lambda leaf: leaf.path)
def test_add_job_schedule_property(served: Served, leaf: Leaf) -> None:
    """A job schedule's properties, its job specification's as Add Job's (auto pools are
    `test_add_job_property`'s; the schedule's own are `tests/core/test_schedules.py`'s)."""
    base: dict[str, Any] = {"id": f"TestSched-{SUFFIX}-{uuid.uuid4().hex[:6]}"}
    base[_SCHEDULE_JOB] = {"poolInfo": {"poolId": POOL}}
    if leaf.path.startswith(f"{_SCHEDULE_JOB}.jobReleaseTask."):
        base[_SCHEDULE_JOB]["jobPreparationTask"] = {"commandLine": "/bin/true"}
    if not leaf.path.startswith(f"{_SCHEDULE_JOB}.{_AUTO_POOL}"):
        add_and_check(served, leaf, models.BatchJobScheduleCreateOptions, base, "/jobschedules")

"""Request bodies to specs: Add Pool, Add Job and Add Task through azure-batch's models
(`jobprep_release.backends.schema`), every property either kept or refused.

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
from dataclasses import replace
from typing import Any, TypeVar

from azure.batch import models

from jobprep_release.backends.base import JobSpec, PoolSpec, TaskSpec
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


def _read(
    model: type[Any],
    document: Any,
    read: Callable[[Any], S],
    write: Callable[[S], Any],
    what: str,
    path: str = "",
    check: Callable[[S, Mapping[str, Any]], None] | None = None,
) -> S:
    """`document` as a spec, through `model`; refused when the spec would not keep all of it."""
    try:
        asked = shapes.conform(model, document, path)
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


def _resource_files_have_urls(document: Mapping[str, Any], path: str) -> None:
    """Every resource file kept has its source and destination (``httpUrl``, ``filePath``)."""
    for name, value in document.items():
        where = shapes.join(path, name)
        if name == "resourceFiles" and isinstance(value, list):
            for index, item in enumerate(value):
                for required in ("httpUrl", "filePath"):
                    if not item.get(required):
                        raise PropertyError(f"{where}[{index}].{required}")
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


def _pool_checks(spec: PoolSpec, asked: Mapping[str, Any]) -> None:
    if spec.target_low_priority_nodes:  # kept by the spec, but the Docker service has none
        error = not_supported("Add Pool property targetLowPriorityNodes", "spot nodes")
        error.values += (("PropertyName", "targetLowPriorityNodes"),)
        raise error
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


def pool_spec(document: Any) -> PoolSpec:
    """Add Pool's body as a `PoolSpec`; ``image`` is the Docker image an image id names, else
    None (the endpoint's default node image)."""
    spec = _read(
        models.BatchPoolCreateOptions,
        document,
        requests.pool_spec,
        requests.pool_create_options,
        "Add Pool",
        check=_pool_checks,
    )
    reference = spec.image_reference
    image_id = reference.virtual_machine_image_id if reference else None
    if image_id and not image_id.startswith("/"):
        return replace(spec, image=image_id)
    return spec


# --- jobs ------------------------------------------------------------------------------------


def _job_checks(spec: JobSpec, asked: Mapping[str, Any]) -> None:
    if not spec.pool_id:
        raise PropertyError("poolInfo.poolId")
    _resource_files_have_urls(asked, "")


def job_spec(document: Any) -> JobSpec:
    """Add Job's body as a `JobSpec`."""
    return _read(
        models.BatchJobCreateOptions,
        document,
        requests.job_spec,
        requests.job_create_options,
        "Add Job",
        check=_job_checks,
    )


# --- tasks -----------------------------------------------------------------------------------


def task_spec(document: Any, path: str = "") -> TaskSpec:
    """Add Task's body (or, with `path` ``value[i]``, one entry of Add Task Collection) as a
    `TaskSpec`."""
    return _read(
        models.BatchTaskCreateOptions,
        document,
        requests.task_spec,
        requests.task_create_options,
        "Add Task",
        path,
        check=lambda spec, asked: _resource_files_have_urls(asked, path),
    )

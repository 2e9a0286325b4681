"""The Batch service's api-versions this endpoint answers, and each one's shape of the wire.

Every version the service accepts (its "Batch service API versions" history, from
``2018-03-01.6.1`` to ``2025-06-01``) is served. Requests and answers are 2025-06-01's, and
where an older version's shape differs in what the endpoint emits, that version's shape is
written and read instead (source: the REST API's change history, and the SDKs of each version):

- before ``2020-09-01.12.0`` a pool's ``taskSlotsPerNode`` is ``maxTasksPerNode`` (in requests
  and answers), a task has no ``requiredSlots``, a node no ``runningTaskSlotsCount``, and Get
  Task Counts answers the task counts themselves (no ``taskCounts``/``taskSlotCounts`` pair);
- other properties of answers are left out of the versions before the one that brought them
  (`INTRODUCED`); a version's client ignores what it does not know, so an entry is needed only
  where that matters.

Any other version, and a retired one, is refused with the service's 400
``InvalidQueryParameterValue`` naming ``api-version``.
"""

from __future__ import annotations

from typing import Any

API_VERSIONS = (
    "2018-03-01.6.1",
    "2018-08-01.7.0",
    "2018-12-01.8.0",
    "2019-06-01.9.0",
    "2019-08-01.10.0",
    "2020-03-01.11.0",
    "2020-09-01.12.0",
    "2021-06-01.14.0",
    "2022-01-01.15.0",
    "2022-10-01.16.0",
    "2023-05-01.17.0",
    "2023-11-01.18.0",
    "2024-02-01.19.0",
    "2024-07-01.20.0",
    "2025-06-01",
)
LATEST = API_VERSIONS[-1]
SLOTS = "2020-09-01.12.0"
"""The version that brought task slots (``taskSlotsPerNode``, ``requiredSlots``, slot counts)."""

INTRODUCED: dict[str, str] = {
    "requiredSlots": SLOTS,
    "runningTaskSlotsCount": SLOTS,
    "taskSlotCounts": SLOTS,
    # A pool's taskSchedulingPolicy.jobDefaultOrder is 2025-06-01's: a 2024-07-01.20.0 answer
    # of the service has none (its recordings, ../shared/reference/recordings).
    "jobDefaultOrder": LATEST,
    # NodeCommunicationMode came with 2022-10-01.16.0 (the SDKs' change logs).
    "targetNodeCommunicationMode": "2022-10-01.16.0",
    "currentNodeCommunicationMode": "2022-10-01.16.0",
}
"""A property of an answer, by name, and the first version that has it."""

REMOVED: dict[str, str] = {
    # Pools and nodes carry ``certificateReferences: []`` up to 2024-07-01.20.0 (the service's
    # recordings); 2025-06-01 has no certificates at all (azure-batch 15 models none).
    "certificateReferences": LATEST,
    # A task's authenticationTokenSettings: in every version before 2025-06-01 (its SDKs).
    "authenticationTokenSettings": LATEST,
    # A pool's node communication modes and resource tags: up to 2024-07-01.20.0 (its SDK);
    # azure-batch 15 (2025-06-01) models none of them.
    "targetNodeCommunicationMode": LATEST,
    "currentNodeCommunicationMode": LATEST,
    "resourceTags": LATEST,
}
"""A property of an answer, by name, and the first version that no longer has it."""


def order(version: str) -> int:
    """The version's place in `API_VERSIONS` (`ValueError` for one that is not there)."""
    return API_VERSIONS.index(version)


def before(version: str, other: str) -> bool:
    return order(version) < order(other)


def answer(version: str, document: Any, *, task_counts: bool = False) -> Any:
    """A 2025-06-01 JSON answer in `version`'s shape (`task_counts`: Get Task Counts')."""
    if version == LATEST:
        return _without_removed(document)
    if task_counts and before(version, SLOTS) and isinstance(document, dict):
        counts = document.get("taskCounts", {})
        return {key: value for key, value in document.items() if key == "odata.metadata"} | counts
    return _walk(version, document)


def _walk(version: str, value: Any) -> Any:
    if isinstance(value, list):
        return [_walk(version, item) for item in value]
    if not isinstance(value, dict):
        return value
    shaped: dict[str, Any] = {}
    for key, item in value.items():
        if key in INTRODUCED and before(version, INTRODUCED[key]):
            continue
        if key in REMOVED and not before(version, REMOVED[key]):
            continue
        if key == "taskSlotsPerNode" and before(version, SLOTS):
            key = "maxTasksPerNode"  # noqa: PLW2901
        shaped[key] = _walk(version, item)
    return shaped


def _without_removed(document: Any) -> Any:
    """A latest-version answer without what that version removed: the removed properties sit
    on the objects themselves (pools, nodes), so a shallow pass over the answer or its
    ``value`` list is enough."""
    if not isinstance(document, dict):
        return document
    items = document.get("value")
    for item in [document, *(items if isinstance(items, list) else [])]:
        if isinstance(item, dict):
            for key in REMOVED:
                item.pop(key, None)
    return document


def request(version: str, document: Any) -> Any:
    """A JSON request body of `version` read as 2025-06-01's (``maxTasksPerNode`` as
    ``taskSlotsPerNode`` before 2020-09-01.12.0)."""
    if version == LATEST or not before(version, SLOTS) or not isinstance(document, dict):
        return document
    return {("taskSlotsPerNode" if key == "maxTasksPerNode" else key): value
            for key, value in document.items()}  # fmt: skip

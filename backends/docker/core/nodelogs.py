"""Upload Batch Service Logs: a node's service log, written to a blob container.

A real node's Batch agent keeps log files of what it did; here the agent is the core, so the
node's log is the core's own record of the node and of every process it ran there: its latest
boot, then one line per start and per end of its start task and of each task, job preparation
and release task (``agent.log``), the same record the node and task views are made from (a
real agent logs its own start too, so a node that ran nothing yet still has a log). As the
service does, the whole file is uploaded when any of its lines falls between `start_time` and
`end_time` (none: until now), under a virtual directory made of the pool id, the node id and a
unique identifier (REST UploadBatchServiceLogsResult), after a first part as the service's
recorded answer has it (``batch-<16 hex digits>/<pool>/<node>/<guid>``; Inferred: the digits
are the account's, here a hash of its name). The upload is done before the answer (the service
answers first): a container that refuses it is a 400 here.
"""

from __future__ import annotations

import hashlib
import uuid

from jobprep_release.backends.base import NodeLogsRequest, NodeLogsUpload
from jobprep_release.backends.docker.core import storage, views
from jobprep_release.backends.docker.core.kernel import Core
from jobprep_release.backends.docker.core.records import Execution, NodeRecord
from jobprep_release.backends.errors import InvalidRequest

LOG_NAME = "agent.log"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _lines(what: str, run: Execution) -> list[tuple[float, str]]:
    found = []
    if run.start_time is not None:
        found.append((run.start_time, f"started {what}"))
    if run.completed and run.end_time is not None:
        outcome = f"exit code {run.exit_code}" if run.exit_code is not None else "no exit code"
        code = f", failure {run.failure.code}" if run.failure is not None else ""
        found.append((run.end_time, f"ended {what}: {outcome}{code}"))
    return found


def agent_log(core: Core, node: NodeRecord) -> list[tuple[float, str]]:
    """(epoch seconds, message) of the node's latest boot and of every process start and end
    on it, in time order."""
    node_id = node.id
    lines: list[tuple[float, str]] = []
    if node.last_boot_time is not None:
        lines.append((node.last_boot_time, f"node {node_id} booted"))
    if node.start is not None:
        lines += _lines("start task", node.start)
    for job in core.state.jobs.values():
        for task in job.tasks.values():
            if task.node_id == node_id:
                lines += _lines(f"task {task.spec.id} of job {job.spec.id}", task.run)
        record = job.nodes.get(node_id)
        if record is None:
            continue
        for kind, run, spec in (
            ("job preparation task", record.prep, job.spec.preparation),
            ("job release task", record.release, job.spec.release),
        ):
            if run is not None and spec is not None:
                lines += _lines(f"{kind} {spec.id} of job {job.spec.id}", run)
    return sorted(lines, key=lambda line: line[0])


async def upload(
    core: Core, pool_id: str, node_id: str, request: NodeLogsRequest
) -> NodeLogsUpload:
    """Upload the node's log files with a line in the range; `NotFound` for an unknown pool or
    node, `InvalidRequest` when the container refuses the upload."""
    node = core.find_node(pool_id, node_id)
    start = request.start_time.timestamp()
    end = request.end_time.timestamp() if request.end_time is not None else core.now()
    lines = agent_log(core, node)
    account = hashlib.sha256(core.settings.account_name.encode()).hexdigest()[:16].upper()
    directory = f"batch-{account}/{pool_id}/{node.id}/{uuid.uuid4()}"
    files: list[tuple[str, bytes]] = []
    if any(start <= when <= end for when, _ in lines):
        text = "".join(
            f"{views.stamp(when):%Y-%m-%dT%H:%M:%S.%fZ} {line}\n" for when, line in lines
        )
        files.append((f"{directory}/{LOG_NAME}", text.encode()))
    try:
        await storage.upload_blobs(request.container_url, files)
    except storage.UploadFailed as exc:
        raise InvalidRequest(
            f"the Batch service logs could not be uploaded to the container: {exc}",
            code="InvalidPropertyValue",
        ) from exc
    return NodeLogsUpload(virtual_directory_name=directory, number_of_files_uploaded=len(files))

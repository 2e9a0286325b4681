"""Output files: uploaded to blob containers after a task's process exits, before the task
completes, as the service does (REST OutputFile, OutputFileUploadCondition).

Each `OutputFile` whose `uploadCondition` the exit meets (`tasksuccess`: exit code 0,
`taskfailure`: a non-zero exit code, `taskcompletion`: either) has its `filePattern` resolved
against the task's working directory (``../stdout.txt`` reaches the task directory; an
absolute pattern must lie under the node root), matched with ``*`` and ``?`` within a name,
``**`` across directories, ``[...]`` classes, and names starting with ``.`` matched only by a
pattern part starting with ``.``. A pattern without wildcards names one file, uploaded to the
blob named `path` (else its file name); with wildcards, `path` is a virtual directory and each
file keeps its path below the pattern's last directory without wildcards. Files are streamed
from the node (`NodeExecutor.stream_file`) to azure-storage-blob (`storage`) as they are sent.

The first failed upload fails the task with ``FileUploadAccessDenied`` or
``FileUploadMiscError`` (category ``usererror``). Where the process itself failed, its
``FailureExitCode`` stays the task's failure (Inferred: the exit code's failure comes first, as
exit conditions rank an exit code's action over a file upload error). As on a node, the task
directory gets ``fileuploadout.txt`` (what went where) and ``fileuploaderr.txt`` (what failed).
"""

from __future__ import annotations

import contextlib
import fnmatch
import posixpath
import re

from jobprep_release.backends.base import OutputFile, OutputFileUploadCondition
from jobprep_release.backends.docker.core import environment, storage
from jobprep_release.backends.docker.core.executor import NodeExecutor, NodeFile
from jobprep_release.backends.errors import BackendError, InvalidRequest, NotFound

_WILDCARD = re.compile(r"[*?\[]")


def check_output_file(output: OutputFile) -> None:
    """`InvalidRequest` for an output file without a pattern or a container URL."""
    if not output.file_pattern:
        raise InvalidRequest("an output file needs a filePattern", code="InvalidPropertyValue")
    if not output.container_url:
        raise InvalidRequest(
            "an output file needs destination.container.containerUrl",
            code="InvalidPropertyValue",
        )


def due(output: OutputFile, exit_code: int) -> bool:
    """Whether the process's `exit_code` meets the output file's upload condition."""
    condition = output.upload_condition
    if condition is OutputFileUploadCondition.TASK_SUCCESS:
        return exit_code == 0
    if condition is OutputFileUploadCondition.TASK_FAILURE:
        return exit_code != 0
    return True


def _segment_matches(pattern: str, name: str) -> bool:
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def matches(pattern: list[str], parts: list[str]) -> bool:
    """Whether the path `parts` matches the glob `pattern` (split on ``/``)."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(
            matches(rest, parts[skip:])
            for skip in range(len(parts) + 1)
            if not any(part.startswith(".") for part in parts[:skip])
        )
    return bool(parts) and _segment_matches(head, parts[0]) and matches(rest, parts[1:])


def split_pattern(working_dir: str, pattern: str) -> tuple[str, list[str]] | None:
    """(the directory before the first wildcard, relative to the node root; the glob parts
    after it), or None for a pattern leading out of the node root."""
    absolute = posixpath.normpath(posixpath.join(working_dir, pattern.replace("\\", "/")))
    if not absolute.startswith(environment.NODE_ROOT + "/"):
        return None
    parts = environment.relative_to_root(absolute).split("/")
    first = next((i for i, part in enumerate(parts) if _WILDCARD.search(part)), len(parts))
    return "/".join(parts[:first]), parts[first:]


async def collect(
    executor: NodeExecutor, node_id: str, working_dir: str, output: OutputFile
) -> list[tuple[str, str]]:
    """(file relative to the node root, blob name) for each file the output file names."""
    split = split_pattern(working_dir, output.file_pattern)
    if split is None:
        return []
    base, glob = split
    prefix = output.path.strip("/") if output.path else ""
    if not glob:
        try:
            info = await executor.stat_file(node_id, base)
        except NotFound:
            return []
        if info.is_directory:
            return []
        return [(base, output.path or posixpath.basename(base))]
    try:
        listed = await executor.list_files(node_id, base, recursive=True)
    except NotFound:
        return []
    found = []
    for info in listed:
        if not info.is_directory and matches(glob, info.name.split("/")):
            blob = posixpath.join(prefix, info.name) if prefix else info.name
            found.append((posixpath.join(base, info.name) if base else info.name, blob))
    return found


async def upload(
    executor: NodeExecutor,
    node_id: str,
    task_dir: str,
    outputs: list[OutputFile],
    exit_code: int,
) -> storage.UploadFailed | None:
    """Upload the output files due after an exit with `exit_code`; the first failure, or None.
    Writes ``fileuploadout.txt`` and ``fileuploaderr.txt`` in `task_dir` (absolute)."""
    done: list[str] = []
    failure: storage.UploadFailed | None = None
    for output in outputs:
        if not due(output, exit_code):
            continue
        try:
            files = await collect(executor, node_id, f"{task_dir}/wd", output)
            # Streamed from the node as they are sent: never a whole file in memory.
            blobs = [(blob, executor.stream_file(node_id, path)) for path, blob in files]
            await storage.upload_blobs(output.container_url, blobs, dict(output.upload_headers))
        except storage.UploadFailed as exc:
            failure = exc
            break
        except Exception as exc:  # the service goes on: anything else is a misc error
            failure = storage.UploadFailed(f"{type(exc).__name__}: {exc}")
            break
        done += [f"{path} -> {blob}" for path, blob in files]
    logs = [
        NodeFile(f"{task_dir}/fileuploadout.txt", "".join(f"{line}\n" for line in done).encode()),
        NodeFile(f"{task_dir}/fileuploaderr.txt", f"{failure}\n".encode() if failure else b""),
    ]
    with contextlib.suppress(BackendError):  # the logs are a courtesy; the outcome stands
        await executor.put_files(node_id, logs)
    return failure

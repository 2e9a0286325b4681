"""Resource files: downloaded by the service, then placed in the task's working directory.

The node image need not have curl: the service fetches each `httpUrl` itself (off the event
loop) and has the executor place the files on the node, with their `fileMode` (default 0770)
and owned by the task's user, before the task starts. A failed download completes the task with
a failure before it runs, as the service does.
"""

from __future__ import annotations

import posixpath
import socket
import urllib.error
import urllib.request
from collections.abc import Sequence

import anyio.to_thread

from jobprep_release.backends.base import ResourceFile
from jobprep_release.backends.docker.core.executor import NodeFile
from jobprep_release.backends.errors import InvalidRequest

DEFAULT_FILE_MODE = 0o770
DOWNLOAD_TIMEOUT = 60.0


class DownloadFailed(Exception):
    """A resource file could not be downloaded; `code` is the service's failure code for
    why (TaskFailureInformationCodes): ``BlobNotFound`` (404, 410), ``BlobAccessDenied``
    (401, 403), ``BlobDownloadTimedOut`` (no answer in time), ``BlobDownloadMiscError``
    (anything else: another status, a refused connection, an unsupported URL)."""

    def __init__(self, message: str, code: str = "BlobDownloadMiscError") -> None:
        super().__init__(message)
        self.code = code


def failure_code(exc: BaseException) -> str:
    """The failure code for a download that raised `exc`."""
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code in (404, 410):
            return "BlobNotFound"
        if exc.code in (401, 403):
            return "BlobAccessDenied"
        return "BlobDownloadMiscError"
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError | socket.timeout):
        return "BlobDownloadTimedOut"
    return "BlobDownloadMiscError"


def check_file_path(path: str) -> str:
    """`path` normalised, relative to the working directory; `InvalidRequest` if it escapes."""
    normal = posixpath.normpath(path.replace("\\", "/"))
    if not path or path.startswith("/") or normal == ".." or normal.startswith("../"):
        raise InvalidRequest(
            f"resource file path {path!r} must stay inside the task's working directory",
            code="InvalidPropertyValue",
        )
    return normal


def _download(url: str) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise DownloadFailed(f"{url}: only http and https URLs are supported")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            data: bytes = response.read()
            return data
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DownloadFailed(f"{url}: {exc}", failure_code(exc)) from exc


async def fetch(files: Sequence[ResourceFile]) -> list[tuple[ResourceFile, bytes]]:
    """Download every file; `DownloadFailed` names the first that fails."""
    fetched = []
    for file in files:
        data = await anyio.to_thread.run_sync(_download, file.http_url)
        fetched.append((file, data))
    return fetched


def node_files(
    working_dir: str, fetched: list[tuple[ResourceFile, bytes]], *, elevated: bool
) -> list[NodeFile]:
    """Each file under `working_dir` with its `fileMode` (default 0770), owned by the task's
    user (root when `elevated`)."""
    return [
        NodeFile(
            path=posixpath.join(working_dir, check_file_path(file.file_path)),
            data=data,
            mode=int(file.file_mode, 8) if file.file_mode else DEFAULT_FILE_MODE,
            elevated=elevated,
        )
        for file, data in fetched
    ]

"""Azure Storage for the core: blob containers read for resource files and written for output
files and node logs, through azure-storage-blob's async clients (aiohttp), never by hand.

A container is named by its URL (with a SAS in the query, as Batch takes it) or, for
``autoStorageContainerName``, by name in the account's linked storage account (`LinkedStorage`:
a connection string, or an account URL and key, as Azurite and real accounts both take).
Failures carry the service's codes (`DownloadFailed.code`, `UploadFailed.code`).

azure-storage-blob (with azure-core and aiohttp under it) is imported by the functions that use
it, not with this module: the core imports this module on every run, and that import costs
about 0.15 s of CPU, which a run without storage would pay for nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from jobprep_release.backends.errors import BackendError

if TYPE_CHECKING:
    from azure.storage.blob.aio import BlobServiceClient, ContainerClient

DOWNLOAD_TIMEOUT = 60.0
"""Seconds one resource file may take to download before ``BlobDownloadTimedOut``."""
UPLOAD_TIMEOUT = 300.0
"""Seconds one upload may take."""
CONNECTION_STRING_VARIABLE = "AZURE_STORAGE_CONNECTION_STRING"
CHUNK = 2 << 20
"""Downloads go in requests of 2 MiB (the library's first is 32 MiB by default), each written
out before the next: what a download holds in memory is a few of them, whatever the size."""


class DownloadFailed(Exception):
    """A resource file could not be downloaded; `code` is the service's failure code for
    why (TaskFailureInformationCodes): ``BlobNotFound`` (404, 410), ``BlobAccessDenied``
    (401, 403), ``BlobDownloadTimedOut`` (no answer in time), ``BlobDownloadMiscError``
    (anything else: another status, a refused connection, an unsupported URL)."""

    def __init__(self, message: str, code: str = "BlobDownloadMiscError") -> None:
        super().__init__(message)
        self.code = code


class UploadFailed(Exception):
    """An output file or log could not be uploaded; `code` is the service's failure code
    (TaskFailureInformationCodes): ``FileUploadAccessDenied`` (401, 403) or
    ``FileUploadMiscError`` (anything else)."""

    def __init__(self, message: str, code: str = "FileUploadMiscError") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class LinkedStorage:
    """The storage account linked to the Batch account (``autoStorageContainerName``'s
    containers live there): a `connection_string`, or an `account_url` and `account_key`."""

    connection_string: str | None = None
    account_url: str | None = None
    account_key: str | None = None

    def service(self) -> BlobServiceClient:
        from azure.storage.blob.aio import BlobServiceClient

        if self.connection_string:
            return BlobServiceClient.from_connection_string(
                self.connection_string, max_single_get_size=CHUNK, max_chunk_get_size=CHUNK
            )
        if not self.account_url:
            raise ValueError("a linked storage account needs a connection string or a URL")
        return BlobServiceClient(
            self.account_url,
            credential=self.account_key,
            max_single_get_size=CHUNK,
            max_chunk_get_size=CHUNK,
        )

    @classmethod
    def from_environment(cls, environ: Any = os.environ) -> LinkedStorage | None:
        """From ``AZURE_STORAGE_CONNECTION_STRING``, when set."""
        value = environ.get(CONNECTION_STRING_VARIABLE)
        return cls(connection_string=value) if value else None


def download_code(exc: BaseException) -> str:
    """The failure code for a blob download that raised `exc`."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestTimeoutError,
        ServiceResponseTimeoutError,
    )

    if isinstance(exc, TimeoutError | ServiceRequestTimeoutError | ServiceResponseTimeoutError):
        return "BlobDownloadTimedOut"
    if isinstance(exc, ResourceNotFoundError):
        return "BlobNotFound"
    if isinstance(exc, ClientAuthenticationError):
        return "BlobAccessDenied"
    if isinstance(exc, HttpResponseError):
        if exc.status_code in (404, 410):
            return "BlobNotFound"
        if exc.status_code in (401, 403):
            return "BlobAccessDenied"
    return "BlobDownloadMiscError"


def upload_code(exc: BaseException) -> str:
    """The failure code for an upload that raised `exc`."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    if isinstance(exc, ClientAuthenticationError) or (
        isinstance(exc, HttpResponseError) and exc.status_code in (401, 403)
    ):
        return "FileUploadAccessDenied"
    return "FileUploadMiscError"


def _describe(exc: BaseException) -> str:
    from azure.core.exceptions import HttpResponseError

    code = getattr(exc, "error_code", None)
    if isinstance(exc, HttpResponseError) and code:
        return f"{exc.status_code} {code}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


@contextlib.asynccontextmanager
async def container(
    url: str | None, name: str | None, linked: LinkedStorage | None
) -> AsyncIterator[ContainerClient]:
    """A client of the container at `url`, or of `name` in `linked` storage."""
    from azure.storage.blob.aio import ContainerClient

    if url:
        async with ContainerClient.from_container_url(
            url, max_single_get_size=CHUNK, max_chunk_get_size=CHUNK
        ) as client:
            yield client
        return
    if linked is None:
        raise DownloadFailed(f"container {name!r}: the Batch account has no linked storage account")
    async with linked.service() as service:
        yield service.get_container_client(name or "")


async def download_container(
    url: str | None,
    name: str | None,
    prefix: str | None,
    linked: LinkedStorage | None,
    target: Callable[[int], str],
) -> list[tuple[str, str]]:
    """(blob name, local file) of every blob of the container whose name starts with
    `prefix`, by name, each written chunk by chunk to the file `target(index)` names;
    `DownloadFailed` with the service's code."""
    from azure.core.exceptions import AzureError

    where = _strip(url) if url else f"container {name!r}"
    found: list[tuple[str, str]] = []
    try:
        with anyio.fail_after(DOWNLOAD_TIMEOUT):
            async with container(url, name, linked) as client:
                names = [blob.name async for blob in client.list_blobs(name_starts_with=prefix)]
                for index, blob_name in enumerate(sorted(names)):
                    local = target(index)
                    stream = await client.download_blob(blob_name)
                    async with await anyio.open_file(local, "wb") as out:
                        async for chunk in stream.chunks():
                            await out.write(chunk)
                    found.append((blob_name, local))
    except (AzureError, TimeoutError, ValueError) as exc:
        raise DownloadFailed(f"{where}: {_describe(exc)}", download_code(exc)) from exc
    return found


async def upload_blobs(
    container_url: str,
    blobs: Sequence[tuple[str, bytes | AsyncIterable[bytes]]],
    headers: dict[str, str] | None = None,
) -> None:
    """Write each (blob name, contents: bytes, or chunks read as they are sent) to the
    container at `container_url` (a SAS URL with write permission), sending `headers` with
    each; `UploadFailed` with the service's code."""
    from azure.core.exceptions import AzureError
    from azure.storage.blob.aio import ContainerClient

    try:
        with anyio.fail_after(UPLOAD_TIMEOUT):
            async with ContainerClient.from_container_url(container_url) as client:
                for blob_name, data in blobs:
                    await client.upload_blob(
                        blob_name, data, overwrite=True, headers=dict(headers or {})
                    )
    except (AzureError, TimeoutError, ValueError, BackendError) as exc:
        raise UploadFailed(f"{_strip(container_url)}: {_describe(exc)}", upload_code(exc)) from exc


def _strip(url: str) -> str:
    """`url` without its query (a SAS is a secret)."""
    return url.split("?", 1)[0]

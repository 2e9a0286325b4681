"""The article's other two uses of job preparation and release tasks, with Azure Storage.

(a) `--stage-container`: the job preparation task downloads the blobs of a container to each
node once per job (a ``storageContainerUrl`` resource file, into ``staged/`` of its working
directory), and each task reads them from ``$AZ_BATCH_JOB_PREP_WORKING_DIR``; a task that finds
nothing staged fails. A container that does not exist yet is made, with one sample blob.
(b) `--logs-container`: each node's release task uploads the node's job log (the sample's
shared file) to the container as ``<job id>/<node id>.txt`` before deleting it; the uploaded
logs are listed at the end.

The app makes containers, SAS URLs and the lists with azure-storage-blob (imported when
used), from a connection string with the account key (`--storage-connection-string`, Azurite's
when `--azurite` starts one). The release task runs on the node, which has no storage client:
it PUTs the file with curl where the node has it (Azure's images) and otherwise, for an
``http`` emulator only, with bash's ``/dev/tcp`` (the docker backend's debian:bookworm-slim
has no curl).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobprep_release.azurite import container_sas_url
from jobprep_release.backends.errors import AuthenticationFailed, BackendUnavailable, ServiceError

if TYPE_CHECKING:
    from azure.storage.blob.aio import BlobServiceClient

STAGED_DIR = "staged"
"""Where the preparation task puts the staged blobs, in its working directory."""
SAMPLE_BLOB = "common/sample-data.txt"
SAMPLE_DATA = b"Common data for every task of the job, staged once per node.\n"


@dataclass(frozen=True, slots=True)
class StorageUse:
    """The storage account (a connection string with its key) and the containers asked for."""

    connection_string: str
    stage_container: str | None = None
    logs_container: str | None = None


@dataclass(slots=True)
class Prepared:
    """What the run uses: the staging container's read/list SAS URL and its blobs; the logs
    container's write SAS URL."""

    use: StorageUse
    stage_url: str | None = None
    staged: list[str] = field(default_factory=list)
    logs_url: str | None = None


async def prepare(use: StorageUse) -> Prepared:
    """Make the containers that do not exist (a new staging container gets a sample blob), list
    what will be staged, and sign the URLs the tasks get (valid for a day).

    Raises BackendUnavailable (status 3) when the account cannot be reached,
    AuthenticationFailed (4) when it refuses the key, ServiceError (7) for another refusal."""
    prepared = Prepared(use)
    with _storage_errors(use):
        async with _service(use) as service:
            await _prepare_containers(use, service, prepared)
    return prepared


async def _prepare_containers(
    use: StorageUse, service: BlobServiceClient, prepared: Prepared
) -> None:
    from azure.core.exceptions import ResourceExistsError

    if use.stage_container:
        container = service.get_container_client(use.stage_container)
        try:
            await container.create_container()
        except ResourceExistsError:
            pass
        else:
            await container.upload_blob(SAMPLE_BLOB, SAMPLE_DATA)
        prepared.staged = sorted([blob.name async for blob in container.list_blobs()])
        prepared.stage_url = container_sas_url(use.connection_string, use.stage_container, "rl")
    if use.logs_container:
        with contextlib.suppress(ResourceExistsError):
            await service.create_container(use.logs_container)
        prepared.logs_url = container_sas_url(use.connection_string, use.logs_container, "cw")


async def uploaded_logs(use: StorageUse, job_id: str) -> list[tuple[str, int]]:
    """(blob name, size in bytes) of each job log in the logs container, by name; errors as
    `prepare`'s."""

    if not use.logs_container:
        return []
    with _storage_errors(use):
        async with _service(use) as service:
            container = service.get_container_client(use.logs_container)
            return sorted(
                [
                    (blob.name, int(blob.size))
                    async for blob in container.list_blobs(name_starts_with=f"{job_id}/")
                ]
            )


def _service(use: StorageUse) -> BlobServiceClient:
    """The account's blob service client. Connection failures are retried twice after 1 and 3
    seconds (azure-storage-blob's defaults wait 15 and 18 s, three times, so an account that
    cannot be reached was said only after about 85 s)."""
    from azure.storage.blob.aio import BlobServiceClient

    return BlobServiceClient.from_connection_string(
        use.connection_string, retry_connect=2, initial_backoff=1, increment_base=2
    )


@contextlib.contextmanager
def _storage_errors(use: StorageUse) -> Iterator[None]:
    """azure-core's errors as the app's: an account that cannot be reached (status 3), a key it
    refuses (status 4), any other refusal (status 7), each naming the account's blob endpoint."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
    )

    where = _blob_endpoint(use.connection_string)
    given = "--storage-connection-string (or AZURE_STORAGE_CONNECTION_STRING)"
    try:
        yield
    except ServiceRequestError as exc:
        raise BackendUnavailable(
            f"cannot reach the storage account at {where}: {_first_line(exc)}",
            hint=f"check the account's endpoint in {given} and the network",
        ) from exc
    except ClientAuthenticationError as exc:
        raise AuthenticationFailed(
            f"the storage account at {where} refused the account key "
            f"(HTTP {exc.status_code}, {getattr(exc, 'error_code', None) or 'no error code'})",
            hint=f"check AccountName and AccountKey in {given}",
        ) from exc
    except HttpResponseError as exc:
        raise ServiceError(
            f"the storage account at {where} failed: HTTP {exc.status_code}, "
            f"{getattr(exc, 'error_code', None) or exc.reason or _first_line(exc)}",
            hint=f"check {given}",
        ) from exc


def _blob_endpoint(connection_string: str) -> str:
    """The connection string's blob endpoint: its `BlobEndpoint`, else the one its protocol,
    account name and endpoint suffix make, as azure-storage-blob makes it."""
    parts = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)
    if "BlobEndpoint" in parts:
        return parts["BlobEndpoint"]
    protocol = parts.get("DefaultEndpointsProtocol", "https")
    suffix = parts.get("EndpointSuffix", "core.windows.net")
    return f"{protocol}://{parts.get('AccountName', '?')}.blob.{suffix}"


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def upload_script(shared_file: str) -> str:
    """The release task's bash: PUT `shared_file` (a path under the node's shared directory)
    as the block blob ``<job>/<node>.txt`` of the container whose SAS URL is ``$LOGS_BASE``
    (set in its environment), then delete it; a failed upload keeps the file and fails the
    task. No single quotes: it goes inside ``/bin/bash -c '...'``."""
    return (
        f'f="$AZ_BATCH_NODE_SHARED_DIR/{shared_file}"; '
        'u="${LOGS_BASE%%\\?*}/$AZ_BATCH_JOB_ID/$AZ_BATCH_NODE_ID.txt?${LOGS_BASE#*\\?}"; '
        "if command -v curl >/dev/null; then "
        'curl -fsS -X PUT -H "x-ms-blob-type: BlockBlob" --data-binary "@$f" "$u" || exit 1; '
        "else "
        'case "$u" in http://*) ;; *) echo "no curl on this node for $u" >&2; exit 1;; esac; '
        'r="${u#http://}"; hp="${r%%/*}"; p="/${r#*/}"; h="${hp%%:*}"; port="${hp##*:}"; '
        '[ "$port" = "$hp" ] && port=80; '
        'exec 3<>"/dev/tcp/$h/$port" || exit 1; '
        'printf "PUT %s HTTP/1.1\\r\\nHost: %s\\r\\nx-ms-blob-type: BlockBlob\\r\\n'
        'Content-Length: %s\\r\\nConnection: close\\r\\n\\r\\n" "$p" "$hp" "$(stat -c %s "$f")" '
        ">&3; "
        'cat "$f" >&3; read -r _ code _ <&3; exec 3>&-; '
        '[ "$code" = 201 ] || { echo "upload answered $code" >&2; exit 1; }; '
        "fi; "
        'rm "$f"'
    )


def staged_check() -> str:
    """Bash that fails unless the preparation task staged at least one file."""
    return (
        f'[ -n "$(find "$AZ_BATCH_JOB_PREP_WORKING_DIR/{STAGED_DIR}" -type f 2>/dev/null)" ] '
        '|| { echo "no staged data in $AZ_BATCH_JOB_PREP_WORKING_DIR" >&2; exit 1; }'
    )

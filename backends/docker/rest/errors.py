"""Error answers of the endpoint: the service's status codes and its OData error body.

Every refusal leaves the endpoint as the Batch service words one::

    {"odata.metadata": "<account URL>/$metadata#Microsoft.Azure.Batch.Protocol.Entities
                        .Container.errors/@Element",
     "code": "PoolNotFound",
     "message": {"lang": "en-US", "value": "...\\nRequestId:...\\nTime:..."},
     "values": [{"key": "...", "value": "..."}]}

`RestError` is raised by handlers for what the HTTP layer refuses itself (bodies, queries,
unemulated operations); `from_backend` turns the project's errors
(`jobprep_release.backends.errors`, each with the service's `code`) into the status the service
answers for that code.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from jobprep_release.backends.errors import (
    AlreadyExists,
    AuthenticationFailed,
    BackendUnavailable,
    Conflict,
    InvalidRequest,
    JobPrepReleaseError,
    NotFound,
    NotSupported,
)

METADATA_SUFFIX = "/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"
NOT_SUPPORTED = "NotSupported"

# Status by the project's error class, for errors whose code the table below does not name.
_STATUS_BY_CLASS: tuple[tuple[type[JobPrepReleaseError], int, str], ...] = (
    (NotFound, 404, "ResourceNotFound"),
    (AlreadyExists, 409, "ResourceExists"),
    (Conflict, 409, "OperationInvalidForCurrentState"),
    (InvalidRequest, 400, "InvalidRequest"),
    (AuthenticationFailed, 403, "AuthenticationFailed"),
    (NotSupported, 501, NOT_SUPPORTED),
    (BackendUnavailable, 503, "ServerBusy"),
)

# Codes the service answers with a status other than their class's.
_STATUS_BY_CODE = {
    "PoolExists": 409,
    "JobExists": 409,
    "TaskExists": 409,
    "PoolNotFound": 404,
    "JobNotFound": 404,
    "TaskNotFound": 404,
    "NodeNotFound": 404,
    "FileNotFound": 404,
    "JobPreparationTaskNotSpecified": 409,
    "JobCompleted": 409,
    "JobNotActive": 409,
    "TaskIdSameAsJobPreparationTask": 400,
    "TaskIdSameAsJobReleaseTask": 400,
    "DuplicateTaskId": 400,
}


class RestError(Exception):
    """An error answer: HTTP status, the service's error code, a sentence, detail values."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        values: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.values = tuple(values)


def not_supported(what: str, detail: str = "") -> RestError:
    """501 for an operation or property the local endpoint does not emulate, named."""
    sentence = f"{what} is not emulated by the local Batch endpoint (Docker)"
    if detail:
        sentence = f"{sentence}: {detail}"
    return RestError(501, NOT_SUPPORTED, sentence, [("Operation", what)])


def from_backend(error: JobPrepReleaseError) -> RestError:
    """The service's answer for one of the project's errors."""
    status, fallback = 500, "InternalError"
    for cls, cls_status, cls_code in _STATUS_BY_CLASS:
        if isinstance(error, cls):
            status, fallback = cls_status, cls_code
            break
    code = error.code or fallback
    if code == "NotFound":  # the engine's word for a missing path in a container
        code = "FileNotFound"
    return RestError(_STATUS_BY_CODE.get(code, status), code, error.one_line())


def error_document(base_url: str, error: RestError, request_id: str) -> dict[str, object]:
    """The body of an error answer, as the service writes it."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    document: dict[str, object] = {
        "odata.metadata": base_url + METADATA_SUFFIX,
        "code": error.code,
        "message": {
            "lang": "en-US",
            "value": f"{error.message}\nRequestId:{request_id}\nTime:{now}",
        },
    }
    if error.values:
        document["values"] = [{"key": key, "value": value} for key, value in error.values]
    return document

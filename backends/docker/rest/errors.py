"""Error answers of the endpoint: the service's status codes and its OData error body.

Every refusal leaves the endpoint as the Batch service words one (``SERVICE_MESSAGES``), with
the content type ``application/json; odata=minimalmetadata``::

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

from collections.abc import Mapping, Sequence
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

# The service's sentence for each code. Checked against recorded answers of the real service:
# PoolNotFound, JobExists, InvalidPropertyValue (../shared/reference/recordings) and
# InvalidQueryParameterValue (quoted in public SDK issues); the others follow the service's
# pattern as its SDKs' users quote it, not checked against a recording. Codes the service
# answers with no detail values are in _WITHOUT_VALUES; for the others, the endpoint's own
# sentence (naming the object or property) follows as the value "Reason".
SERVICE_MESSAGES = {
    "PoolNotFound": "The specified pool does not exist.",
    "JobNotFound": "The specified job does not exist.",
    "TaskNotFound": "The specified task does not exist.",
    "NodeNotFound": "The specified node does not exist.",
    "FileNotFound": "The specified file does not exist.",
    "JobScheduleNotFound": "The specified job schedule does not exist.",
    "PoolExists": "The specified pool already exists.",
    "JobExists": "The specified job already exists.",
    "TaskExists": "The specified task already exists.",
    "JobScheduleExists": "The specified job schedule already exists.",
    "PoolBeingDeleted": "The specified pool has been marked for deletion and is being reclaimed.",
    "JobBeingDeleted": "The specified job has been marked for deletion and is being garbage "
    "collected.",
    "JobCompleted": "The specified job is already in a completed state.",
    "JobNotActive": "The specified job is not in an active state.",
    "JobPreparationTaskNotSpecified": "The specified job does not have a job preparation task.",
    "NodeNotReady": "The specified node is not ready for the operation.",
    "OperationInvalidForCurrentState": "The specified operation is not valid for the current "
    "state of the resource.",
    "InvalidPropertyValue": "The value provided for one of the properties in the request body "
    "is invalid.",
    "MissingRequiredProperty": "A required property was not specified in the request body.",
    "InvalidQueryParameterValue": "Value for one of the query parameters specified in the "
    "request URI is invalid.",
    "InvalidHeaderValue": "The value for one of the HTTP headers is not in the correct format.",
    "InvalidRequestBody": "The specified Request Body is not syntactically valid.",
    "RequestBodyTooLarge": "The request body is too large and exceeds the maximum permissible "
    "limit.",
    "InternalError": "Server encountered an internal error. Please try the request again.",
    "ServerBusy": "The server is currently unable to receive requests. Please retry your request.",
}
_WITHOUT_VALUES = frozenset(
    {
        "PoolNotFound",
        "JobNotFound",
        "TaskNotFound",
        "NodeNotFound",
        "JobScheduleNotFound",
        "PoolExists",
        "JobExists",
        "TaskExists",
        "JobScheduleExists",
        "PoolBeingDeleted",
        "JobBeingDeleted",
    }
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
    "TooManyEnableAutoScaleRequests": 503,
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
        self.headers: Mapping[str, str] = {}
        """Headers the answer carries besides the usual ones (``WWW-Authenticate``)."""


def not_supported(what: str, detail: str = "") -> RestError:
    """501 for an operation or property the local endpoint does not emulate, named."""
    sentence = f"{what} is not emulated by the local Batch endpoint"
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


def as_the_service(error: RestError) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The sentence and detail values the service sends for `error`: its own sentence for the
    code, the endpoint's sentence kept as the value ``Reason`` (unless the service sends no
    values for that code, or the endpoint's sentence is the service's already)."""
    sentence = SERVICE_MESSAGES.get(error.code)
    if sentence is None or sentence == error.message:
        return error.message, error.values
    if error.code in _WITHOUT_VALUES or any(key == "Reason" for key, _ in error.values):
        return sentence, error.values
    return sentence, (*error.values, ("Reason", error.message))


def error_document(base_url: str, error: RestError, request_id: str) -> dict[str, object]:
    """The body of an error answer, as the service writes it."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    message, values = as_the_service(error)
    document: dict[str, object] = {
        "odata.metadata": base_url + METADATA_SUFFIX,
        "code": error.code,
        "message": {
            "lang": "en-US",
            "value": f"{message}\nRequestId:{request_id}\nTime:{now}",
        },
    }
    if values:
        document["values"] = [{"key": key, "value": value} for key, value in values]
    return document

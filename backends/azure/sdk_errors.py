"""Turning azure-core and azure-batch exceptions into the project's error tree.

Behaviour is chosen by HTTP status and the service's error code (``PoolExists``, ``JobNotFound``),
never by message text. Every message that leaves this module passes through `Redactor`, so the
account key cannot leak even if some layer below were to echo it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from jobprep_release.backends.errors import (
    AlreadyExists,
    AuthenticationFailed,
    BackendError,
    BackendUnavailable,
    Conflict,
    InvalidRequest,
    NotFound,
    ServiceError,
)

ALREADY_EXISTS_CODES = frozenset({"PoolExists", "JobExists", "TaskExists", "JobScheduleExists"})

AUTH_HINT = (
    "check AZURE_BATCH_ACCOUNT and AZURE_BATCH_ACCESS_KEY (or --account and --key): the key is "
    "on the Batch account's Keys page; for Microsoft Entra ID, check the identity's role on the "
    "account"
)

REDACTED = "***"


@dataclass(frozen=True, slots=True)
class Redactor:
    """Replaces secrets in text before it reaches an exception, a log line or a repr."""

    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, REDACTED)
        return text


def service_message(exc: HttpResponseError) -> str:
    """The service's own sentence when it sent one, else the HTTP reason."""
    error = exc.error
    if error is not None and error.message:
        return str(error.message).splitlines()[0]
    reason = exc.reason or "no reason given"
    return f"HTTP {exc.status_code} {reason}"


def service_code(exc: HttpResponseError) -> str | None:
    error = exc.error
    if error is not None and error.code:
        return str(error.code)
    return None


def translate(
    exc: AzureError,
    *,
    action: str,
    endpoint: str,
    redact: Redactor,
) -> BackendError:
    """The project error for an SDK error raised while doing `action` (``create pool P``)."""
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return BackendUnavailable(
            redact(f"{action}: cannot reach the Batch service at {endpoint}: {exc.message}"),
            hint="check AZURE_BATCH_ENDPOINT (or --endpoint) and the network",
        )
    if not isinstance(exc, HttpResponseError):
        return ServiceError(redact(f"{action}: {exc.message}"))

    status = exc.status_code or 0
    code = service_code(exc)
    message = redact(f"{action}: {service_message(exc)}")
    if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
        return AuthenticationFailed(
            redact(
                f"{action}: the Batch service at {endpoint} refused the credentials "
                f"(HTTP {status}{', ' + code if code else ''})"
            ),
            code=code,
            hint=AUTH_HINT,
        )
    if status == 404:
        return NotFound(message, code=code)
    if status == 409:
        if code in ALREADY_EXISTS_CODES:
            return AlreadyExists(message, code=code)
        return Conflict(message, code=code)
    if status == 400:
        return InvalidRequest(message, code=code)
    return ServiceError(f"{message} (HTTP {status})", code=code)

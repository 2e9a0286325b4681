"""The project's error tree: every error a backend or the app raises on purpose.

One root, `JobPrepReleaseError`, so the console can turn any of them into one line and an exit
status. Backends translate their SDK's errors into these at their boundary (``raise ... from exc``);
the app's own errors subclass the same root::

    JobPrepReleaseError                 exit_status 1 unless a subclass says otherwise
    ├── BackendError                    something a backend could not do
    │   ├── BackendUnavailable          the engine or service cannot be reached       (3)
    │   ├── AuthenticationFailed        credentials missing or rejected               (4)
    │   ├── InvalidRequest              the service refused the request's values      (2)
    │   ├── NotFound                    pool, job, task, node or file absent          (5)
    │   ├── AlreadyExists               pool, job or task id already taken            (5)
    │   ├── Conflict                    the object's state forbids the operation      (5)
    │   ├── NotSupported                this backend cannot express the behaviour     (6)
    │   ├── ServiceError                the service failed (5xx, retries exhausted)   (7)
    │   └── StateUnreadable             the docker backend's stored state cannot be read (9)
    └── AppError                        the app's own failures
        ├── UsageError                  bad flags, settings or ids                    (2)
        └── WaitTimeout                 a wait ran past its limit                     (8)

Each error carries the service's error `code` when there is one (``PoolExists``, ``JobNotFound``)
so behaviour is driven by codes, never by message text, and an optional `hint` naming the fix.
"""

from __future__ import annotations


class JobPrepReleaseError(Exception):
    """Root of every error the project raises on purpose."""

    exit_status = 1

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint

    def one_line(self) -> str:
        """The message and its fix, on one line, as the console shows it."""
        text = " ".join(self.message.split())
        if self.hint:
            text = f"{text} ({' '.join(self.hint.split())})"
        return text


class BackendError(JobPrepReleaseError):
    """A backend could not do what was asked."""


class BackendUnavailable(BackendError):
    """The Docker engine or the Batch service cannot be reached."""

    exit_status = 3


class AuthenticationFailed(BackendError):
    """Credentials are missing, malformed or rejected."""

    exit_status = 4


class InvalidRequest(BackendError):
    """The request's values break the service's rules (ids, counts, limits)."""

    exit_status = 2


class NotFound(BackendError):
    """The pool, job, task, node or file does not exist."""

    exit_status = 5


class AlreadyExists(BackendError):
    """An object with that id exists already."""

    exit_status = 5


class Conflict(BackendError):
    """The object's current state does not allow the operation."""

    exit_status = 5


class NotSupported(BackendError):
    """This backend cannot express the requested behaviour; it says so instead of ignoring it."""

    exit_status = 6


class ServiceError(BackendError):
    """The service failed or kept failing after bounded retries."""

    exit_status = 7


class StateUnreadable(BackendError):
    """The docker backend's stored state cannot be read (not JSON, not a state, a format
    version this app does not read); the message names the file, which is left as it was."""

    exit_status = 9


class AppError(JobPrepReleaseError):
    """Failures of the app itself rather than of a backend."""


class UsageError(AppError):
    """Bad flags, settings or ids given by the user."""

    exit_status = 2


class WaitTimeout(AppError):
    """A wait for tasks, nodes or the job ran past its limit."""

    exit_status = 8


def find_project_error(exc: BaseException) -> JobPrepReleaseError | None:
    """The project's error in `exc`, looking inside task groups' exception groups."""
    if isinstance(exc, JobPrepReleaseError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = find_project_error(inner)
            if found is not None:
                return found
    return None

"""Tasks' authentication tokens: what a task with ``authenticationTokenSettings.access: ["job"]``
finds in ``AZ_BATCH_AUTHENTICATION_TOKEN`` and sends back as ``Authorization: Bearer <token>``.

The REST reference (``AuthenticationTokenSettings``): the token "grants access to all
operations related to the Job which contains the Task" and to nothing else. The service's
token format is not documented; here a token is ``batchtask.<payload>.<signature>``: the
payload the job and task ids (base64url JSON), the signature HMAC-SHA256 under a key the core
makes once and keeps in its state, so tokens stay valid across restarts and cannot be forged
without that key. A token does not expire (the reference gives it no lifetime).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets

from jobprep_release.backends.docker.core.kernel import Core

PREFIX = "batchtask."
ACCESS_JOB = "job"


def ensure_key(core: Core) -> bool:
    """Make the signing key when the state has none; True when it was made (save it)."""
    if core.state.token_secret:
        return False
    core.state.token_secret = secrets.token_hex(32)
    return True


def _key(core: Core) -> bytes:
    if ensure_key(core):
        core.changed()
    return core.state.token_secret.encode()


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _sign(core: Core, payload: str) -> str:
    return _encode(hmac.new(_key(core), payload.encode(), hashlib.sha256).digest())


def mint(core: Core, job_id: str, task_id: str) -> str:
    """A token for the operations on `job_id`, given to its task `task_id`."""
    payload = _encode(json.dumps({"job": job_id, "task": task_id}).encode())
    return f"{PREFIX}{payload}.{_sign(core, payload)}"


def is_task_token(token: str) -> bool:
    return token.startswith(PREFIX)


def job_of(core: Core, token: str) -> str | None:
    """The job `token` grants access to; None when it is not one this core signed."""
    payload, _, signature = token.removeprefix(PREFIX).partition(".")
    if not payload or not hmac.compare_digest(_sign(core, payload), signature):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    job = claims.get("job") if isinstance(claims, dict) else None
    return job if isinstance(job, str) else None

"""Where the azure backend's endpoint and credentials come from, and the one call the CLI makes.

Each value is taken from the first of these that has it:

1. explicit values (the CLI's ``--endpoint``, ``--account``, ``--key``);
2. the environment: ``AZURE_BATCH_ENDPOINT``, ``AZURE_BATCH_ACCOUNT``, ``AZURE_BATCH_ACCESS_KEY``;
3. the C# sample's ``accountsettings.json`` (``batchServiceUrl``, ``batchAccountName``,
   ``batchAccountKey``): the file given, or else one in the current directory when a value is
   still missing.

An endpoint with an account name and key signs requests with the shared key; an endpoint alone
signs in with Microsoft Entra ID (`azure.identity.aio.DefaultAzureCredential`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog
from azure.core.credentials import AzureNamedKeyCredential
from azure.identity.aio import DefaultAzureCredential

from jobprep_release.backends.azure.backend import AzureBackend, Credential
from jobprep_release.backends.errors import AuthenticationFailed, UsageError

SETTINGS_FILE_NAME = "accountsettings.json"
ENV_ENDPOINT = "AZURE_BATCH_ENDPOINT"
ENV_ACCOUNT = "AZURE_BATCH_ACCOUNT"
ENV_KEY = "AZURE_BATCH_ACCESS_KEY"
SETTINGS_KEYS = {
    "endpoint": "batchServiceUrl",
    "account": "batchAccountName",
    "key": "batchAccountKey",
}
ENDPOINT_EXAMPLE = "https://<account>.<region>.batch.azure.com"


@dataclass(frozen=True, slots=True)
class AzureSettings:
    """A resolved endpoint and, for shared-key sign-in, the account name and key."""

    endpoint: str
    account: str | None = None
    key: str | None = field(default=None, repr=False)

    @property
    def uses_shared_key(self) -> bool:
        return self.account is not None and self.key is not None


def _clean(value: str | None) -> str | None:
    value = value.strip() if value is not None else None
    return value or None


def read_settings_file(path: Path) -> dict[str, str]:
    """The endpoint, account and key found in an ``accountsettings.json`` (names as our fields).

    Names are matched without regard to case, as the C# sample's configuration binder does.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"settings file {path} does not exist") from None
    except OSError as exc:
        raise UsageError(f"cannot read settings file {path}: {exc.strerror}") from None
    try:
        document: Any = json.loads(text)
    except ValueError:
        raise UsageError(
            f"settings file {path} is not JSON: expected an object with "
            f"{', '.join(SETTINGS_KEYS.values())}"
        ) from None
    if not isinstance(document, dict):
        raise UsageError(f"settings file {path} must hold a JSON object")
    by_lower_name = {str(name).lower(): value for name, value in document.items()}
    found: dict[str, str] = {}
    for ours, theirs in SETTINGS_KEYS.items():
        value = by_lower_name.get(theirs.lower())
        if value is None:
            continue
        if not isinstance(value, str):
            raise UsageError(f"settings file {path}: {theirs} must be a string")
        if cleaned := _clean(value):
            found[ours] = cleaned
    if "key" in found:
        _warn_if_shared(path)
    return found


def _warn_if_shared(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        structlog.get_logger().warning(
            "settings file holding an access key is readable by other users",
            path=str(path),
            mode=oct(stat.S_IMODE(mode)),
            fix=f"chmod 600 {path}",
        )


def check_endpoint(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or any(ch.isspace() for ch in endpoint)
    ):
        raise UsageError(
            f"invalid Batch endpoint {endpoint!r}: set {ENV_ENDPOINT} (or --endpoint) to the "
            f"account's URL, e.g. {ENDPOINT_EXAMPLE}"
        )
    return endpoint.rstrip("/")


def resolve_settings(
    *,
    endpoint: str | None = None,
    account: str | None = None,
    key: str | None = None,
    settings_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> AzureSettings:
    """Resolve endpoint, account and key by the precedence in this module's docstring."""
    env = os.environ if environ is None else environ
    values: dict[str, str | None] = {
        "endpoint": _clean(endpoint) or _clean(env.get(ENV_ENDPOINT)),
        "account": _clean(account) or _clean(env.get(ENV_ACCOUNT)),
        "key": _clean(key) or _clean(env.get(ENV_KEY)),
    }
    file: Path | None = None
    if settings_path is not None:
        file = Path(settings_path)
    elif not all(values.values()):
        candidate = Path(cwd if cwd is not None else Path.cwd()) / SETTINGS_FILE_NAME
        file = candidate if candidate.is_file() else None
    if file is not None:
        for name, value in read_settings_file(file).items():
            values[name] = values[name] or value

    if values["endpoint"] is None:
        raise UsageError(
            f"no Batch account endpoint: set {ENV_ENDPOINT} (or --endpoint, or batchServiceUrl "
            f"in {SETTINGS_FILE_NAME}) to {ENDPOINT_EXAMPLE}"
        )
    resolved_endpoint = check_endpoint(values["endpoint"])
    if values["account"] and not values["key"]:
        raise AuthenticationFailed(
            f"Batch account {values['account']!r} has no access key: set {ENV_KEY} (or --key), "
            f"or unset {ENV_ACCOUNT} to sign in with Microsoft Entra ID"
        )
    if values["key"] and not values["account"]:
        raise AuthenticationFailed(
            f"an access key was given without an account name: set {ENV_ACCOUNT} (or --account)"
        )
    if not values["key"] and urlsplit(resolved_endpoint).scheme != "https":
        raise UsageError(
            f"Microsoft Entra ID sign-in needs an https endpoint, not {resolved_endpoint}: use "
            f"https, or set {ENV_ACCOUNT} and {ENV_KEY}"
        )
    return AzureSettings(endpoint=resolved_endpoint, account=values["account"], key=values["key"])


def make_credential(settings: AzureSettings) -> tuple[Credential, bool]:
    """The credential for `settings`, and whether it was created here (the caller closes it)."""
    if settings.account is not None and settings.key is not None:
        return AzureNamedKeyCredential(settings.account, settings.key), False
    return DefaultAzureCredential(), True


def build_azure_backend(
    *,
    endpoint: str | None = None,
    account: str | None = None,
    key: str | None = None,
    settings_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    **backend_options: Any,
) -> AzureBackend:
    """An `AzureBackend` for the resolved settings; use it as ``async with``.

    Raises `UsageError` or `AuthenticationFailed` (one line each, naming what to set) when the
    settings are missing or malformed. `backend_options` go to `AzureBackend` (timeouts,
    pipeline options such as ``transport`` or ``retry_total``).
    """
    settings = resolve_settings(
        endpoint=endpoint,
        account=account,
        key=key,
        settings_path=settings_path,
        environ=environ,
        cwd=cwd,
    )
    credential, owned = make_credential(settings)
    if _is_loopback(settings.endpoint):
        # A service on this machine (`python -m jobprep_release serve`) answers at once: poll
        # it as often as the docker backend does rather than every 10 s.
        backend_options = {**LOOPBACK_POLLING, **backend_options}
    return AzureBackend(settings.endpoint, credential, owns_credential=owned, **backend_options)


LOOPBACK_POLLING: dict[str, Any] = {"poll_interval": 0.5, "lro_poll_interval": 1}


def _is_loopback(endpoint: str) -> bool:
    host = urlsplit(endpoint).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""Shared Key authentication, checked as the Batch service checks it.

A client signs each request with HMAC-SHA256 under the account key over: the method, eleven
standard headers (``Content-Length`` ``0`` for a body-less write), every ``ocp-*`` header
(lower-cased, sorted, ``name:value``), ``/<account><path>`` and each query parameter
(``\\nname:value``, sorted by name, first value, empty ones left out), and sends
``Authorization: SharedKey <account>:<base64 signature>`` with an ``ocp-date`` (or ``Date``).
That is what azure-batch's ``BatchSharedKeyAuthPolicy`` signs; older clients lower-case the
parameter names or sign the decoded path, and those forms are accepted too.

A request without a usable ``Authorization`` header is refused with 401, a wrong signature or
account, or a date more than 15 minutes away, with 403; both with code ``AuthenticationFailed``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import parse_qs, unquote

from jobprep_release.backends.docker.rest.errors import RestError
from jobprep_release.backends.docker.rest.wire import now, parse_http_date

SIGNED_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)
MAX_CLOCK_SKEW = timedelta(minutes=15)
_FAILED = (
    "Server failed to authenticate the request. Make sure the value of Authorization header is "
    "formed correctly including the signature."
)


def decode_key(key: str) -> bytes:
    """The account key's bytes; `ValueError` when it is not base64."""
    try:
        return base64.b64decode(key.encode(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the account key must be base64") from None


def _refused(status: int, detail: str) -> RestError:
    return RestError(
        status, "AuthenticationFailed", _FAILED, [("AuthenticationErrorDetail", detail)]
    )


class SharedKey:
    """One account's name and key, and the check of a request's signature."""

    def __init__(self, account: str, key: str) -> None:
        self.account = account
        self._key = decode_key(key)

    def sign(self, text: str) -> str:
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def strings_to_sign(
        self, method: str, headers: Mapping[str, str], raw_path_and_query: str
    ) -> list[str]:
        """The texts a client may have signed for this request (the SDK's form first)."""
        present = {name.lower(): value for name, value in headers.items() if value}
        if method not in ("GET", "HEAD"):
            present.setdefault("content-length", "0")
        text = method + "\n" + "\n".join(present.get(name, "") for name in SIGNED_HEADERS) + "\n"
        ocp = sorted((name, value) for name, value in present.items() if "ocp-" in name)
        text += "".join(f"{name}:{value}\n" for name, value in ocp)
        raw_path, _, raw_query = raw_path_and_query.partition("?")
        query = parse_qs(raw_query, keep_blank_values=True)
        forms: list[str] = []
        for path in dict.fromkeys((raw_path, unquote(raw_path))):
            for lower in (False, True):
                names = {
                    (name.lower() if lower else name): values for name, values in query.items()
                }
                resource = f"/{self.account}{path}"
                for name in sorted(names):
                    if names[name][0]:
                        resource += f"\n{name}:{names[name][0]}"
                forms.append(text + resource)
        return list(dict.fromkeys(forms))

    def check(self, method: str, headers: Mapping[str, str], raw_path_and_query: str) -> None:
        """Return when the request is signed with this account's key; else `RestError`."""
        authorization = headers.get("Authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        account, _, signature = credentials.strip().rpartition(":")
        if scheme != "SharedKey" or not account or not signature:
            raise _refused(401, "The Authorization header is missing or is not SharedKey.")
        if account != self.account:
            raise _refused(403, f"The account {account!r} is not served here.")
        sent = headers.get("ocp-date") or headers.get("Date")
        when = parse_http_date(sent) if sent else None
        if when is None:
            raise _refused(403, "The request has no valid ocp-date or Date header.")
        if abs(now() - when) > MAX_CLOCK_SKEW:
            raise _refused(403, "The request's date is more than 15 minutes from the server's.")
        for text in self.strings_to_sign(method, headers, raw_path_and_query):
            if hmac.compare_digest(self.sign(text), signature):
                return
        raise _refused(403, "The signature is not the one computed with the account's key.")

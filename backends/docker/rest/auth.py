"""Shared Key authentication, checked as the Batch service specifies it.

A client signs each request with HMAC-SHA256 under the account key over (source: "Authenticate
requests to the Azure Batch service", Batch REST API documentation)::

    VERB \\n Content-Encoding \\n Content-Language \\n Content-Length \\n Content-MD5 \\n
    Content-Type \\n Date \\n If-Modified-Since \\n If-Match \\n If-None-Match \\n
    If-Unmodified-Since \\n Range \\n CanonicalizedHeaders CanonicalizedResource

Each standard header is the value the request carries, and an empty line when it carries none,
for every method (Node's DELETE sends no ``Content-Length`` and `@azure/batch` signs an empty
line; Python's transports send ``Content-Length: 0`` and azure-batch signs ``0``). A
``Content-Length: 0`` may also be signed as an empty line (Storage's rule since 2015), and the
``Date`` line may be left empty when ``ocp-date`` is sent. CanonicalizedHeaders: every ``ocp-*``
header with a value, the name lower-cased, sorted, ``name:value\\n`` (folded whitespace
unfolded). CanonicalizedResource: ``/<account><encoded path>``, then ``\\nname:value`` per query
parameter sorted by name, names and values URL-decoded. The documentation lower-cases the names
and joins several values, sorted, with commas; the SDKs sign the names as sent (azure-batch:
``timeOut``), azure-batch leaves out parameters with empty values and `@azure/batch` keeps them.
Every one of those forms is accepted; nothing else is.

The date checked is ``ocp-date``, else ``Date``. A request without a usable ``Authorization``
header is refused with 401; a wrong signature or account, or a date more than 15 minutes away,
with 403; both with code ``AuthenticationFailed``.

Microsoft Entra ID (``Authorization: Bearer <token>``) is accepted when the endpoint serves
HTTPS (`SharedKey` made with ``bearer_tokens=True``; over HTTP it is refused, as Azure SDKs
refuse to send one), checked as Azurite's basic OAuth mode checks a token: a JWT (three base64url
parts, the first two JSON objects) whose ``nbf``, ``exp`` and ``iat`` are present, the time
within ``nbf``..``exp``, whose issuer is Microsoft Entra ID's (`ISSUER_PREFIXES`) and whose
audience is the Batch resource (`BATCH_AUDIENCES`: the resource endpoint the Batch
documentation names, ``https://batch.core.windows.net/``, with or without the slash, and the
national clouds' forms); the signature is not checked. A token that fails is 401
``InvalidAuthenticationInfo`` ("the authentication information is invalid", Batch's error
codes) with the Azure front end's sentence for a refused token (as Azure Storage answers one),
the cause as ``AuthenticationErrorDetail`` (Azurite's texts) and a ``WWW-Authenticate: Bearer``
challenge naming ``error="invalid_token"`` (RFC 6750 section 3.1), which azure-core's bearer
policy does not retry. No recording of the Batch service refusing a token was at hand: the code
is the documented one; the sentence and the challenge's form are not from Batch itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

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
_SEE_CHALLENGE = (
    "Server failed to authenticate the request. Please refer to the information in the "
    "www-authenticate header."
)
_FOLDED = re.compile(r"\s*\r?\n[ \t]+")
_FAILED = (
    "Server failed to authenticate the request. Make sure the value of Authorization header is "
    "formed correctly including the signature."
)


BATCH_AUDIENCES = frozenset(
    f"https://{host}{slash}"
    for host in ("batch.core.windows.net", "batch.chinacloudapi.cn", "batch.core.usgovcloudapi.net")
    for slash in ("/", "")
)
"""The Batch resource as a token's ``aud`` (what azure-batch's scope
``https://batch.core.windows.net//.default`` yields, and the other clouds' resource endpoints)."""
ISSUER_PREFIXES = (
    "https://sts.windows.net/",
    "https://sts.microsoftonline.de/",
    "https://sts.chinacloudapi.cn/",
    "https://sts.windows-ppe.net",
    "https://login.microsoftonline.com/",
)
"""Microsoft Entra ID's issuers (``iss``): Azurite's list (v1 tokens), and v2 tokens' authority."""
BEARER_CHALLENGE = (
    'Bearer authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'resource_id="https://batch.core.windows.net/", error="invalid_token"'
)


def _base64url(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _token_refused(detail: str) -> RestError:
    error = RestError(
        401, "InvalidAuthenticationInfo", _SEE_CHALLENGE, [("AuthenticationErrorDetail", detail)]
    )
    error.headers = {"WWW-Authenticate": f'{BEARER_CHALLENGE}, error_description="{detail}"'}
    return error


def check_token(token: str, when: datetime) -> None:
    """Return when `token` is a well-formed, current Microsoft Entra ID token for Batch (the
    module's docstring); else `RestError` 401."""
    parts = token.split(".")
    try:
        header, claims = (_base64url(part) for part in parts[:2])
    except (ValueError, binascii.Error):
        header = claims = None
    if len(parts) != 3 or not isinstance(header, dict) or not isinstance(claims, dict):
        raise _token_refused("The access token is not a JSON Web Token.")
    times = [claims.get(name) for name in ("nbf", "exp", "iat")]
    if not all(isinstance(value, int | float) for value in times):
        raise _token_refused("The access token has no nbf, exp or iat claim.")
    now = when.timestamp()
    if now < claims["nbf"]:
        raise _token_refused("Lifetime validation failed. The token is not yet valid.")
    if now > claims["exp"]:
        raise _token_refused("Lifetime validation failed. The token is expired.")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer.startswith(ISSUER_PREFIXES):
        raise _token_refused("Invalid token issuer.")
    audience = claims.get("aud")
    if audience not in BATCH_AUDIENCES:
        raise _token_refused("Invalid token audience.")


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

    def __init__(self, account: str, key: str, *, bearer_tokens: bool = False) -> None:
        self.account = account
        self._key = decode_key(key)
        self.bearer_tokens = bearer_tokens
        """Whether Microsoft Entra ID tokens are accepted too (the endpoint serves HTTPS)."""

    def sign(self, text: str) -> str:
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def strings_to_sign(
        self, method: str, headers: Mapping[str, str], raw_path_and_query: str
    ) -> list[str]:
        """Every text a client may have signed for this request, by the forms the module's
        docstring lists (the documentation's form first)."""
        heads = _standard_lines(method, _received(headers))
        raw_path, _, raw_query = raw_path_and_query.partition("?")
        resources = [
            f"/{self.account}{path}{query}"
            # The SDKs sign ``:`` (in a schedule's job ids) as ``%3A``; HTTP clients send it as is.
            for path in dict.fromkeys((raw_path, unquote(raw_path), quote(unquote(raw_path))))
            for query in _canonical_queries(raw_query)
        ]
        return list(dict.fromkeys(head + resource for head in heads for resource in resources))

    def check(self, method: str, headers: Mapping[str, str], raw_path_and_query: str) -> None:
        """Return when the request is signed with this account's key; else `RestError`."""
        authorization = _received(headers).get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer":
            if not self.bearer_tokens:
                raise _refused(401, "Authentication scheme Bearer is not allowed with HTTP.")
            check_token(credentials.strip(), now())
            return
        account, _, signature = credentials.strip().rpartition(":")
        if scheme != "SharedKey" or not account or not signature:
            raise _refused(401, "The Authorization header is missing or is not SharedKey.")
        if account != self.account:
            raise _refused(403, f"The account {account!r} is not served here.")
        received = _received(headers)
        sent = received.get("ocp-date") or received.get("date")
        when = parse_http_date(sent) if sent else None
        if when is None:
            raise _refused(403, "The request has no valid ocp-date or Date header.")
        if abs(now() - when) > MAX_CLOCK_SKEW:
            raise _refused(403, "The request's date is more than 15 minutes from the server's.")
        for text in self.strings_to_sign(method, headers, raw_path_and_query):
            if hmac.compare_digest(self.sign(text), signature):
                return
        raise _refused(403, "The signature is not the one computed with the account's key.")


def _received(headers: Mapping[str, str]) -> dict[str, str]:
    """The request's headers by lower-cased name; a repeated header's values joined by commas,
    folded whitespace unfolded, values trimmed."""
    joined: dict[str, list[str]] = {}
    for name, value in headers.items():
        joined.setdefault(name.lower(), []).append(_FOLDED.sub(" ", value).strip())
    return {name: ",".join(values) for name, values in joined.items()}


def _standard_lines(method: str, received: Mapping[str, str]) -> list[str]:
    """The verb, the standard headers' lines and the canonicalized headers, in every accepted
    form (as received first)."""
    ocp = sorted((name, value) for name, value in received.items() if name.startswith("ocp-"))
    canonical = "".join(f"{name}:{value}\n" for name, value in ocp if value)
    lengths = [received.get("content-length", "")]
    if lengths[0] == "0":
        lengths.append("")
    dates = [received.get("date", "")]
    if dates[0] and received.get("ocp-date"):
        dates.append("")
    forms = []
    for length in lengths:
        for date in dates:
            values = {**received, "content-length": length, "date": date}
            lines = "".join(values.get(name, "") + "\n" for name in SIGNED_HEADERS)
            forms.append(f"{method}\n{lines}{canonical}")
    return forms


def _canonical_queries(raw_query: str) -> list[str]:
    """The query's canonicalized forms (``\nname:value`` each): the documentation's (names
    lower-cased, several values sorted and joined by commas), and the SDKs' (names as sent,
    the first value; empty values left out, or kept)."""
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    forms: list[str] = []
    for lower, first_only, drop_empty in (
        (True, False, False),
        (False, True, True),
        (False, True, False),
        (True, True, True),
        (False, False, False),
    ):
        values: dict[str, list[str]] = {}
        for name, value in pairs:
            values.setdefault(name.lower() if lower else name, []).append(value)
        text = ""
        for name in sorted(values):
            value = values[name][0] if first_only else ",".join(sorted(values[name]))
            if value or not drop_empty:
                text += f"\n{name}:{value}"
        forms.append(text)
    return list(dict.fromkeys(forms))

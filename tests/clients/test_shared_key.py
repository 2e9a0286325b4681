"""Shared Key as the Batch documentation specifies it, over raw HTTP/1.1 (no SDK, so that what
is sent, and what is absent, is exactly what each test writes).

The signatures here are computed by this module's own `string_to_sign`, written from the
documentation ("Authenticate requests to the Azure Batch service"), not with the endpoint's
code: every standard header a line (an absent one empty, for every method), ``ocp-*`` headers
lower-cased and sorted, ``/<account><path>`` and the query parameters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from email.utils import formatdate
from urllib.parse import urlsplit

import anyio

from tests.azure.emulator import Emulator
from tests.azure.support import ACCOUNT, KEY

API = "api-version=2025-06-01"
STANDARD = (
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-MD5",
    "Content-Type",
    "Date",
    "If-Modified-Since",
    "If-Match",
    "If-None-Match",
    "If-Unmodified-Since",
    "Range",
)
POOL = {
    "id": "p1",
    "vmSize": "standard_d1_v2",
    "targetDedicatedNodes": 1,
    "virtualMachineConfiguration": {
        "imageReference": {"publisher": "canonical", "offer": "ubuntu", "sku": "24_04"},
        "nodeAgentSKUId": "batch.node.ubuntu 24.04",
    },
}


def string_to_sign(
    method: str, headers: dict[str, str], resource: str, overrides: dict[str, str] | None = None
) -> str:
    """The documentation's string, from the headers that are sent (`overrides` replaces a
    standard header's line, for signing something other than what is sent)."""
    lines = [method]
    lines += [(overrides or {}).get(name, headers.get(name, "")) for name in STANDARD]
    ocp = sorted(
        (name.lower(), value) for name, value in headers.items() if name.startswith("ocp-")
    )
    return "\n".join(lines) + "\n" + "".join(f"{n}:{v}\n" for n, v in ocp) + resource


def signature(text: str, key: str = KEY) -> str:
    digest = hmac.new(base64.b64decode(key), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


async def raw(
    url: str, method: str, target: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, object]]:
    """One HTTP/1.1 request written byte by byte: the status and the JSON body (if any)."""
    address = urlsplit(url)
    assert address.hostname is not None and address.port is not None
    head = f"{method} {target} HTTP/1.1\r\nHost: {address.netloc}\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    async with await anyio.connect_tcp(address.hostname, address.port) as stream:
        await stream.send(head.encode() + b"\r\n" + body)
        received = b""
        try:
            while True:
                received += await stream.receive()
        except anyio.EndOfStream:
            pass
    status_line, _, rest = received.partition(b"\r\n")
    _, _, content = rest.partition(b"\r\n\r\n")
    document = json.loads(content) if content.strip().startswith(b"{") else {}
    return int(status_line.split()[1]), document


def signed(
    method: str,
    target: str,
    headers: dict[str, str],
    *,
    resource: str | None = None,
    overrides: dict[str, str] | None = None,
    account: str = ACCOUNT,
    key: str = KEY,
) -> dict[str, str]:
    """`headers` with an ocp-date (unless a Date is given) and a Shared Key Authorization."""
    sent = dict(headers)
    if "Date" not in sent:
        sent.setdefault("ocp-date", formatdate(usegmt=True))
    path = target.partition("?")[0]
    resource = resource or f"/{account}{path}\napi-version:2025-06-01"
    text = string_to_sign(method, sent, resource, overrides)
    sent["Authorization"] = f"SharedKey {account}:{signature(text, key)}"
    return sent


async def create_pool(emulator: Emulator) -> None:
    body = json.dumps(POOL).encode()
    headers = {
        "Content-Type": "application/json; odata=minimalmetadata",
        "Content-Length": str(len(body)),
    }
    status, document = await raw(
        emulator.url, "POST", f"/pools?{API}", signed("POST", f"/pools?{API}", headers), body
    )
    assert status == 201, document


def codes(statuses: Sequence[tuple[int, dict[str, object]]]) -> list[int]:
    return [status for status, _ in statuses]


async def test_a_delete_without_content_length_is_signed_with_an_empty_line(
    emulator: Emulator,
) -> None:
    await create_pool(emulator)
    target = f"/pools/p1?{API}"
    status, document = await raw(emulator.url, "DELETE", target, signed("DELETE", target, {}))
    assert status == 202, document
    assert ("DELETE", "/pools/p1") in [(r.method, r.path) for r in emulator.requests]


async def test_a_delete_without_content_length_signed_as_zero_is_refused(
    emulator: Emulator,
) -> None:
    await create_pool(emulator)
    target = f"/pools/p1?{API}"
    headers = signed("DELETE", target, {}, overrides={"Content-Length": "0"})
    status, document = await raw(emulator.url, "DELETE", target, headers)
    assert status == 403, document
    assert document["code"] == "AuthenticationFailed"


async def test_a_delete_with_content_length_zero_is_signed_with_it(emulator: Emulator) -> None:
    await create_pool(emulator)
    target = f"/pools/p1?{API}"
    headers = signed("DELETE", target, {"Content-Length": "0"})
    status, document = await raw(emulator.url, "DELETE", target, headers)
    assert status == 202, document


async def test_a_date_header_serves_instead_of_ocp_date(emulator: Emulator) -> None:
    target = f"/pools?{API}"
    headers = signed("GET", target, {"Date": formatdate(usegmt=True)})
    assert "ocp-date" not in headers
    status, document = await raw(emulator.url, "GET", target, headers)
    assert status == 200, document


async def test_every_standard_header_is_signed(emulator: Emulator) -> None:
    target = f"/pools?{API}"
    sent = {"Content-Language": "en-US", "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="}
    status, document = await raw(emulator.url, "GET", target, signed("GET", target, sent))
    assert status == 200, document
    for name in STANDARD:
        if name in ("Date", "Content-Length"):
            continue
        forged = signed("GET", target, sent, overrides={name: "not-what-was-sent"})
        status, document = await raw(emulator.url, "GET", target, forged)
        assert status == 403, (name, document)


async def test_query_parameters_in_the_documented_form_and_the_sdks_forms(
    emulator: Emulator,
) -> None:
    target = "/pools?api-version=2025-06-01&maxResults=5&$Select=id&timeout="
    resources = [
        # the documentation's: lower-cased, decoded, sorted by name, empty values kept
        "/emulatoraccount/pools\n$select:id\napi-version:2025-06-01\nmaxresults:5\ntimeout:",
        # azure-batch's: names as sent, empty values left out
        "/emulatoraccount/pools\n$Select:id\napi-version:2025-06-01\nmaxResults:5",
        # @azure/batch's: names as sent, empty values kept
        "/emulatoraccount/pools\n$Select:id\napi-version:2025-06-01\nmaxResults:5\ntimeout:",
    ]
    for resource in resources:
        headers = signed("GET", target, {}, resource=resource)
        status, document = await raw(emulator.url, "GET", target, headers)
        assert status != 403, (resource, document)
    wrong = "/emulatoraccount/pools\n$Select:id\napi-version:2025-06-01\nmaxResults:6"
    status, _ = await raw(emulator.url, "GET", target, signed("GET", target, {}, resource=wrong))
    assert status == 403


async def test_a_wrong_key_or_account_is_403_and_no_authorization_401(
    emulator: Emulator,
) -> None:
    target = f"/pools?{API}"
    other_key = base64.b64encode(b"another key entirely").decode()
    wrong_key = signed("GET", target, {}, key=other_key)
    wrong_account = signed("GET", target, {}, account="otheraccount")
    unsigned = {"ocp-date": formatdate(usegmt=True)}
    stale = signed("GET", target, {"ocp-date": formatdate(0, usegmt=True)})
    answers = [
        await raw(emulator.url, "GET", target, headers)
        for headers in (wrong_key, wrong_account, unsigned, stale)
    ]
    assert codes(answers) == [403, 403, 401, 403]
    assert {document["code"] for _, document in answers} == {"AuthenticationFailed"}

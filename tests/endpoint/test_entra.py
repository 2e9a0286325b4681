"""Microsoft Entra ID on the endpoint served over HTTPS: azure-batch 15 with a token credential.

The credential issues tokens as Microsoft Entra ID forms them for the scope azure-batch asks
(``https://batch.core.windows.net//.default``: the audience is the resource before
``/.default``; issuer ``https://sts.windows.net/<tenant>/``; ``nbf``, ``iat``, ``exp``), unsigned
(the endpoint, like Azurite's basic OAuth mode, does not check signatures). The client trusts the
endpoint's generated certificate and runs a hello-world (pool, job, task, wait, stdout, delete)
over the fake executor; an expired token and one for another audience are refused with 401 and a
``WWW-Authenticate: Bearer`` challenge; Shared Key works on the same server; over plain HTTP a
bearer token is refused.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import docker
import pytest
from azure.batch import models
from azure.batch.aio import BatchClient
from azure.core.credentials import AccessToken, AzureNamedKeyCredential
from azure.core.exceptions import ClientAuthenticationError

from jobprep_release.backends.docker.core import FakeClock, FakeExecutor, FakeOutcome
from jobprep_release.backends.docker.rest import (
    EndpointSettings,
    RunningEndpoint,
    running_endpoint,
)
from jobprep_release.backends.docker.rest.auth import check_token
from jobprep_release.backends.docker.rest.errors import RestError
from tests.conftest import REPO, Ids, labelled
from tests.core.harness import all_blocked
from tests.endpoint.support import linux_pool

KEY = base64.b64encode(b"entra-endpoint-test-key-0123456789").decode()
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
BATCH_SCOPE = "https://batch.core.windows.net//.default"
"""The scope azure-batch 15 asks a credential for (its ``credential_scopes`` default)."""
POOL, JOB = "entrapool", "entrajob"


def _part(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


class TokenIssuer:
    """An async token credential issuing Microsoft Entra ID-shaped tokens (unsigned)."""

    def __init__(self, *, lifetime: int = 3600, audience: str | None = None) -> None:
        self.lifetime = lifetime
        self.audience = audience
        self.scopes: list[str] = []

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.extend(scopes)
        now = int(time.time())
        claims = {
            "aud": self.audience or scopes[0].removesuffix("/.default"),
            "iss": f"https://sts.windows.net/{TENANT}/",
            "iat": now - 300,
            "nbf": now - 300,
            "exp": now + self.lifetime,
            "tid": TENANT,
            "oid": "00000000-0000-0000-0000-000000000001",
        }
        header = {"typ": "JWT", "alg": "RS256", "kid": "local"}
        token = f"{_part(header)}.{_part(claims)}.{_part({'signature': 'none'})}"
        return AccessToken(token, now + self.lifetime)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> TokenIssuer:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


@asynccontextmanager
async def _https(
    directory: Path, clock: FakeClock
) -> AsyncIterator[tuple[RunningEndpoint, FakeExecutor]]:
    fake = FakeExecutor(clock, lambda start: FakeOutcome(duration=1, stdout=b"hello\n"))
    settings = EndpointSettings(
        account="entrabatch",
        key=KEY,
        port=0,
        executor=fake,
        clock=clock,
        https=True,
        certificate_dir=directory,
    )
    async with running_endpoint(settings) as running:
        yield running, fake


def _client(running: RunningEndpoint, credential: Any) -> BatchClient:
    assert running.certificate is not None
    return BatchClient(
        running.url, credential, retry_total=0, connection_verify=str(running.certificate)
    )


async def _hello_world(client: BatchClient, clock: FakeClock) -> bytes:
    await client.create_pool(linux_pool(POOL))
    await client.create_job(
        models.BatchJobCreateOptions(id=JOB, pool_info=models.BatchPoolInfo(pool_id=POOL))
    )
    await client.create_task(JOB, models.BatchTaskCreateOptions(id="t1", command_line="echo hi"))
    with anyio.fail_after(10):
        while (await client.get_task(JOB, "t1")).state != models.BatchTaskState.COMPLETED:
            clock.advance(1)
            await all_blocked()
    stream = await client.download_task_file(JOB, "t1", "stdout.txt")
    output = b"".join([chunk async for chunk in stream])
    await (await client.begin_delete_job(JOB, polling_interval=0)).result()
    await (await client.begin_delete_pool(POOL, polling_interval=0)).result()
    return output


async def test_a_token_credential_runs_the_hello_world_over_https(tmp_path: Path) -> None:
    clock = FakeClock()
    async with _https(tmp_path, clock) as (running, fake):
        assert running.url.startswith("https://127.0.0.1:")
        assert running.certificate == tmp_path / "endpoint-cert.pem"
        issuer = TokenIssuer()
        async with _client(running, issuer) as client:
            assert await _hello_world(client, clock) == b"hello\n"
        assert set(issuer.scopes) == {BATCH_SCOPE}
        assert [start.task_id for start in fake.starts] == ["t1"]
        # Shared Key on the same server.
        shared = AzureNamedKeyCredential(running.account, running.key)
        async with _client(running, shared) as client:
            assert [pool.id async for pool in client.list_pools()] == []
    # The certificate is kept for the next start (a client trusts it once).
    first = (tmp_path / "endpoint-cert.pem").read_bytes()
    async with _https(tmp_path, FakeClock()) as (running, _):
        assert running.certificate is not None
        assert running.certificate.read_bytes() == first
    assert (tmp_path / "endpoint-key.pem").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("issuer", "detail"),
    [
        (TokenIssuer(lifetime=-60), "Lifetime validation failed. The token is expired."),
        (TokenIssuer(audience="https://storage.azure.com/"), "Invalid token audience."),
    ],
    ids=["expired", "wrong-audience"],
)
async def test_an_expired_or_foreign_token_is_refused(
    tmp_path: Path, issuer: TokenIssuer, detail: str
) -> None:
    async with _https(tmp_path, FakeClock()) as (running, _), _client(running, issuer) as client:
        with pytest.raises(ClientAuthenticationError) as refused:
            await client.get_pool(POOL)
    error = refused.value
    assert error.status_code == 401
    assert error.error is not None and error.error.code == "InvalidAuthenticationInfo"
    assert any(detail in str(item.message) for item in error.error.details)
    assert error.response is not None
    challenge = error.response.headers["WWW-Authenticate"]  # type: ignore[attr-defined]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge


async def test_a_bearer_token_over_plain_http_is_refused() -> None:
    token = (await TokenIssuer().get_token(BATCH_SCOPE)).token
    settings = EndpointSettings(key=KEY, port=0, executor=FakeExecutor(FakeClock()))
    async with running_endpoint(settings) as running, aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{running.url}/pools?api-version=2025-06-01"
        async with session.get(url, headers=headers) as answer:
            assert answer.status == 401
            assert (await answer.json())["code"] == "AuthenticationFailed"


def test_the_certificate_is_a_trust_anchor_for_the_loopback_names(tmp_path: Path) -> None:
    """Python's own verification (the default context, hostname checked) accepts it."""
    from jobprep_release.backends.docker.rest.tls import endpoint_certificate

    made = endpoint_certificate(tmp_path, "127.0.0.1")
    context = ssl.create_default_context(cafile=str(made.certificate))
    assert context.check_hostname and context.verify_mode is ssl.CERT_REQUIRED
    assert context.get_ca_certs()[0]["subjectAltName"] == (
        ("DNS", "localhost"),
        ("IP Address", "127.0.0.1"),
        ("IP Address", "0:0:0:0:0:0:0:1"),
    )


_CHILD = """
import sys, time
from azure.batch import BatchClient
from azure.core.credentials import AccessToken
sys.path.insert(0, ".")
from tests.endpoint.test_entra import _part, TENANT

class Credential:
    def get_token(self, *scopes, **kwargs):
        now = int(time.time())
        claims = {"aud": scopes[0].removesuffix("/.default"), "iat": now, "nbf": now,
                  "exp": now + 600, "iss": f"https://sts.windows.net/{TENANT}/"}
        return AccessToken(f"{_part({'alg': 'none'})}.{_part(claims)}.", now + 600)

with BatchClient(sys.argv[1], Credential(), retry_total=0) as client:
    print(len(list(client.list_pools())))
"""
_ASYNC_CHILD = """
import asyncio, sys
from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

async def main():
    credential = AzureNamedKeyCredential(sys.argv[2], sys.argv[3])
    async with BatchClient(sys.argv[1], credential, retry_total=0) as client:
        print(len([pool async for pool in client.list_pools()]))

asyncio.run(main())
"""


def _without_batch_variables() -> dict[str, str]:
    """The environment without a Batch account or key, so `serve` makes and prints its key."""
    names = ("AZURE_BATCH_", "JOBPREP_RELEASE_ACCOUNT", "JOBPREP_RELEASE_KEY")
    return {name: value for name, value in os.environ.items() if not name.startswith(names)}


def _banner_value(banner: str, name: str) -> str:
    (line,) = [line for line in banner.splitlines() if line.strip().startswith(f"{name}:")]
    return line.split(":", 1)[1].strip()


def test_serve_https_prints_how_to_trust_its_certificate(
    state_dir: Path, ids: Ids, docker_client: docker.DockerClient
) -> None:
    """``serve --https`` names its certificate and the variables to trust it by; a client
    (azure-batch's sync client over requests) given only ``REQUESTS_CA_BUNDLE`` signs in with a
    token; the sample's command it prints runs as printed."""
    server = subprocess.Popen(
        [sys.executable, "-m", "jobprep_release", "serve", "--https", "--port", "0",
         "--state-dir", str(state_dir)],
        cwd=REPO, env=_without_batch_variables(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None and server.stderr is not None
        first = server.stdout.readline().strip()
        assert first.startswith("Azure Batch endpoint (local, Docker) at https://127.0.0.1:"), (
            first + (server.stderr.read() if server.poll() is not None else "")
        )
        url = first.rsplit(" ", 1)[1]
        banner = "".join(server.stdout.readline() for _ in range(7))
        certificate = state_dir / "endpoint-cert.pem"
        assert f"certificate: {certificate}" in banner
        assert f"SSL_CERT_FILE={certificate} REQUESTS_CA_BUNDLE={certificate}" in banner
        environ = {**os.environ, "REQUESTS_CA_BUNDLE": str(certificate)}
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, url],
            cwd=REPO, env=environ, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert (child.returncode, child.stdout.strip()) == (0, "0"), child.stderr
        # The async client (aiohttp) trusts what SSL_CERT_FILE names, with Shared Key.
        account, key = _banner_value(banner, "account"), _banner_value(banner, "key")
        environ = {**os.environ, "SSL_CERT_FILE": str(certificate)}
        child = subprocess.run(
            [sys.executable, "-c", _ASYNC_CHILD, url, account, key],
            cwd=REPO, env=environ, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert (child.returncode, child.stdout.strip()) == (0, "0"), child.stderr
        # The sample's command as the banner prints it runs in a shell that trusts nothing.
        (command,) = [
            line.strip()
            for line in (server.stdout.readline() for _ in range(2))
            if "python -m jobprep_release" in line
        ]
        trust = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
        untrusting = {k: v for k, v in _without_batch_variables().items() if k not in trust}
        sample = subprocess.run(
            ["bash", "-c", command.replace("python -m", f"{sys.executable} -m", 1) + " "
             f"--pool-id {ids.pool} --job-id {ids.job} --nodes 1 --tasks 1 "
             "--yes"],
            cwd=REPO, env=untrusting, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert sample.returncode == 0, sample.stderr
        # The endpoint deletes the pool after answering: it must live until that is done.
        deadline = time.monotonic() + 60
        while labelled(docker_client, ids.pool) != (0, 0) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr


def _token(**claims: Any) -> str:
    now = int(time.time())
    base = {
        "aud": "https://batch.core.windows.net/",
        "iss": f"https://sts.windows.net/{TENANT}/",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    present = {name: value for name, value in {**base, **claims}.items() if value is not None}
    return f"{_part({'alg': 'RS256'})}.{_part(present)}.c2lnbmF0dXJl"


# Each case makes its token when it runs: tokens made at collection would expire (10 minutes)
# before a long run reaches them.
@pytest.mark.parametrize(
    ("make_token", "detail"),
    [
        (lambda: "not-a-token", "The access token is not a JSON Web Token."),
        (lambda: "a.b.c", "The access token is not a JSON Web Token."),
        (lambda: _token(nbf=None), "The access token has no nbf, exp or iat claim."),
        (lambda: _token(iat=None), "The access token has no nbf, exp or iat claim."),
        (
            lambda: _token(nbf=int(time.time()) + 3600),
            "Lifetime validation failed. The token is not yet",
        ),
        (
            lambda: _token(exp=int(time.time()) - 1),
            "Lifetime validation failed. The token is expired.",
        ),
        (lambda: _token(iss="https://example.com/tenant/"), "Invalid token issuer."),
        (lambda: _token(aud="https://management.azure.com/"), "Invalid token audience."),
        (lambda: _token(aud="https://batch.core.windows.net//"), "Invalid token audience."),
    ],
    ids=[
        "not-jwt",
        "three-parts",
        "no-nbf",
        "no-iat",
        "not-yet",
        "expired",
        "issuer",
        "audience",
        "audience-slashes",
    ],
)
def test_tokens_are_checked_as_azurite_basic_oauth_checks_them(
    make_token: Callable[[], str], detail: str
) -> None:
    with pytest.raises(RestError) as refused:
        check_token(make_token(), datetime.now(UTC))
    assert (refused.value.status, refused.value.code) == (401, "InvalidAuthenticationInfo")
    assert detail in dict(refused.value.values)["AuthenticationErrorDetail"]
    assert 'error="invalid_token"' in refused.value.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "audience",
    ["https://batch.core.windows.net/", "https://batch.core.windows.net"],
)
def test_the_batch_audience_with_or_without_the_slash(audience: str) -> None:
    check_token(_token(aud=audience), datetime.now(UTC))
    check_token(
        _token(aud=audience, iss=f"https://login.microsoftonline.com/{TENANT}/v2.0"),
        datetime.now(UTC),
    )

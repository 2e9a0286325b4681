"""A local Azure Batch endpoint: the Batch data-plane REST API (api-version 2025-06-01) over any
service implementing `interface.EndpointService` (the Batch core on Docker, or on the fake
executor).

Any Batch client (azure-batch, the az CLI, plain HTTP) signs in with the endpoint's account name
and Shared Key (or, over HTTPS, a Microsoft Entra ID token) and drives pools, nodes, jobs, tasks
and files that are containers on the local engine; the service's scheduler runs inside the
endpoint, so work goes on between requests.

Modules: `server` (running it), `app` (routes and per-request checks), `auth` (Shared Key),
`pools`/`jobs`/`tasks`/`files` (routes), `specs` (request bodies to specs) and `render` (views to
JSON), both through the shared schema (`jobprep_release.backends.schema`), `wire` (times, small
bodies), `odata` (``$filter``, ``$select``, paging), `interface` (what the endpoint needs of a
service), `errors`, `unsupported`, `context`, `replies`, `conditions` (If-Match and the other
conditional headers), `tls` (the HTTPS certificate of ``serve --https``); `faults` (injected
faults and a request log, for testing clients).
"""

from __future__ import annotations

from jobprep_release.backends.docker.rest.server import (
    DEFAULT_ACCOUNT,
    DEFAULT_PORT,
    EndpointSettings,
    RunningEndpoint,
    new_key,
    running_endpoint,
)

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_PORT",
    "EndpointSettings",
    "RunningEndpoint",
    "new_key",
    "running_endpoint",
]

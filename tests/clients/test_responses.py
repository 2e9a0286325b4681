"""Answers as the service writes them: ``odata.metadata``, content types, error texts and
values, file headers; compared with Microsoft's recordings of the real service where they are
beside the repository (``../shared/reference/recordings``; those checks skip otherwise)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from jobprep_release.backends.docker.core import FakeOutcome, FakeStart
from tests.azure.emulator import Emulator
from tests.azure.support import ACCOUNT, KEY
from tests.endpoint.support import Answer, call

RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "recordings"
needs_recordings = pytest.mark.skipif(
    not RECORDINGS.is_dir(),
    reason=f"compares with Microsoft's recordings of the real service, not here ({RECORDINGS})",
)
JSON_TYPE = "application/json; odata=minimalmetadata"
POOL = {
    "id": "rpool",
    "vmSize": "standard_d1_v2",
    "targetDedicatedNodes": 1,
    "virtualMachineConfiguration": {
        "imageReference": {"publisher": "canonical", "offer": "ubuntu", "sku": "24_04"},
        "nodeAgentSKUId": "batch.node.ubuntu 24.04",
    },
}
# Headers of a transport or a front end, not of the Batch service's answer itself.
TRANSPORT = {
    "date",
    "server",
    "strict-transport-security",
    "x-content-type-options",
    "transfer-encoding",
    "content-length",
}


def recorded(name: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads((RECORDINGS / name).read_text())["Entries"]
    return entries


def kind(uri: str) -> str:
    """A request path with ids replaced (``/pools/*/nodes``), for matching across accounts."""
    parts = urlsplit(uri).path.strip("/").split("/")
    collections = {"pools", "nodes", "jobs", "tasks", "files"}
    shown = [part if part in collections or "status" in part else "*" for part in parts]
    if "files" in parts:  # a file path may hold several parts
        shown = [*shown[: parts.index("files") + 1], *(["*"] if parts[-1] != "files" else [])]
    return "/" + "/".join(shown)


def hello(start: FakeStart) -> FakeOutcome:
    return FakeOutcome(stdout=b"hello world\n")


@pytest.fixture
async def batch(emulator: Emulator) -> Any:
    emulator.fake.outcome = hello
    async with BatchClient(emulator.url, AzureNamedKeyCredential(ACCOUNT, KEY)) as client:
        assert (await call(client, "POST", "/pools", body=POOL)).status == 201
        job = {
            "id": "rjob",
            "poolInfo": {"poolId": "rpool"},
            "jobPreparationTask": {"commandLine": "/bin/true"},
        }
        assert (await call(client, "POST", "/jobs", body=job)).status == 201
        task = {"id": "rtask", "commandLine": "/bin/echo hello world"}
        assert (await call(client, "POST", "/jobs/rjob/tasks", body=task)).status == 201
        await emulator.settle()
        yield client


async def node_id(batch: BatchClient) -> str:
    nodes = (await call(batch, "GET", "/pools/rpool/nodes")).json()["value"]
    return str(nodes[0]["id"])


async def answers_by_kind(batch: BatchClient, emulator: Emulator) -> dict[str, Answer]:
    node = await node_id(batch)
    paths = [
        "/pools",
        "/pools/rpool",
        "/pools/rpool/nodes",
        f"/pools/rpool/nodes/{node}",
        f"/pools/rpool/nodes/{node}/files",
        "/jobs",
        "/jobs/rjob",
        "/jobs/rjob/tasks",
        "/jobs/rjob/tasks/rtask",
        "/jobs/rjob/tasks/rtask/files",
        "/jobs/rjob/jobpreparationandreleasetaskstatus",
    ]
    return {kind(emulator.url + path): await call(batch, "GET", path) for path in paths}


async def test_json_bodies_name_their_entity_set(batch: BatchClient, emulator: Emulator) -> None:
    for where, answer in (await answers_by_kind(batch, emulator)).items():
        assert answer.status == 200, (where, answer.body)
        assert answer.headers["Content-Type"] == JSON_TYPE
        body = answer.json()
        assert next(iter(body)) == "odata.metadata", where
        assert body["odata.metadata"].startswith(emulator.url + "/$metadata#"), where


@needs_recordings
async def test_entity_sets_are_the_recorded_ones(batch: BatchClient, emulator: Emulator) -> None:
    expected: dict[str, str] = {}
    for name in ("files.json", "jobs.json", "compute_nodes.json", "create_pools.json"):
        for entry in recorded(name):
            body = entry.get("ResponseBody")
            if entry["RequestMethod"] != "GET" or entry["StatusCode"] != 200:
                continue
            if isinstance(body, dict) and "odata.metadata" in body:
                fragment = body["odata.metadata"].partition("$metadata")[2]
                expected.setdefault(kind(entry["RequestUri"]), fragment)
    ours = await answers_by_kind(batch, emulator)
    compared = set(expected) & set(ours)
    assert len(compared) >= 8, sorted(expected)
    for where in sorted(compared):
        fragment = ours[where].json()["odata.metadata"].partition("$metadata")[2]
        assert fragment == expected[where], where


async def test_errors_in_the_services_words(batch: BatchClient) -> None:
    missing = await call(batch, "GET", "/pools/nosuchpool")
    assert (missing.status, missing.headers["Content-Type"]) == (404, JSON_TYPE)
    error = missing.json()
    assert error["code"] == "PoolNotFound"
    assert re.fullmatch(
        r"The specified pool does not exist\.\nRequestId:[0-9a-f-]{36}\nTime:"
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z",
        error["message"]["value"],
    )
    again = await call(batch, "POST", "/jobs", body={"id": "rjob", "poolInfo": {"poolId": "x"}})
    assert again.status == 409
    assert again.json()["message"]["value"].startswith("The specified job already exists.\n")
    bad = await call(batch, "POST", "/pools", body={**POOL, "targetDedicatedNodes": "two"})
    assert bad.status == 400
    document = bad.json()
    assert document["message"]["value"].startswith(
        "The value provided for one of the properties in the request body is invalid.\n"
    )
    values = {item["key"]: item["value"] for item in document["values"]}
    assert values["PropertyName"] == "targetDedicatedNodes"
    too_many = await call(
        batch, "POST", "/pools", body={**POOL, "id": "p2", "targetDedicatedNodes": -1}
    )
    assert too_many.json()["code"] == "InvalidPropertyValue"
    values = {item["key"]: item["value"] for item in too_many.json()["values"]}
    assert "-1" in values["Reason"], "the endpoint's own sentence is kept as the reason"


@needs_recordings
async def test_errors_are_shaped_as_recorded(batch: BatchClient) -> None:
    by_code = {
        entry["ResponseBody"]["code"]: entry
        for entry in recorded("exception_policy.json")
        if entry["StatusCode"] >= 400
    }
    ours = {
        "PoolNotFound": await call(batch, "GET", "/pools/nosuchpool"),
        "JobExists": await call(
            batch, "POST", "/jobs", body={"id": "rjob", "poolInfo": {"poolId": "rpool"}}
        ),
    }
    assert set(by_code) == set(ours)
    for code, answer in ours.items():
        entry = by_code[code]
        assert answer.status == entry["StatusCode"]
        assert answer.headers["Content-Type"] == entry["ResponseHeaders"]["Content-Type"]
        body, theirs = answer.json(), entry["ResponseBody"]
        assert set(body) == set(theirs), code
        assert (
            body["odata.metadata"].partition("$metadata")[2]
            == theirs["odata.metadata"].partition("$metadata")[2]
        )
        first = theirs["message"]["value"].splitlines()[0]
        assert body["message"]["value"].splitlines()[0] == first
        assert set(body["message"]) == set(theirs["message"])


async def test_files_typed_by_name_with_the_services_headers(
    batch: BatchClient, emulator: Emulator
) -> None:
    url = f"{emulator.url}/jobs/rjob/tasks/rtask/files/stdout.txt"
    for method in ("GET", "HEAD"):
        answer = await call(batch, method, "/jobs/rjob/tasks/rtask/files/stdout.txt")
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "text/plain"
        assert answer.headers["ocp-batch-file-isdirectory"] == "False"
        assert answer.headers["ocp-batch-file-url"] == quote(url, safe="")
        assert answer.headers["ocp-creation-time"].endswith(" GMT")
    assert (await call(batch, "GET", "/jobs/rjob/tasks/rtask/files/stdout.txt")).body == (
        b"hello world\n"
    )
    listing = (await call(batch, "GET", "/jobs/rjob/tasks/rtask/files")).json()["value"]
    stdout = next(item for item in listing if item["name"] == "stdout.txt")
    assert stdout["properties"]["contentType"] == "text/plain"
    assert "creationTime" in stdout["properties"]


@needs_recordings
async def test_file_answers_carry_the_recorded_headers(
    batch: BatchClient, emulator: Emulator
) -> None:
    node = await node_id(batch)
    ours = {
        "/jobs/*/tasks/*/files/*": "/jobs/rjob/tasks/rtask/files/stdout.txt",
        "/pools/*/nodes/*/files/*": f"/pools/rpool/nodes/{node}/files/"
        "workitems/rjob/job-1/rtask/stdout.txt",
    }
    checked = 0
    for entry in recorded("files.json"):
        where = kind(entry["RequestUri"])
        if entry["RequestMethod"] not in ("GET", "HEAD") or where not in ours:
            continue
        answer = await call(batch, entry["RequestMethod"], ours[where])
        theirs = {name.lower() for name in entry["ResponseHeaders"]} - TRANSPORT
        assert theirs <= {name.lower() for name in answer.headers}, (where, theirs)
        assert answer.headers["Content-Type"] == entry["ResponseHeaders"]["Content-Type"]
        recorded_url = entry["ResponseHeaders"]["ocp-batch-file-url"]
        assert "%2F" in recorded_url and "%2F" in answer.headers["ocp-batch-file-url"]
        checked += 1
    assert checked == 4


async def test_a_malformed_azure_image_id_is_refused_as_the_service_does(
    emulator: Emulator,
) -> None:
    """The service's recorded answer: 400 InvalidPropertyValue naming virtualMachineImageId
    (``/gallery/`` where ``/galleries/`` belongs); a well-formed gallery image id is taken."""
    prefix = "/subscriptions/0/resourceGroups/test/providers/Microsoft.Compute"
    async with BatchClient(emulator.url, AzureNamedKeyCredential(ACCOUNT, KEY)) as batch:
        for image_id, status in (
            (f"{prefix}/gallery/FakeGallery/images/FakeImage/versions/1", 400),
            (f"{prefix}/galleries/FakeGallery/images/FakeImage/versions/1", 201),
        ):
            reference = {"virtualMachineImageId": image_id}
            configuration = {
                "imageReference": reference,
                "nodeAgentSKUId": "batch.node.ubuntu 24.04",
            }
            body = {**POOL, "id": f"img{status}", "virtualMachineConfiguration": configuration}
            answer = await call(batch, "POST", "/pools", body=body)
            assert answer.status == status, answer.body
            if status == 400:
                assert answer.json()["code"] == "InvalidPropertyValue"
                names = [v["value"] for v in answer.json()["values"] if v["key"] == "PropertyName"]
                assert names[0].endswith("virtualMachineImageId")

"""The article's other two uses, end to end on a real engine and a real Azurite: (a) common data
staged by the job preparation task from a blob container, read by every task from
``$AZ_BATCH_JOB_PREP_WORKING_DIR``; (b) each node's job log uploaded by its release task before
it deletes it, the uploaded logs listed at the end. On the docker backend (the CLI starting
Azurite itself, and in process) and on the azure backend through the local endpoint."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import pytest

from jobprep_release import azurite, storage_use
from jobprep_release.backends.base import BatchBackend
from jobprep_release.backends.docker import DockerBackend, DockerSettings
from jobprep_release.backends.docker.backend import node_reachable_host
from jobprep_release.console import Console
from jobprep_release.flow import SampleOutcome, run_sample
from jobprep_release.options import Answer, SampleOptions
from tests.conftest import Ids, run_cli
from tests.docker.test_output import SCHEMA
from tests.docker.test_sample import by_node_in_run_order, compare, expected_transcript
from tests.endpoint.harness import azure_on_endpoint
from tests.storage import Blobs

pytestmark = pytest.mark.storage

STAGE, LOGS = "test-common", "test-logs"


def with_storage_lines(
    lines: list[str], ids: Ids, staged: int, logs: dict[str, str], container: str = LOGS
) -> list[str]:
    """The sample's transcript with the use cases' lines: the staging line after the job's
    creation, the uploaded logs (each node's file, by size) after the exit codes."""
    at = lines.index(f"Job {ids.job} not found, creating...") + 1
    noun = "blob" if staged == 1 else "blobs"
    staging = f"The job preparation task stages {staged} {noun} from container {STAGE} on each node"
    lines = [*lines[:at], staging, *lines[at:]]
    end = lines.index("Delete job? [yes] no") - 1
    uploaded = ["", f"Job logs uploaded to container {container} by the release tasks:"]
    uploaded += [
        f"  {ids.job}/{node}.txt ({len(text.encode())} bytes)"
        for node, text in sorted(logs.items())
    ]
    return [*lines[:end], *uploaded, *lines[end:]]


def test_cli_with_azurite_stages_and_uploads(ids: Ids, state_dir: Path) -> None:
    """`--azurite`: the app starts the emulator where nodes reach it and stops it afterwards."""
    flags = ["--stage-container", STAGE, "--logs-container", LOGS, "--azurite"]
    result = run_cli(
        ["--pool-id", ids.pool, "--job-id", ids.job, *flags, "--yes", "--json"],
        state_dir=state_dir,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    files = {item["nodeId"]: item["text"] for item in report["nodeFiles"] if item["text"]}
    # A container made by the run holds the one sample blob the app puts there.
    assert report["storage"]["staged"] == {"container": STAGE, "blobs": [storage_use.SAMPLE_BLOB]}
    uploaded = {blob["name"]: blob["size"] for blob in report["storage"]["uploaded"]["blobs"]}
    assert uploaded == {f"{ids.job}/{node}.txt": len(text.encode()) for node, text in files.items()}
    assert all(task["exitCode"] == 0 for task in report["tasks"])
    transcript = result.stderr
    assert "The job preparation task stages 1 blob from container test-common" in transcript
    assert f"Job logs uploaded to container {LOGS} by the release tasks:" in transcript


@pytest.fixture
async def bridge_azurite() -> AsyncIterator[azurite.Azurite]:
    """Azurite where the node containers reach it (the engine's bridge gateway)."""
    async with azurite.serving(await node_reachable_host()) as started:
        yield started


async def run_with_storage(
    backend: BatchBackend, ids: Ids, emulator: azurite.Azurite
) -> tuple[SampleOutcome, list[str], dict[str, bytes]]:
    """The sample with both use cases on `backend`: outcome, transcript, uploaded blobs."""
    blobs = Blobs(emulator)
    await blobs.container({"a/one.txt": b"1\n", "two.txt": b"2\n"})
    staged_name = blobs.made[-1]
    await blobs.container()
    logs_name = blobs.made[-1]
    use = storage_use.StorageUse(emulator.connection_string, staged_name, logs_name)
    options = SampleOptions(
        pool_id=ids.pool, job_id=ids.job, report=True, stage_container=STAGE, logs_container=LOGS
    )
    out = io.StringIO()
    try:
        prepared = await storage_use.prepare(use)
        outcome = await run_sample(backend, Console(Answer.NO, out=out), options, prepared)
        uploaded = await blobs.read(logs_name)
    finally:
        await blobs.remove_all()
    transcript = out.getvalue().replace(staged_name, STAGE).replace(logs_name, LOGS)
    return outcome, transcript.splitlines(), uploaded


async def check_run(backend: BatchBackend, ids: Ids, emulator: azurite.Azurite) -> None:
    outcome, transcript, uploaded = await run_with_storage(backend, ids, emulator)
    assert outcome.succeeded, transcript
    ran = by_node_in_run_order(outcome.tasks)
    placed = {node.id: ran.get(node.id, []) for node in outcome.nodes}  # the service's order
    files = {node: text for node, text in outcome.node_files.items() if text is not None}
    # Each release task uploaded exactly the file the node showed, under <job>/<node>.txt.
    assert uploaded == {f"{ids.job}/{node}.txt": text.encode() for node, text in files.items()}
    assert outcome.staged == ["a/one.txt", "two.txt"]
    lines = expected_transcript(ids, placed, "no")
    compare(transcript, with_storage_lines(lines, ids, 2, files))
    # Kept by the run (answered no): deleted here, waiting, before the backend closes.
    await backend.delete_job(ids.job)
    await backend.delete_pool(ids.pool)


async def test_docker_backend_stages_and_uploads(
    ids: Ids, state_dir: Path, bridge_azurite: azurite.Azurite
) -> None:
    async with DockerBackend(DockerSettings(state_dir=state_dir)) as backend:
        await check_run(backend, ids, bridge_azurite)


async def test_azure_backend_through_the_endpoint_stages_and_uploads(
    ids: Ids, state_dir: Path, bridge_azurite: azurite.Azurite
) -> None:
    async with azure_on_endpoint(state_dir) as backend:
        await check_run(backend, ids, bridge_azurite)


async def test_tasks_fail_when_nothing_was_staged(
    ids: Ids, state_dir: Path, bridge_azurite: azurite.Azurite
) -> None:
    """An existing, empty staging container stages nothing: every task says so and fails."""
    blobs = Blobs(bridge_azurite)
    empty = await blobs.container()
    use = storage_use.StorageUse(bridge_azurite.connection_string, stage_container=empty)
    options = SampleOptions(
        pool_id=ids.pool, job_id=ids.job, node_count=1, task_count=2, stage_container=empty
    )
    try:
        prepared = await storage_use.prepare(use)
        assert prepared.staged == []
        async with DockerBackend(DockerSettings(state_dir=state_dir)) as backend:
            out = io.StringIO()
            outcome = await run_sample(backend, Console(Answer.NO, out=out), options, prepared)
            assert f"stages 0 blobs from container {empty}" in out.getvalue()
            assert sorted(outcome.failed_tasks) == ["task001", "task002"]
            stderr = await backend.read_node_file(
                ids.pool,
                outcome.tasks[0].node_id or "",
                f"workitems/{ids.job}/job-1/task001/stderr.txt",
            )
            assert b"no staged data" in stderr
            await backend.delete_job(ids.job)
            await backend.delete_pool(ids.pool)
    finally:
        await blobs.remove_all()

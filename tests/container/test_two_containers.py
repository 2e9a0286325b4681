"""Two app containers on one engine at once, both using the host's Docker socket (issue 13.3).

Each with its own state directory (the image's, inside each container): two accounts, run side
by side. With one state directory mounted into both (a named volume): one engine's state, held
by one process at a time; the holder's Batch service listens on its own container's loopback,
which the other container cannot reach, so the second run waits for the state and says why in
one line, then runs. Each run exits 0 with the sample's transcript (checked against
../shared/reference/sample-flow.md where it is present: both nodes' files with their task ids,
prep/release exit codes 0), and nothing labelled is left.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import time
import uuid
from pathlib import Path

import docker

from tests.conftest import Ids, gone, remove_labelled
from tests.container.conftest import Image, docker_cli, image_command
from tests.docker.test_interrupts import App
from tests.docker.test_many_runs import ATTACHED, WAITING, reference_transcript

STATE_DIR = "/home/jobprep/.local/state/jobprep_release"
"""The app's state directory in the image ($XDG_STATE_HOME/jobprep_release)."""
TEST_LABEL = "jobprep_release.test"
"""On the app containers and the state volume the tests make: their pool id."""
PROMPT = "Delete job? [yes] no"
ELSEWHERE = "in another network namespace"
NODE = re.compile(
    r"^Contents of shared/job_prep_and_release\.txt on (tvm-\d{10}_\d+-\d{8}t\d{6}z):$"
)
TASKS = [f"task{n:03d}" for n in range(1, 9)]  # the sample's eight task ids


def _unique() -> Ids:
    suffix = uuid.uuid4().hex[:8]
    return Ids(pool=f"TestPool-{suffix}", job=f"TestJob-{suffix}")


def _app(image: Image, ids: Ids, *extra: str, volume: str | None = None) -> App:
    """The sample in an app container (stdin open, so that a run without `--yes` waits at the
    first delete prompt), labelled with its pool id."""
    options: tuple[str, ...] = ("-i", "--label", f"{TEST_LABEL}={ids.pool}")
    if volume is not None:
        options += ("-v", f"{volume}:{STATE_DIR}")
    args = ("--pool-id", ids.pool, "--job-id", ids.job, "--no-progress", *extra)
    return App(ids, Path(), command=image_command(image, *args, options=options))


def _answer_yes(app: App) -> None:
    """Both delete prompts answered yes and ENTER pressed, as a user types them."""
    assert app.process.stdin is not None
    app.process.stdin.write("yes\nyes\n\n")
    app.process.stdin.close()


def _tidy(client: docker.DockerClient, *runs: Ids) -> None:
    for ids in runs:
        selector = {"label": f"{TEST_LABEL}={ids.pool}"}
        for container in client.containers.list(all=True, filters=selector):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True)
        remove_labelled(client, ids.pool)


def check_transcript(lines: list[str], ids: Ids, *, echoed: bool) -> None:
    """The sample's transcript on its two-node pool: both nodes ran tasks, every task ran once
    on one of them, each node's file lists its tasks in the order they ran (not known here:
    read from the file), and, where the reference is present, every line is its wording."""
    lines = [line.rstrip("\n") for line in lines]
    files = [
        (match[1], [task.strip() for task in itertools.takewhile(bool, lines[n + 3 :])])
        for n, line in enumerate(lines)
        if (match := NODE.fullmatch(line))
    ]
    assert len(files) == 2, lines
    assert sorted(task for _, tasks in files for task in tasks) == TASKS, lines
    assert lines.count("  Prep task exit code:    0") == 2, lines
    assert lines.count("  Release task exit code: 0") == 2, lines
    expected = reference_transcript(ids.pool, ids.job, files, echoed=echoed)
    if expected is None:
        print("../shared/reference/sample-flow.md is absent: transcript checked by its lines")
        assert lines[0] == f"Attempting to create pool: {ids.pool}"
        assert lines[-1] == "Sample complete, hit ENTER to exit..."
        return
    assert len(lines) == len(expected), "\n".join(lines)
    for got, wanted in zip(lines, expected, strict=True):
        if wanted == "<dots>":
            assert re.fullmatch(r"\.*", got), got
        else:
            assert got == wanted, "\n".join(lines)


def _clean_stderr(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert not [line for line in stderr.splitlines() if line.startswith("error:")], stderr
    assert ATTACHED.findall(stderr) == [], stderr


def test_two_app_containers_with_their_own_state_run_at_the_same_time(
    image: Image, docker_client: docker.DockerClient
) -> None:
    """The first holds its state and its pool (waiting at its first prompt) while the second
    runs from start to end: two accounts on one engine, neither waiting for the other."""
    first, second = _unique(), _unique()
    try:
        with _app(image, first) as holding:
            holding.read_until(PROMPT, limit=300)
            ran = docker_cli(
                *image_command(
                    image,
                    *("--pool-id", second.pool, "--job-id", second.job, "--no-progress", "--yes"),
                    options=("--label", f"{TEST_LABEL}={second.pool}"),
                )[1:],
                timeout=600,
            )
            assert holding.process.poll() is None, "the first run ended: nothing overlapped"
            _answer_yes(holding)
            status, stderr = holding.finish()
        assert ran.returncode == 0, ran.stdout + ran.stderr
        _clean_stderr(ran.stderr)
        assert WAITING not in ran.stderr, ran.stderr
        check_transcript(ran.stdout.splitlines(), second, echoed=True)
        assert status == 0, stderr
        _clean_stderr(stderr)
        check_transcript(holding.stdout_lines, first, echoed=False)
        for ids in (first, second):
            assert gone(docker_client, ids.pool), f"{ids.pool} left behind"
    finally:
        _tidy(docker_client, first, second)


def test_two_app_containers_with_one_state_directory_wait_for_each_other_saying_why(
    image: Image, docker_client: docker.DockerClient
) -> None:
    """One named volume at both containers' state directory: the second run finds the state
    held by the first, whose service it cannot reach (the first's loopback), and waits, one
    line saying why, never attaching, failing or touching the state; then runs to the end."""
    first, second = _unique(), _unique()
    volume = docker_client.volumes.create(
        name=f"jobprep-test-state-{first.pool.lower()}", labels={TEST_LABEL: first.pool}
    )
    try:
        with _app(image, first, volume=volume.name) as holding:
            holding.read_until(PROMPT, limit=300)
            (container,) = docker_client.containers.list(
                filters={"label": f"{TEST_LABEL}={first.pool}"}
            )
            holder_host = container.attrs["Config"]["Hostname"]
            with _app(image, second, "--yes", volume=volume.name) as waiting:
                waiting.read_until(ELSEWHERE, limit=120, stderr=True, anywhere=True)
                time.sleep(2)  # still waiting, not failed
                assert waiting.process.poll() is None, "the second run did not wait"
                assert holding.process.poll() is None
                _answer_yes(holding)
                status, stderr = holding.finish()
                waited_status, waited_stderr = waiting.finish()
        assert status == 0, stderr
        _clean_stderr(stderr)
        check_transcript(holding.stdout_lines, first, echoed=False)
        assert waited_status == 0, waited_stderr
        _clean_stderr(waited_stderr)
        said = [line for line in waited_stderr.splitlines() if ELSEWHERE in line]
        assert len(said) == 1, waited_stderr
        assert WAITING in said[0] and f"on host {holder_host}," in said[0], said[0]
        check_transcript(waiting.stdout_lines, second, echoed=True)
        for ids in (first, second):
            assert gone(docker_client, ids.pool), f"{ids.pool} left behind"
        # The state both used reads back whole and empty (both deleted what they made), and
        # no service file is left for a later run to trust.
        engine_id = str(docker_client.info()["ID"])
        probe = docker_cli(
            *image_command(
                image,
                "-c",
                "import sys; from pathlib import Path; "
                "from jobprep_release.backends.docker.core.store import StateStore; "
                "from jobprep_release.backends.docker.sharing import service_path; "
                "store = StateStore(Path(sys.argv[1]), sys.argv[2]); state = store.load_now(); "
                "print(store.path.exists(), len(state.pools), len(state.jobs), "
                "service_path(store).exists())",
                STATE_DIR,
                engine_id,
                options=("-v", f"{volume.name}:{STATE_DIR}"),
                entrypoint="python",
            )[1:]
        )
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.split() == ["True", "0", "0", "False"], probe.stdout
    finally:
        _tidy(docker_client, first, second)
        with contextlib.suppress(docker.errors.NotFound):
            volume.remove(force=True)

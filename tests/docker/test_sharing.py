"""One service per engine, on the real engine: `serve` with an azure-batch 15 client beside CLI
runs that attach to it, a run naming a pool another run kept, a holder interrupted while a run is
attached to it, two state directories on one engine; and, without the engine, the service file
and the holder's wait for attached runs (`backends.docker.sharing`)."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import anyio.to_thread
import docker
from azure.batch import BatchClient, models
from azure.core.credentials import AzureNamedKeyCredential

from jobprep_release.backends.docker.core.store import StateStore
from jobprep_release.backends.docker.sharing import (
    AttachLease,
    Publication,
    claim,
    read_service,
    service_path,
    state_identity,
)
from tests.conftest import REPO, Ids, gone, remove_labelled, run_cli
from tests.docker.test_interrupts import App
from tests.docker.test_many_runs import ATTACHED, _transcript_is_the_samples
from tests.endpoint.harness import ACCOUNT, KEY, serve_process
from tests.endpoint.support import linux_pool
from tests.endpoint.test_sample import URL_LINE

SMALL = ("--nodes", "1", "--tasks", "2", "--no-progress")


def _sdk_hello_world(url: str, pool: str, job: str) -> bytes:
    """azure-batch 15 (sync) as a user's code: a pool, a job, a task; its stdout; all deleted."""
    with BatchClient(url, AzureNamedKeyCredential(ACCOUNT, KEY)) as client:
        client.create_pool(linux_pool(pool))
        client.create_job(
            models.BatchJobCreateOptions(id=job, pool_info=models.BatchPoolInfo(pool_id=pool))
        )
        client.create_task(
            job, models.BatchTaskCreateOptions(id="t1", command_line="echo hello from the sdk")
        )
        deadline = time.monotonic() + 180
        while client.get_task(job, "t1").state != models.BatchTaskState.COMPLETED:
            assert time.monotonic() < deadline, "the SDK's task never completed"
            time.sleep(0.5)
        output = b"".join(client.download_task_file(job, "t1", "stdout.txt"))
        client.begin_delete_job(job, polling_interval=1).result()
        client.begin_delete_pool(pool, polling_interval=1).result()
    return output


def test_serve_with_an_sdk_client_beside_cli_runs_that_attach_to_it(
    state_dir: Path, docker_client: docker.DockerClient
) -> None:
    suffix = uuid.uuid4().hex[:8]
    kept, deleted, sdk = (f"TestPool-{suffix}-{name}" for name in ("kept", "deleted", "sdk"))
    server = serve_process(state_dir, REPO)
    try:
        assert server.stdout is not None
        match = URL_LINE.fullmatch(server.stdout.readline().strip())
        assert match, server.stderr.read() if server.stderr and server.poll() is not None else ""
        url = match[1]
        # Published beside the lock, readable by its owner only (it holds the account key).
        store = StateStore(state_dir, str(docker_client.info()["ID"]))
        published = read_service(store)
        assert published is not None and published.pid == server.pid
        assert (published.url, published.account, published.key) == (url, ACCOUNT, KEY)
        assert stat.S_IMODE(service_path(store).stat().st_mode) == 0o600

        with ThreadPoolExecutor(3) as runner:
            first = runner.submit(
                run_cli,
                ["--pool-id", kept, "--job-id", f"TestJob-{suffix}-a", "--keep", *SMALL],
                state_dir=state_dir,
                timeout=300,
            )
            second = runner.submit(
                run_cli,
                ["--pool-id", deleted, "--job-id", f"TestJob-{suffix}-b", "--yes", *SMALL],
                state_dir=state_dir,
                timeout=300,
            )
            client = runner.submit(_sdk_hello_world, url, sdk, f"TestJob-{suffix}-sdk")
            assert client.result() == b"hello from the sdk\n"
            for run in (first.result(), second.result()):
                assert run.returncode == 0, run.stderr
                assert "Traceback" not in run.stderr
                assert ATTACHED.findall(run.stderr) == [str(server.pid)], run.stderr
                assert KEY not in run.stdout + run.stderr
        _transcript_is_the_samples(second.result().stdout, deleted, f"TestJob-{suffix}-b")

        # A later run naming the kept pool shares it (Batch lets many jobs use one pool).
        third = run_cli(
            ["--pool-id", kept, "--job-id", f"TestJob-{suffix}-c", "--yes", *SMALL],
            state_dir=state_dir,
            timeout=300,
        )
        assert third.returncode == 0, third.stderr
        assert ATTACHED.findall(third.stderr) == [str(server.pid)], third.stderr
        assert "The pool already existed when we tried to create it" in third.stdout
        assert f"Job TestJob-{suffix}-c not found, creating..." in third.stdout
        with BatchClient(url, AzureNamedKeyCredential(ACCOUNT, KEY)) as batch:
            batch.begin_delete_job(f"TestJob-{suffix}-a", polling_interval=1).result()
        for pool in (kept, deleted, sdk):
            assert gone(docker_client, pool), f"{pool} left behind"
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
        for pool in (kept, deleted, sdk):
            remove_labelled(docker_client, pool)
    assert server.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert not service_path(store).exists(), "serve left its service file"


def test_a_run_attached_to_a_holder_that_is_interrupted_takes_the_state_over(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    other = Ids(pool=f"{ids.pool}-b", job=f"{ids.job}-b")
    one = ("--nodes", "1", "--tasks", "1", "--no-progress", "--task-command")
    try:
        with App(ids, state_dir, "--keep", *one, "sleep 60") as holder:
            holder.read_until("Submitting tasks")
            with App(other, state_dir, "--yes", *one, "sleep 15") as attached:
                attached.read_until("The docker backend's state is held by pid", stderr=True)
                attached.read_until("Submitting tasks")
                holder.process.send_signal(signal.SIGINT)
                held_status, held_stderr = holder.finish()
                # The holder gone, the attached run says so, holds the state itself and
                # goes on where it was: its task completes, its job and pool are deleted.
                attached.read_until(
                    f"The process serving the docker backend's state (pid {holder.process.pid}) "
                    "ended: this run goes on without it",
                    stderr=True,
                )
                attached.read_until("All tasks completed.")
                status, stderr = attached.finish()
        assert held_status == 130, held_stderr
        # Interrupted, the holder does not wait for the attached run.
        assert "Other runs are using" not in held_stderr
        assert status == 0, stderr
        assert "Traceback" not in stderr
        assert not [line for line in stderr.splitlines() if line.startswith("error:")], stderr
        assert gone(docker_client, other.pool), "the run's --yes left its pool"
    finally:
        remove_labelled(docker_client, other.pool)
        remove_labelled(docker_client, ids.pool)  # the holder's --keep


def test_an_interrupted_holder_lets_no_run_attach_while_it_tidies_up(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    """A run started while the holder tidies up after Ctrl-C (deleting its job and pool takes
    a while) must not attach to a service about to go away (it would be stopped with status 3,
    its pool left behind): it waits for the state, then holds it and runs to the end."""
    later = Ids(pool=f"{ids.pool}-b", job=f"{ids.job}-b")
    store = StateStore(state_dir, str(docker_client.info()["ID"]))
    one = ("--yes", "--nodes", "1", "--tasks", "1", "--no-progress", "--task-command", "sleep 60")
    try:
        with App(ids, state_dir, *one) as holder:
            holder.read_until("Submitting tasks")
            assert read_service(store) is not None
            holder.process.send_signal(signal.SIGINT)
            holder.read_until("stopping (SIGINT)", stderr=True)
            withdrawn = read_service(store) is None
            tidying = holder.process.poll() is None
            started = run_cli(
                ["--pool-id", later.pool, "--job-id", later.job, "--yes", *SMALL],
                state_dir=state_dir,
                timeout=300,
            )
            held_status, held_stderr = holder.finish()
        assert tidying, "the holder ended before the check: it proves nothing"
        assert withdrawn, "the interrupted holder still offered its service"
        assert held_status == 130, held_stderr
        assert f"interrupted; deleted job {ids.job} and pool {ids.pool}" in held_stderr
        assert started.returncode == 0, started.stderr
        assert ATTACHED.findall(started.stderr) == [], started.stderr
        assert "Traceback" not in started.stderr
        _transcript_is_the_samples(started.stdout, later.pool, later.job)
        assert gone(docker_client, later.pool), f"{later.pool} left behind"
    finally:
        remove_labelled(docker_client, later.pool)


def test_two_state_directories_on_one_engine_never_adopt_or_remove_each_others_pools(
    ids: Ids, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    """Two app containers sharing the host's socket, each with its own state directory, as two
    processes with two state directories: the same pool id named by both at once."""
    engine_id = str(docker_client.info()["ID"])
    base = ["--pool-id", ids.pool, *SMALL]
    states = (tmp_path / "a", tmp_path / "b")
    try:
        with ThreadPoolExecutor(2) as runner:
            keeps = runner.submit(
                run_cli, [*base, "--job-id", f"{ids.job}-a", "--keep"], state_dir=states[0]
            )
            deletes = runner.submit(
                run_cli, [*base, "--job-id", f"{ids.job}-b", "--yes"], state_dir=states[1]
            )
            kept, deleted = keeps.result(), deletes.result()
        for run, job in ((kept, f"{ids.job}-a"), (deleted, f"{ids.job}-b")):
            assert run.returncode == 0, run.stderr
            # Neither attached to the other nor adopted its pool: each made its own.
            assert ATTACHED.findall(run.stderr) == [], run.stderr
            assert f"Created pool {ids.pool} with 1 dedicated" in run.stdout, run.stdout
            assert f"Job {job} not found, creating..." in run.stdout
        identities = [
            StateStore(state, engine_id).path.with_suffix(".id").read_text().strip()
            for state in states
        ]
        assert identities[0] != identities[1]
        # The first's pool is intact (its --keep), the second's deletion took only its own.
        pool_label = {"label": f"jobprep_release.pool={ids.pool}"}
        left = docker_client.containers.list(all=True, filters=pool_label)
        assert [c.labels["jobprep_release.state"] for c in left] == [identities[0]]
        assert all(c.status == "running" for c in left)
        volumes = docker_client.volumes.list(filters=pool_label)
        assert [v.attrs["Labels"]["jobprep_release.state"] for v in volumes] == [identities[0]]
        # The first's next run finds its own pool (and deletes it), never the other's.
        again = run_cli([*base, "--job-id", f"{ids.job}-c", "--yes"], state_dir=states[0])
        assert again.returncode == 0, again.stderr
        assert "The pool already existed when we tried to create it" in again.stdout
        assert gone(docker_client, ids.pool)
    finally:
        remove_labelled(docker_client, ids.pool)


def test_a_service_file_counts_only_while_its_pid_holds_the_state(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "engine-1")
    assert store.try_acquire()
    try:
        publication = Publication(store)
        written = publication.publish("http://127.0.0.1:1234", "localbatch", "a2V5")
        assert read_service(store) == written
        assert written.pid == os.getpid()
        assert stat.S_IMODE(service_path(store).stat().st_mode) == 0o600
        # Another process holding the lock now (its pid written down): the file is stale.
        lock = tmp_path / "docker-engine-1.lock"
        lock.write_text("pid 1\n")
        assert read_service(store) is None
        # A dead holder's file, the lock naming it: stale too.
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        lock.write_text(f"pid {dead.stdout.strip()}\n")
        raw = json.loads(service_path(store).read_text())
        service_path(store).write_text(json.dumps({**raw, "pid": int(dead.stdout)}))
        assert read_service(store) is None
        publication.withdraw()
        assert service_path(store).exists(), "withdraw removes only its own process's file"
    finally:
        store.release()


def test_a_service_file_says_where_its_holder_runs_and_who_can_reach_it(tmp_path: Path) -> None:
    """A holder in another network namespace (another container) is not reachable on its
    loopback; one in another pid namespace is judged by the lock alone, as its pid means
    nothing here (every container's first process is pid 1)."""
    store = StateStore(tmp_path, "engine-1")
    assert store.try_acquire()
    try:
        written = Publication(store).publish("http://127.0.0.1:1234", "localbatch", "a2V5")
        ours = Path("/proc/self/ns/net").readlink()
        assert written.network.endswith(f" {ours}")
        assert written.processes.endswith(f" {Path('/proc/self/ns/pid').readlink()}")
        assert written.host == os.uname().nodename
        assert written.reachable()
        raw = json.loads(service_path(store).read_text())
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        elsewhere = {**raw, "network": f"{boot} net:[1]", "host": "3f2a1b"}
        service_path(store).write_text(json.dumps(elsewhere))
        found = read_service(store)
        assert found is not None and not found.reachable()
        assert "held by pid" in found.unreachable() and "on host 3f2a1b," in found.unreachable()
        # Another kernel (the same inode numbers mean nothing there): not reachable either.
        service_path(store).write_text(json.dumps({**raw, "network": f"other {ours}"}))
        found = read_service(store)
        assert found is not None and not found.reachable()
        # A holder of an older app, which did not say: reachable, as before.
        old = {key: raw[key] for key in ("pid", "url", "account", "key")}
        service_path(store).write_text(json.dumps(old))
        found = read_service(store)
        assert found is not None and found.reachable()
        # A pid of another pid namespace is not looked for here: the lock (held) decides.
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        pid = int(dead.stdout)
        (tmp_path / "docker-engine-1.lock").write_text(f"pid {pid}\n")
        other = {**raw, "pid": pid, "processes": f"{boot} pid:[1]"}
        service_path(store).write_text(json.dumps(other))
        assert read_service(store) is not None
        service_path(store).write_text(json.dumps({**other, "processes": raw["processes"]}))
        assert read_service(store) is None  # in this namespace: that pid is dead
    finally:
        store.release()
    assert read_service(store) is None, "a file counts only while the lock is held"


def test_a_new_holder_removes_the_service_file_a_dead_holder_left(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "engine-1")
    service_path(store).write_text('{"pid": 1, "url": "http://127.0.0.1:1", "account": "a"}')
    assert store.try_acquire()
    try:
        identity = claim(store)
        assert not service_path(store).exists()
        assert identity == state_identity(store)
        assert re.fullmatch(r"[0-9a-f]{16}", identity)
    finally:
        store.release()


async def test_the_holder_waits_for_attached_runs_then_lets_none_attach(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "engine-1")
    assert store.try_acquire()
    publication = Publication(store)
    await anyio.to_thread.run_sync(publication.publish, "http://127.0.0.1:1", "localbatch", "a2V5")
    lease = AttachLease(store)
    assert lease.take()
    said: list[str] = []
    connections = [0]
    waiting = anyio.Event()

    async def wait() -> None:
        await publication.wait_for_attached(said.append, lambda: connections[0])
        waiting.set()

    async with anyio.create_task_group() as group:
        group.start_soon(wait)
        await anyio.sleep(0.5)
        assert not waiting.is_set(), "the holder did not wait for the attached run"
        assert said == [
            f"Other runs are using this run's docker service (pid {os.getpid()}): waiting for "
            "them to end (Ctrl-C stops waiting)"
        ]
        connections[0] = 1  # a client (an SDK) still connected, the lease gone
        lease.release()
        await anyio.sleep(0.5)
        assert not waiting.is_set(), "the holder did not wait for the open connection"
        connections[0] = 0
        with anyio.fail_after(5):
            await waiting.wait()
    assert len(said) == 1
    # Stopping: no run may attach now, until the holder is gone.
    assert not AttachLease(store).take()
    publication.withdraw()
    store.release()
    publication.release()
    late = AttachLease(store)
    assert late.take()
    late.release()

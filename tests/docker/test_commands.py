"""`status`, `cleanup`, and settings from the environment and a settings file."""

from __future__ import annotations

import contextlib
from pathlib import Path

import docker

from tests.conftest import (
    POOL_LABEL,
    Ids,
    keep_a_one_node_pool,
    labelled,
    remove_labelled,
    run_cli,
)


def test_status_shows_the_prep_and_release_settings_and_runs(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    base = ["--pool-id", ids.pool, "--job-id", ids.job]
    kept = run_cli([*base, "--tasks", "1", "--keep"], state_dir=state_dir)
    assert kept.returncode == 0, kept.stderr
    shown = run_cli(["status", "--job-id", ids.job], state_dir=state_dir)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"Job {ids.job} on pool {ids.pool}: completed (UserTerminate)"
    assert "Job preparation task (jobpreparation)" in lines
    assert "  Wait for success      yes" in lines
    assert "Job release task (jobrelease)" in lines
    assert "  Max wall clock time   15 min" in lines
    (row,) = [line for line in lines if line.startswith("  tvm-")]
    assert row.split()[1:] == ["completed,", "exit", "0", "completed,", "exit", "0"]
    missing = run_cli(["status", "--job-id", "NoSuchJob"], state_dir=state_dir)
    assert missing.returncode == 5
    assert missing.stderr == (
        "error: job NoSuchJob does not exist (the sample deletes its job at its end unless run "
        "with --keep or answered no; give --job-id for another job)\n"
    )
    gone = run_cli([*base, "--yes"], state_dir=state_dir)
    assert gone.returncode == 0, gone.stderr


def test_cleanup_removes_what_the_project_made_and_asks_first(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    kept = run_cli(["--pool-id", ids.pool, "--job-id", ids.job, "--keep"], state_dir=state_dir)
    assert kept.returncode == 0, kept.stderr
    assert labelled(docker_client, ids.pool) == (2, 2)
    declined = run_cli(["cleanup", "--pool-id", ids.pool], state_dir=state_dir, stdin="")
    assert declined.returncode == 0
    assert "Containers (2)" in declined.stdout
    assert declined.stdout.endswith("Nothing removed.\n"), declined.stdout
    assert labelled(docker_client, ids.pool) == (2, 2)
    removed = run_cli(["cleanup", "--pool-id", ids.pool, "--yes"], state_dir=state_dir)
    assert removed.returncode == 0, removed.stderr
    assert "Removed 2 containers and 2 volumes." in removed.stdout
    assert labelled(docker_client, ids.pool) == (0, 0)
    nothing = run_cli(["cleanup", "--pool-id", ids.pool], state_dir=state_dir, stdin="")
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout == (
        f"Nothing to remove: no container or volume carries jobprep_release.pool={ids.pool}.\n"
    )
    again = run_cli(
        ["--pool-id", ids.pool, "--job-id", f"{ids.job}-2", "--yes"], state_dir=state_dir
    )
    assert again.returncode == 0, again.stderr
    assert f"Created pool {ids.pool}" in again.stdout


def test_cleanup_with_only_another_state_directorys_objects_says_so_without_contradiction(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    # A container of this pool made with another state directory (no state label of this
    # one): not in scope, so nothing to remove, yet it does carry the pool label.
    other = docker_client.containers.create(
        "debian:bookworm-slim",
        ["true"],
        name=f"jobprep-elsewhere-{ids.pool.removeprefix('TestPool-')}",
        labels={POOL_LABEL: ids.pool},
    )
    try:
        listed = run_cli(["cleanup", "--pool-id", ids.pool], state_dir=state_dir, stdin="")
    finally:
        other.remove(force=True)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == (
        "Nothing to remove: no container or volume made with this state directory carries "
        f"jobprep_release.pool={ids.pool}.\n"
        f"Not touched, of another state directory: 1 container and 0 volumes (pools: {ids.pool}); "
        "cleanup --all removes them too.\n"
    )


def test_cleanup_leaves_what_the_project_did_not_label(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    kept = run_cli(
        ["--pool-id", ids.pool, "--job-id", ids.job, "--nodes", "1", "--tasks", "1", "--keep"],
        state_dir=state_dir,
    )
    assert kept.returncode == 0, kept.stderr
    suffix = ids.pool.removeprefix("TestPool-")
    # No label at all; and one with the project's label for another pool, which a cleanup
    # of this pool must leave too. This test removes both itself, by id.
    unlabelled = docker_client.containers.create(
        "debian:bookworm-slim", ["sleep", "infinity"], name=f"jobprep-unlabelled-{suffix}"
    )
    unlabelled_volume = docker_client.volumes.create(f"jobprep-unlabelled-{suffix}")
    other_pool = docker_client.containers.create(
        "debian:bookworm-slim",
        ["true"],
        name=f"jobprep-other-pool-{suffix}",
        labels={POOL_LABEL: f"{ids.pool}-other"},
    )
    try:
        # Every pool, as a user runs it, answered no (the engine is shared with other tests):
        # the other pool's container has no state label (another state directory's, or made by
        # an older version), so only --all lists it.
        listed = run_cli(["cleanup"], state_dir=state_dir, stdin="no\n")
        assert listed.returncode == 0, listed.stderr
        (containers,) = [line for line in listed.stdout.splitlines() if line.startswith("Cont")]
        (volumes,) = [line for line in listed.stdout.splitlines() if line.startswith("Volu")]
        assert unlabelled.name not in containers and other_pool.name not in containers
        assert unlabelled_volume.name not in volumes
        (others,) = [line for line in listed.stdout.splitlines() if line.startswith("Not touched")]
        assert f"{ids.pool}-other" in others and others.endswith("cleanup --all removes them too.")
        every = run_cli(["cleanup", "--all"], state_dir=state_dir, stdin="no\n")
        assert every.returncode == 0, every.stderr
        (containers,) = [line for line in every.stdout.splitlines() if line.startswith("Cont")]
        assert unlabelled.name not in containers and other_pool.name in containers
        removed = run_cli(["cleanup", "--pool-id", ids.pool, "--yes"], state_dir=state_dir)
        assert removed.returncode == 0, removed.stderr
        assert "Removed 1 container and 1 volume." in removed.stdout
        assert labelled(docker_client, ids.pool) == (0, 0)
        unlabelled.reload()
        other_pool.reload()
        unlabelled_volume.reload()
    finally:
        for container in (unlabelled, other_pool):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            unlabelled_volume.remove(force=True)


def test_settings_come_from_flags_then_environment_then_file(
    ids: Ids, state_dir: Path, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(f'pool_id = "{ids.pool}"\njob_id = "FromFile"\ntasks = 2\nnodes = 1\n')
    env = {"JOBPREP_RELEASE_CONFIG": str(settings), "JOBPREP_RELEASE_JOB_ID": ids.job}
    result = run_cli(["--tasks", "3", "--yes", "--json"], state_dir=state_dir, env=env)
    assert result.returncode == 0, result.stderr
    assert f"Attempting to create pool: {ids.pool}" in result.stderr
    assert f"Checking for existing job {ids.job}..." in result.stderr
    assert result.stdout.count('"id": "task00') == 3
    assert labelled(docker_client, ids.pool) == (0, 0)


def test_bad_settings_are_one_line_errors(tmp_path: Path, state_dir: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("nodes = [")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'blue'\n")
    wrong_value = tmp_path / "wrong.toml"
    wrong_value.write_text("task_timeout = 'soon'\n")
    cases = [
        (["--config", str(broken)], {}, "is not valid TOML"),
        (["--config", str(unknown)], {}, "unknown setting 'colour'"),
        # A value from the environment or the file names where it came from, not the flag.
        (
            [],
            {"JOBPREP_RELEASE_NODES": "many"},
            "error: JOBPREP_RELEASE_NODES: --nodes must be a whole number",
        ),
        (
            [],
            {"JOBPREP_RELEASE_NODES": "0"},
            "error: JOBPREP_RELEASE_NODES: --nodes must be between 1 and 64",
        ),
        (["--config", str(wrong_value)], {}, f"error: {wrong_value}: task_timeout: 'soon' is"),
        (
            [],
            {"JOBPREP_RELEASE_POOL_ID": "my pool"},
            "error: JOBPREP_RELEASE_POOL_ID: invalid pool id 'my pool'",
        ),
        (
            [],
            {"JOBPREP_RELEASE_BACKEND": "cloud"},
            "JOBPREP_RELEASE_BACKEND: 'cloud' is not one of",
        ),
        ([], {"JOBPREP_RELEASE_YES": "perhaps"}, "is not true or false"),
    ]
    for args, env, words in cases:
        result = run_cli(args, state_dir=state_dir, env=env)
        assert result.returncode == 2, (args, env, result.stderr)
        assert words in result.stderr
        assert result.stderr.count("\n") == 1


def test_cleanup_with_a_state_that_cannot_be_read_removes_nothing(
    ids: Ids, state_dir: Path, docker_client: docker.DockerClient
) -> None:
    keep_a_one_node_pool(docker_client, ids, state_dir)
    (database,) = state_dir.glob("docker-*.sqlite")
    for beside in state_dir.glob(f"{database.name}-*"):  # SQLite's -wal and -shm files
        beside.unlink()
    database.write_bytes(b"not a database")
    refused = run_cli(["cleanup", "--pool-id", ids.pool, "--yes"], state_dir=state_dir)
    # README "Exit statuses": 9, the state cannot be read, the message names the file.
    assert refused.returncode == 9, refused.stderr
    assert str(database) in refused.stderr and "Traceback" not in refused.stderr
    assert labelled(docker_client, ids.pool) == (1, 1)
    assert database.read_bytes() == b"not a database"
    database.unlink()  # moved aside, as the message says: the pool is found by its labels
    removed = run_cli(["cleanup", "--pool-id", ids.pool, "--yes"], state_dir=state_dir)
    assert removed.returncode == 0, removed.stderr
    assert labelled(docker_client, ids.pool) == (0, 0)


def test_cleanup_leaves_the_pools_of_another_state_directory(
    ids: Ids, state_dir: Path, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    # Two runs with their own state directories on one engine (two CI jobs on one host): a
    # cleanup of every pool by one leaves the other's pool, which it names, until --all.
    other_state = tmp_path / "other-state"
    other_state.mkdir()
    other_pool = f"{ids.pool}-b"
    for pool, state in ((ids.pool, state_dir), (other_pool, other_state)):
        kept = run_cli(
            ["--pool-id", pool, "--job-id", ids.job, "--nodes", "1", "--tasks", "1", "--keep"],
            state_dir=state,
        )
        assert kept.returncode == 0, kept.stderr
    try:
        removed = run_cli(["cleanup", "--yes"], state_dir=state_dir)
        assert removed.returncode == 0, removed.stderr
        assert "Removed 1 container and 1 volume." in removed.stdout
        assert labelled(docker_client, ids.pool) == (0, 0)
        assert labelled(docker_client, other_pool) == (1, 1)
        (others,) = [line for line in removed.stdout.splitlines() if line.startswith("Not touched")]
        assert other_pool in others
        # The other state directory still has its pool and job.
        shown = run_cli(["status", "--job-id", ids.job], state_dir=other_state)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[0].startswith(f"Job {ids.job} on pool {other_pool}: ")
        wide = run_cli(["cleanup", "--all", "--pool-id", other_pool, "--yes"], state_dir=state_dir)
        assert wide.returncode == 0, wide.stderr
        assert "Removed 1 container and 1 volume." in wide.stdout
        assert labelled(docker_client, other_pool) == (0, 0)
    finally:
        remove_labelled(docker_client, other_pool)

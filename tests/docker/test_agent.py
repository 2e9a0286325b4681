"""The node agent on a real engine: its answers to `query` agree with the commands it read.

Each case runs on the Perl agent (what every node runs: Debian's images have ``perl-base``)
and on the bash loop a node falls back to on an image without Perl (the script with its
``command -v perl`` test made to fail, as on such an image)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import docker
import pytest

from jobprep_release.backends.docker.core.executor import NOT_FOUND, ProcessSpec
from jobprep_release.backends.docker.node.agent import (
    AGENT_DIR,
    AGENT_READ_LIMIT,
    AGENT_SCRIPT,
    AgentEvent,
    AgentLink,
    file_answer,
    read_command,
    run_command,
    simple_command,
    start_command,
)
from jobprep_release.backends.docker.node.engine import POOL_LABEL, Engine
from jobprep_release.backends.docker.node.launch import launch_script, start_fields
from jobprep_release.backends.errors import NotFound
from tests.conftest import Ids

RUNS = 20
AGENTS = {"perl": AGENT_SCRIPT, "bash": AGENT_SCRIPT.replace("command -v perl", "false", 1)}
agents = pytest.mark.parametrize("agent", sorted(AGENTS))


def _start(key: str, script: str) -> bytes:
    """A `start` of ``bash -c script`` as root in /tmp (the Perl agent's launch command)."""
    fields = ["/tmp", "/tmp", "/dev/null", "/dev/null", "", "", "/usr/bin:/bin", "", "0"]
    return start_command(key, [*fields, "/bin/bash", "-c", script])


@contextlib.asynccontextmanager
async def _agent(
    ids: Ids, docker_client: docker.DockerClient, agent: str
) -> AsyncIterator[AgentLink]:
    """A node container running `agent` (labelled with the test's pool), linked."""
    engine = Engine(docker_client)
    name = f"jobprep_release-agenttest-{ids.pool.lower()}"
    labels = {POOL_LABEL: ids.pool}
    container = await engine.create_node_container(
        name=name,
        image="debian:bookworm-slim",
        command=["/bin/bash", "-c", AGENTS[agent]],
        hostname="agenttest",
        labels=labels,
        volume=name,
        mount_point="/mnt/batch",
        host_options={},
    )
    assert container is not None
    link = await AgentLink.attach(engine, container.id)
    try:
        await engine.call(container.start, what="start the agent")
        yield link
    finally:
        link.close()
        await engine.remove_container(container.id)
        await engine.remove_volume(name)


async def _verbs_until_exited(link: AgentLink, keys: list[str]) -> dict[str, list[str]]:
    """The verbs of the agent's lines about each of `keys`, in order, until each has exited."""
    verbs: dict[str, list[str]] = {key: [] for key in keys}
    with anyio.fail_after(30):
        while any("exited" not in seen for seen in verbs.values()):
            for event in await link.receive():
                if event.key in verbs:
                    verbs[event.key].append(event.verb)
    return verbs


@agents
async def test_a_query_right_after_a_run_never_says_the_agent_has_no_trace_of_it(
    ids: Ids, docker_client: docker.DockerClient, agent: str
) -> None:
    # The agent starts each run in a background subshell; a query read before that subshell
    # recorded its pid was answered `unknown` (the node "restarted"), and the core then ran
    # the process a second time while the first still ran.
    async with _agent(ids, docker_client, agent) as link:
        keys = [f"key{n:03d}" for n in range(RUNS)]
        payload = b"".join(
            run_command(key, "sleep 0.2\n") + simple_command("query", key) for key in keys
        )
        await link.send(payload)
        answers = await _verbs_until_exited(link, keys)
        for key, verbs in answers.items():
            assert "unknown" not in verbs and "absent" not in verbs, (key, verbs)
            assert "started" in verbs, (key, verbs)


@pytest.mark.parametrize(("agent", "verb"), [("perl", "run"), ("perl", "start"), ("bash", "run")])
async def test_a_launch_sent_again_under_its_key_starts_nothing_and_is_answered(
    ids: Ids, docker_client: docker.DockerClient, agent: str, verb: str
) -> None:
    # An app that died not knowing whether its launch reached the node sends it again under
    # the same key: the agent must not run it a second time, while it runs or after it ended.
    script = "echo run >>/mnt/batch/runs.txt; sleep 1\n"
    launch = _start if verb == "start" else run_command
    async with _agent(ids, docker_client, agent) as link:
        await link.send(simple_command("query", "never") + launch("k1", script))
        await link.send(launch("k1", script))  # while the first runs
        verbs: list[str] = []
        with anyio.fail_after(30):
            while "exited" not in verbs:
                verbs += [e.verb for e in await link.receive() if e.key in ("k1", "never")]
        await link.send(launch("k1", script))  # after it ended
        with anyio.fail_after(30):
            while verbs.count("exited") < 2:
                verbs += [e.verb for e in await link.receive() if e.key in ("k1", "never")]
        await link.send(run_command("k3", "exit $(grep -c run /mnt/batch/runs.txt)\n"))
        exits: list[str] = []
        with anyio.fail_after(30):
            while not exits:
                exits += [
                    e.words[0] for e in await link.receive() if e.verb == "exited" and e.key == "k3"
                ]
    # `started` comes from the run's own subshell, so it may follow the second run's answer.
    assert sorted(verbs) == ["absent", "exited", "exited", "running", "started"], verbs
    assert exits == ["1"], "the node ran the launch more than once"


@pytest.mark.parametrize(("agent", "verb"), [("perl", "start"), ("bash", "run")])
async def test_a_task_runs_as_its_user_in_its_directory_with_exactly_its_variables(
    ids: Ids, docker_client: docker.DockerClient, agent: str, verb: str
) -> None:
    # The same ProcessSpec through each agent's launch (`start` fields for Perl, the launch
    # script for bash): the non-admin task user owns the directories made, the process sees
    # only its own variables (`env -i`), and a program that does not exist is reported so.
    task_dir = "/mnt/batch/tasks/workitems/j/job-1/t"

    def spec(*argv: str) -> ProcessSpec:
        return ProcessSpec(
            argv=argv,
            environment={"PATH": "/usr/bin:/bin", "ONLY": "this one"},
            task_dir=task_dir,
            working_dir=f"{task_dir}/wd",
            stdout_path=f"{task_dir}/stdout.txt",
            stderr_path=f"{task_dir}/stderr.txt",
        )

    def launch(key: str, process: ProcessSpec) -> bytes:
        if verb == "start":
            return start_command(key, start_fields(process))
        return run_command(key, launch_script(process, agent_mark=f"{AGENT_DIR}/{key}.why"))

    async with _agent(ids, docker_client, agent) as link:
        await link.send(launch("env", spec("env")) + launch("gone", spec("no-such-program")))
        exits: dict[str, tuple[str, ...]] = {}
        with anyio.fail_after(30):
            while len(exits) < 2:
                for event in await link.receive():
                    if event.verb == "exited":
                        exits[event.key] = event.words
        container = docker_client.containers.get(f"jobprep_release-agenttest-{ids.pool.lower()}")
        listing = container.exec_run(
            ["stat", "-c", "%U %a", task_dir, f"{task_dir}/wd"]
        ).output.decode()
        output = container.exec_run(["cat", f"{task_dir}/stdout.txt"]).output.decode()
    assert exits["env"][0] == "0", exits
    assert (exits["gone"][0], exits["gone"][3]) == ("127", NOT_FOUND), exits
    assert sorted(output.splitlines()) == ["ONLY=this one", "PATH=/usr/bin:/bin"]
    assert listing.split("\n")[:2] == ["_azbatch 755", "_azbatch 755"]


async def test_the_perl_agent_reports_a_start_while_the_task_still_runs(
    ids: Ids, docker_client: docker.DockerClient
) -> None:
    # The Perl agent holds a `started` line for an exit to go with it; a task that does not
    # end soon must still be reported started long before it ends (the hold is bounded).
    async with _agent(ids, docker_client, "perl") as link:
        await link.send(_start("long", "sleep 60\n"))
        verbs: list[str] = []
        with anyio.fail_after(20):
            while "started" not in verbs:
                verbs += [e.verb for e in await link.receive() if e.key == "long"]
        await link.send(simple_command("kill", "long"))
        with anyio.fail_after(20):
            while "exited" not in verbs:
                verbs += [e.verb for e in await link.receive() if e.key == "long"]
    assert verbs == ["started", "exited"], verbs


@agents
async def test_each_launch_is_reported_started_then_exited_once(
    ids: Ids, docker_client: docker.DockerClient, agent: str
) -> None:
    # Lines held back and written with later ones keep their order: a task's `started`
    # always comes before its `exited`, each exactly once, for short tasks sent together.
    launch = _start if agent == "perl" else run_command
    async with _agent(ids, docker_client, agent) as link:
        keys = [f"short{n:03d}" for n in range(RUNS)]
        await link.send(b"".join(launch(key, "exit 3\n") for key in keys))
        verbs = await _verbs_until_exited(link, keys)
    assert all(seen == ["started", "exited"] for seen in verbs.values()), verbs


async def _file_lines(link: AgentLink, keys: list[str]) -> dict[str, AgentEvent]:
    """The agent's ``file`` line for each of `keys`."""
    answers: dict[str, AgentEvent] = {}
    with anyio.fail_after(30):
        while len(answers) < len(keys):
            for event in await link.receive():
                if event.verb == "file" and event.key in keys:
                    answers[event.key] = event
    return answers


async def test_the_perl_agent_reads_small_regular_files_and_leaves_the_rest_to_the_engine(
    ids: Ids, docker_client: docker.DockerClient
) -> None:
    # `read` answers with a small regular file's exact bytes (any byte value, none at all),
    # says "absent" for a missing part, and declines (None: the engine's archive reads it)
    # a symbolic link anywhere on the way, a directory and a file over the limit.
    root = "/mnt/batch/r"
    binary = bytes(range(256)) * 3 + b"\n\r \0end"
    setup = (
        f'mkdir -p {root}/d/sub && perl -e \'print pack("H*", "{binary.hex()}")\' >{root}/d/bin; '
        f": >{root}/d/empty; head -c {AGENT_READ_LIMIT} /dev/zero >{root}/d/limit; "
        f"head -c {AGENT_READ_LIMIT + 1} /dev/zero >{root}/d/over; "
        f"ln -s d {root}/link; ln -s bin {root}/d/tobin; echo hi >{root}/d/'sp ace'; "
        f"ln -s {root} {root}-link\n"
    )
    cases = {
        "bin": "d/bin",
        "empty": "d/empty",
        "limit": "d/limit",
        "space": "d/sp ace",
        "missing": "d/nothing",
        "missingdir": "nodir/bin",
        "underfile": "d/bin/x",
        "over": "d/over",
        "dir": "d/sub",
        "linkdir": "link/bin",
        "linkfile": "d/tobin",
    }
    async with _agent(ids, docker_client, "perl") as link:
        hello: list[AgentEvent] = []
        with anyio.fail_after(30):
            while not hello:
                hello += [e for e in await link.receive() if e.verb == "hello"]
        assert "read" in hello[0].words
        await link.send(run_command("setup", setup))
        exited: list[AgentEvent] = []
        with anyio.fail_after(30):
            while not exited:
                exited += [e for e in await link.receive() if e.verb == "exited"]
        assert exited[0].words[0] == "0", exited
        await link.send(b"".join(read_command(key, root, path) for key, path in cases.items()))
        # What is opened must be the file at the path asked for: through a root that is a
        # link (as a part a task swaps for one after the checks would be), it is declined.
        await link.send(read_command("vialink", f"{root}-link", "d/bin"))
        answers = await _file_lines(link, [*cases, "vialink"])
    assert file_answer(answers["bin"], cases["bin"]) == binary
    assert file_answer(answers["empty"], cases["empty"]) == b""
    assert file_answer(answers["limit"], cases["limit"]) == bytes(AGENT_READ_LIMIT)
    assert file_answer(answers["space"], cases["space"]) == b"hi\n"
    for key in ("missing", "missingdir", "underfile"):
        with pytest.raises(NotFound) as raised:
            file_answer(answers[key], cases[key])
        assert raised.value.code == "FileNotFound"
    assert file_answer(answers["vialink"], "d/bin") is None, answers["vialink"]
    for key in ("over", "dir", "linkdir", "linkfile"):
        assert file_answer(answers[key], cases[key]) is None, (key, answers[key])


async def test_an_agent_without_read_leaves_the_command_alone(
    ids: Ids, docker_client: docker.DockerClient
) -> None:
    # The bash agent (and a Perl agent of an earlier version, still running on a kept node)
    # does not say `read` in its hello; a `read` line sent anyway must not disturb the next
    # command.
    async with _agent(ids, docker_client, "bash") as link:
        await link.send(read_command("r", "/mnt/batch", "x") + run_command("after", "exit 4\n"))
        exits: list[tuple[str, ...]] = []
        hello: list[AgentEvent] = []
        with anyio.fail_after(30):
            while not exits:
                for event in await link.receive():
                    if event.verb == "hello":
                        hello.append(event)
                    if event.verb == "exited" and event.key == "after":
                        exits.append(event.words)
    assert exits[0][0] == "4"
    assert hello and all("read" not in event.words for event in hello)

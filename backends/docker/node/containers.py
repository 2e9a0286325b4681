"""Container tasks: a process whose `ProcessSpec.container` is set runs in a container of its
own beside its node, as Batch runs a task with ``containerSettings`` on a container pool.

The container is made from the task's image with the node's volume mounted at ``/mnt/batch``
(the node's task directories at the same paths, as the service maps ``AZ_BATCH_NODE_ROOT_DIR``
into the container), in the node's network namespace, with exactly the task's environment. A
small ``/bin/sh`` wrapper makes the task's directories, then execs the command line with stdout
and stderr in the task's files (so the image needs ``/bin/sh``). The container's state is read
every `POLL_SECONDS` through the engine's `CapacityLimiter` (no thread waits on it); past its
wall clock it is killed; its exit is reported like any process's, then the container is removed.

Run options (``containerRunOptions``) honoured: ``-e``/``--env``, ``-u``/``--user``,
``-w``/``--workdir``, ``-l``/``--label``, ``--rm`` (always so here); any other is the task's
``ContainerInvalidSettings`` failure.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import anyio
import anyio.abc
import structlog

from jobprep_release.backends.base import TaskContainerExecutionInfo
from jobprep_release.backends.docker.core.executor import (
    BAD_CONTAINER_SETTINGS,
    IMAGE_NOT_FOUND,
    ContainerRun,
    ProcessExit,
    ProcessSpec,
)
from jobprep_release.backends.docker.node.engine import NODE_LABEL, POOL_LABEL, ROLE_LABEL, Engine
from jobprep_release.backends.errors import BackendError, NotFound

log = structlog.get_logger("jobprep_release.docker")

KEY_LABEL = "jobprep_release.key"
"""The launch key a task container runs (its role is ``task``)."""
POLL_SECONDS = 0.25
MOUNT_POINT = "/mnt/batch"

WRAPPER = (
    'mkdir -p "$JOBPREP_TASK_DIR" "$JOBPREP_WD" 2>/dev/null; '
    '[ -n "$JOBPREP_CD" ] && { cd "$JOBPREP_WD" || exit 1; }; '
    "unset JOBPREP_TASK_DIR JOBPREP_WD JOBPREP_CD; "
)


class BadRunOptions(ValueError):
    """``containerRunOptions`` that this backend cannot apply."""


def run_options(words: Sequence[str]) -> dict[str, Any]:
    """The ``docker create`` options `words` asks for, as {env, user, workdir, labels};
    `BadRunOptions` for an option not honoured here."""
    found: dict[str, Any] = {"env": {}, "labels": {}}
    names = {"-e": "env", "--env": "env", "-u": "user", "--user": "user"}
    names |= {"-w": "workdir", "--workdir": "workdir", "-l": "label", "--label": "label"}
    items = list(words)
    while items:
        word = items.pop(0)
        if word == "--rm":
            continue
        name, _, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        what = names.get(name)
        if what is None:
            raise BadRunOptions(f"container run option {word!r} is not supported here")
        value = inline if inline else (items.pop(0) if items else None)
        if value is None:
            raise BadRunOptions(f"container run option {word!r} needs a value")
        if what in ("env", "label"):
            key, _, val = value.partition("=")
            found["env" if what == "env" else "labels"][key] = val
        else:
            found[what] = value
    return found


def _epoch(stamp: str | None, fallback: float) -> float:
    """Docker's RFC 3339 time (nanoseconds) as epoch seconds; `fallback` when unset."""
    if not stamp or stamp.startswith("0001-"):
        return fallback
    head, _, fraction = stamp.rstrip("Z").partition(".")
    try:
        whole = datetime.fromisoformat(head + "+00:00").timestamp()
    except ValueError:
        return fallback
    return whole + float(f"0.{fraction or '0'}")


class ContainerTasks:
    """Runs container processes on `engine`; `report(node_id, verb, key, exit)` hears of each
    one's start (exit None) and end."""

    def __init__(
        self, engine: Engine, report: Callable[[str, str, str, ProcessExit | None], None]
    ) -> None:
        self.engine = engine
        self._report = report
        self._watched: set[str] = set()
        self._live: set[str] = set()
        self._killed: set[str] = set()
        """Keys killed before their container was started: it is not started."""
        self._making: dict[str, set[str]] = {}
        """Per node, the keys whose container is being made or started."""
        self._closing: dict[str, int] = {}
        """Nodes whose task containers are being removed (how many removals): no container
        is made for them meanwhile."""

    def start(
        self,
        group: anyio.abc.TaskGroup,
        pool_id: str,
        node_id: str,
        node_container: str,
        key: str,
        spec: ProcessSpec,
    ) -> None:
        """`run` in `group`, counted as being made from now on: a removal of the node's task
        containers that begins before it runs waits for it (and it then makes nothing)."""
        self._making.setdefault(node_id, set()).add(key)
        self._live.add(key)
        group.start_soon(self.run, pool_id, node_id, node_container, key, spec)

    async def run(
        self, pool_id: str, node_id: str, node_container: str, key: str, spec: ProcessSpec
    ) -> None:
        """Make, start and watch the container of `spec` (which has a container part) until
        it ends; report started, then exited. Never raises."""
        self._making.setdefault(node_id, set()).add(key)
        self._live.add(key)
        try:
            await self._run(pool_id, node_id, node_container, key, spec)
        finally:
            self._made(node_id, key)
            self._live.discard(key)
            self._killed.discard(key)

    def _made(self, node_id: str, key: str) -> None:
        """The container of `key` is started, or will not be: no longer being made."""
        making = self._making.get(node_id)
        if making is not None:
            making.discard(key)
            if not making:
                del self._making[node_id]

    def _stopped(self, node_id: str, key: str) -> bool:
        """The container of `key` must not run: killed, or its node's containers are being
        removed (`remove_on_node`)."""
        return key in self._killed or node_id in self._closing

    async def _run(
        self, pool_id: str, node_id: str, node_container: str, key: str, spec: ProcessSpec
    ) -> None:
        container = spec.container
        assert container is not None
        now = time.time()
        if self._stopped(node_id, key):
            self._fail(node_id, key, ProcessExit(137, now, now))
            return
        try:
            options = run_options(container.run_options)
        except BadRunOptions as exc:
            log.info("container task refused", key=key, error=str(exc))
            self._fail(node_id, key, ProcessExit(125, now, now, BAD_CONTAINER_SETTINGS))
            return
        try:
            await self.engine.ensure_image(container.image)
        except BackendError as exc:
            log.info("container task image missing", key=key, error=exc.one_line())
            self._fail(node_id, key, ProcessExit(125, now, now, IMAGE_NOT_FOUND))
            return
        labels = {POOL_LABEL: pool_id, NODE_LABEL: node_id, ROLE_LABEL: "task", KEY_LABEL: key}
        try:
            if self._stopped(node_id, key):
                self._fail(node_id, key, ProcessExit(137, now, time.time()))
                return
            created = await self._create(node_container, key, spec, container, options, labels)
            if self._stopped(node_id, key):
                await self._discard(created)
                self._fail(node_id, key, ProcessExit(137, now, time.time()))
                return
            await self.engine.call(self.engine.api.start, created, what=f"start task {key}")
        except BackendError as exc:
            log.warning("container task could not start", key=key, error=exc.one_line())
            await self._discard(f"{node_container}-{key}")
            self._fail(node_id, key, ProcessExit(125, now, time.time(), BAD_CONTAINER_SETTINGS))
            return
        finally:
            self._made(node_id, key)
        began = time.time()
        running = TaskContainerExecutionInfo(created, "running")
        self._report(node_id, "started", key, ProcessExit(0, began, began, container=running))
        await self.watch(node_id, created, key, spec.wall_clock, began)

    async def _create(
        self,
        node_container: str,
        key: str,
        spec: ProcessSpec,
        container: ContainerRun,
        options: dict[str, Any],
        labels: dict[str, str],
    ) -> str:
        environment = dict(spec.environment) | options["env"]
        environment |= {
            "JOBPREP_TASK_DIR": spec.task_dir,
            "JOBPREP_WD": spec.working_dir,
            "JOBPREP_CD": "1" if container.working_dir and "workdir" not in options else "",
        }
        script = WRAPPER + f'exec "$@" >"{spec.stdout_path}" 2>"{spec.stderr_path}"'
        api = self.engine.api

        def create() -> str:
            host_config = api.create_host_config(
                binds={self._volume(node_container): {"bind": MOUNT_POINT, "mode": "rw"}},
                network_mode=f"container:{node_container}",
            )
            config = api.create_container_config(
                container.image,
                ["-c", script, "sh", *spec.argv],
                entrypoint=["/bin/sh"],
                environment=environment,
                labels=labels | options["labels"] | self.engine.scope,
                user=options.get("user") or "0:0",
                working_dir=options.get("workdir"),
                host_config=host_config,
            )
            made = api.create_container_from_config(config, f"{node_container}-{key}")
            return str(made["Id"])

        return await self.engine.call(create, what=f"create task container {key}")

    @staticmethod
    def _volume(node_container: str) -> str:
        # A node's volume has its container's name (`keeper.container_name`).
        return node_container

    async def watch(
        self,
        node_id: str,
        container_id: str,
        key: str,
        wall_clock: timedelta | None,
        started: float,
    ) -> None:
        """Poll the container until it exits (killing it past `wall_clock`), report its exit
        and remove it."""
        if key in self._watched:
            return
        self._watched.add(key)
        deadline = None if wall_clock is None else started + wall_clock.total_seconds()
        try:
            while True:
                try:
                    state = await self.engine.call(
                        self.engine.api.inspect_container, container_id, what=f"inspect {key}"
                    )
                except NotFound:
                    return  # removed with its node (reboot, reimage, removal): lost with it
                except BackendError:
                    await anyio.sleep(POLL_SECONDS)
                    continue
                status = state.get("State") or {}
                if status.get("Status") in ("exited", "dead"):
                    now = time.time()
                    # the start reported is the one the wall clock counts from
                    end = max(_epoch(status.get("FinishedAt"), now), started)
                    info = TaskContainerExecutionInfo(
                        container_id, str(status["Status"]), status.get("Error") or None
                    )
                    exit = ProcessExit(int(status.get("ExitCode", 1)), started, end, container=info)
                    break
                if deadline is not None and time.time() >= deadline:
                    with contextlib.suppress(BackendError):
                        await self.engine.call(
                            self.engine.api.kill, container_id, what=f"kill {key}"
                        )
                await anyio.sleep(POLL_SECONDS)
            self._report(node_id, "exited", key, exit)
            await self.engine.remove_container(container_id)
        finally:
            self._watched.discard(key)

    def _fail(self, node_id: str, key: str, exit: ProcessExit) -> None:
        """The container never ran: reported started and ended at once, as the agent reports
        a program that could not start."""
        self._report(node_id, "started", key, ProcessExit(0, exit.start, exit.start))
        self._report(node_id, "exited", key, exit)

    def runs(self, key: str) -> bool:
        """Whether `key` is a container process started or watched here, not yet ended."""
        return key in self._live or key in self._watched

    async def kill(self, node_container: str, key: str) -> None:
        if key in self._live:
            self._killed.add(key)
        with contextlib.suppress(BackendError):
            await self.engine.call(
                self.engine.api.kill, f"{node_container}-{key}", what=f"kill {key}"
            )

    async def _discard(self, container: str) -> None:
        """Remove a container this run made; a removal already under way (its node's) is
        left to finish."""
        with contextlib.suppress(BackendError):
            await self.engine.remove_container(container)

    async def remove_on_node(self, node_id: str) -> None:
        """Remove the node's task containers: what ran beside it goes with it (a reboot, a
        reimage or its removal), as processes on the node do. No container is made for the
        node meanwhile, and those being made (from `start`) when it begins are waited for
        (each removes itself), so none is made after the containers were listed and left
        behind."""
        self._closing[node_id] = self._closing.get(node_id, 0) + 1
        try:
            while self._making.get(node_id):
                await anyio.sleep(POLL_SECONDS / 5)
            rows = await self.engine.list_containers({NODE_LABEL: node_id, ROLE_LABEL: "task"})
            for row in rows:
                await self.engine.remove_container(row.id)
        finally:
            self._closing[node_id] -= 1
            if not self._closing[node_id]:
                del self._closing[node_id]

    async def find(self, pool_id: str, keys: Sequence[str]) -> dict[str, str]:
        """The task containers of `pool_id` running one of `keys`: key -> container id."""
        rows = await self.engine.list_containers({POOL_LABEL: pool_id, ROLE_LABEL: "task"})
        wanted = set(keys)
        return {
            row.labels[KEY_LABEL]: row.id for row in rows if row.labels.get(KEY_LABEL) in wanted
        }

"""The Docker engine, as the backend uses it: docker-py off the event loop, errors translated.

Every docker-py call blocks, so each runs in a worker thread (`anyio.to_thread.run_sync`), at
most `ENGINE_THREADS` at once per engine: the backend's own `CapacityLimiter`, so however many
nodes or pools there are, docker-py never takes more of anyio's default thread pool than that
(a call beyond it waits for one to end; none holds a thread for longer than one engine request,
the agents' links reading without one). Every object the backend creates carries the label
``jobprep_release.pool=<pool id>``; lookups filter on it, so nothing unlabelled is ever touched.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import tarfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import docker
import docker.constants
import docker.errors
import docker.types
import requests.exceptions

from jobprep_release.backends.errors import (
    BackendError,
    BackendUnavailable,
    InvalidRequest,
    NotFound,
    ServiceError,
)

POOL_LABEL = "jobprep_release.pool"
NODE_LABEL = "jobprep_release.node"
ROLE_LABEL = "jobprep_release.role"
STATE_LABEL = "jobprep_release.state"
"""The identity of the state (directory) whose process made the object (`Engine.scope`)."""

ENGINE_THREADS = 10
"""docker-py calls in flight at once: its client keeps 10 connections to the engine (docker-py's
``DEFAULT_MAX_POOL_SIZE``), so more threads would only open connections it then discards."""

IMAGE_SEEN_FOR = 10.0
"""Seconds an image found present is taken to be so without asking the engine again; one
removed meanwhile fails its node's container create (ImageNotFound) as it would a moment
after any check."""

REMOVAL_WAIT = 30
"""Seconds `Engine.remove_container` waits for a removal already under way to end."""

STREAM_CHUNK = 256 * 1024
"""Bytes of a streamed file per read (one worker-thread call each)."""
STREAM_SKIP = 1024 * 1024
"""Bytes dropped per read while a stream skips to its start."""

T = TypeVar("T")


_IDENTITY = {"Accept-Encoding": "identity"}


def _regular_file(api: Any, response: Any, path: str) -> IO[bytes]:
    """A reader of the one regular file in an archive response; `FileNotFoundError` if none."""
    if response.status_code == 404:
        raise FileNotFoundError(path)
    api._raise_for_status(response)
    tar = tarfile.open(fileobj=response.raw, mode="r|")  # noqa: SIM115 (the caller closes)
    member = tar.next()
    extracted = tar.extractfile(member) if member and member.isfile() else None
    if extracted is None:
        raise FileNotFoundError(path)
    return extracted


def _open_archived_file(api: Any, container_id: str, path: str) -> tuple[Any, IO[bytes]]:
    """The engine's archive of `path` as an open streamed response and a reader of the one
    regular file in it (its bytes read from the response as they are asked for); the caller
    closes the response. `FileNotFoundError` when it is not a regular file."""
    url = api._url("/containers/{0}/archive", container_id)
    # Uncompressed: the engine would gzip for requests' default Accept-Encoding.
    response = api._get(url, params={"path": path}, stream=True, headers=_IDENTITY)
    response.raw.decode_content = True
    try:
        return response, _regular_file(api, response, path)
    except BaseException:
        response.close()
        raise


@dataclass(frozen=True, slots=True)
class ContainerSummary:
    id: str
    name: str
    labels: Mapping[str, str]


def _label_filters(labels: Mapping[str, str | None]) -> dict[str, list[str]]:
    return {"label": [key if value is None else f"{key}={value}" for key, value in labels.items()]}


def _permission_denied(exc: BaseException) -> bool:
    """A PermissionError anywhere in the chain or the args (requests wraps urllib3 wraps it)."""
    pending: list[object] = [exc]
    seen: set[int] = set()
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        if isinstance(item, PermissionError):
            return True
        seen.add(id(item))
        pending += [*item.args, item.__cause__, item.__context__]
    return False


def _translate(exc: Exception, what: str) -> BackendError:
    if isinstance(exc, docker.errors.ImageNotFound):
        return NotFound(f"{what}: image not found", code="ImageNotFound")
    if isinstance(exc, docker.errors.NotFound):
        return NotFound(f"{what}: not found", code="NotFound")
    if isinstance(exc, docker.errors.APIError):
        status = exc.status_code or 0
        detail = exc.explanation or str(exc)
        if status == 400:
            return InvalidRequest(f"{what}: {detail}")
        return ServiceError(f"{what}: Docker engine answered {status}: {detail}")
    if _permission_denied(exc):
        return BackendUnavailable(
            f"no permission to use the Docker engine's socket ({what})",
            hint="join the socket's group; in a container, add "
            '--group-add "$(stat -c %g /var/run/docker.sock)"',
        )
    if isinstance(exc, (requests.exceptions.ConnectionError, docker.errors.DockerException)):
        return BackendUnavailable(
            f"cannot reach the Docker engine ({what})",
            hint="start Docker, or give --docker-host (or DOCKER_HOST) a running engine",
        )
    return ServiceError(f"{what}: {exc}")


class Engine:
    """A docker-py client whose calls run in worker threads and raise the project's errors."""

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client
        self.limiter = anyio.CapacityLimiter(ENGINE_THREADS)
        """The threads this engine's docker-py calls may use (`ENGINE_THREADS`)."""
        self._images_seen: dict[str, float] = {}
        """When (monotonic seconds) each image was last found present."""
        self._id: str | None = None
        self.scope: dict[str, str] = {}
        """Labels every container and volume made through this handle carries, and every
        lookup filters on: the state's identity (`STATE_LABEL`), so that processes with
        different states (two app containers sharing the host's engine) never find, adopt or
        remove each other's pools. Empty (everything labelled) for `cleanup`."""

    @classmethod
    async def connect(cls, base_url: str | None = None) -> Engine:
        """Connect to DOCKER_HOST (or `base_url`), check the engine answers and learn its
        identity (`engine_id`), in one request: an unversioned ``GET /info``, whose
        ``API-Version`` header (the engine sets it on every answer: its own API version, what
        docker-py's ``version="auto"`` would ask ``GET /version`` for; Docker's CLI negotiates
        from the same header on ``/_ping``) becomes the client's version. Nothing is pinned,
        so any engine works that docker-py does (API 1.24 and later: Docker 20.10 is 1.41,
        and engines from 29 refuse versions below 1.44). An engine whose answer lacks the
        header (a proxy in between may drop it) is asked ``GET /version`` as docker-py would."""

        def connect() -> tuple[docker.DockerClient, dict[str, Any]]:
            # The version given here is never sent: it is replaced before the first request.
            version = docker.constants.MINIMUM_DOCKER_API_VERSION
            if base_url:
                client = docker.DockerClient(base_url=base_url, version=version)
            else:
                client = docker.from_env(version=version)
            try:
                api = client.api
                response = api._get(api._url("/info", versioned_api=False))
                info: dict[str, Any] = api._result(response, json=True)
                advertised = response.headers.get("API-Version")
                api._version = advertised or api._retrieve_server_version()
            except BaseException:
                client.close()
                raise
            return client, info

        try:
            client, info = await anyio.to_thread.run_sync(connect)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            # The address tried, as docker-py chose it: a --docker-host or DOCKER_HOST typo is
            # seen in the line itself.
            address = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
            raise _translate(exc, f"connect to {address}") from exc
        engine = cls(client)
        engine._id = str(info.get("ID") or info.get("Name") or "default")
        return engine

    async def _run(self, func: Callable[[], T], what: str) -> T:
        try:
            return await anyio.to_thread.run_sync(func, limiter=self.limiter)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise _translate(exc, what) from exc

    async def _run_abandonable(self, func: Callable[[], T], what: str) -> T:
        """`_run` for a call that may take minutes (a pull), in a daemon thread of its own: a
        cancelled caller returns at once, and the process may exit while the call goes on
        (anyio's worker threads would hold both until the call ends)."""
        outcome: list[tuple[bool, Any]] = []
        done = anyio.Event()
        token = anyio.lowlevel.current_token()

        def target() -> None:
            try:
                outcome.append((True, func()))
            except BaseException as exc:
                outcome.append((False, exc))
            with contextlib.suppress(RuntimeError):  # the event loop has ended: nobody waits
                anyio.from_thread.run_sync(done.set, token=token)

        async with self.limiter:
            threading.Thread(target=target, name=f"jobprep_release {what}", daemon=True).start()
            await done.wait()
        ok, value = outcome[0]
        if ok:
            return value  # type: ignore[no-any-return]
        if isinstance(value, (docker.errors.DockerException, requests.exceptions.RequestException)):
            raise _translate(value, what) from value
        raise value

    async def call(self, func: Callable[..., T], *args: Any, what: str, **kwargs: Any) -> T:
        """Run one blocking docker-py call in a worker thread."""
        return await self._run(lambda: func(*args, **kwargs), what)

    @property
    def api(self) -> Any:
        """The low-level API client, for calls made inside `call`."""
        return self._client.api

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self._client.close, limiter=self.limiter)

    async def engine_id(self) -> str:
        """The engine's identity (its ``ID`` in ``GET /info``; learnt by `connect`)."""
        if self._id is None:
            info: dict[str, Any] = await self.call(self._client.info, what="engine info")
            self._id = str(info.get("ID") or info.get("Name") or "default")
        return self._id

    async def bridge_gateway(self) -> str:
        """The host's address on the engine's default bridge network (where node containers
        are): a service listening there is reachable from every node."""
        network = await self.call(self._client.networks.get, "bridge", what="bridge network")
        configs = network.attrs.get("IPAM", {}).get("Config") or [{}]
        return str(configs[0].get("Gateway") or "172.17.0.1")

    async def has_image(self, image: str) -> bool:
        try:
            await self.call(self._client.images.get, image, what=f"image {image}")
        except NotFound:
            return False
        self._images_seen[image] = time.monotonic()
        return True

    async def ensure_image(self, image: str) -> None:
        """Make sure `image` is present, pulling it once if not. An image found present in
        the last `IMAGE_SEEN_FOR` seconds is not asked about again (creating a pool checks its
        image before and while it is created)."""
        seen = self._images_seen.get(image)
        if seen is not None and time.monotonic() - seen < IMAGE_SEEN_FOR:
            return
        if await self.has_image(image):
            return
        try:
            await self._run_abandonable(lambda: self._client.images.pull(image), f"pull {image}")
            self._images_seen[image] = time.monotonic()
        except BackendError as exc:
            raise NotFound(
                f"node image {image!r} is not present and cannot be pulled",
                code="ImageNotFound",
                hint=f"pull or build it (`docker pull {image}`), or choose another with --image",
            ) from exc

    async def list_containers(self, labels: Mapping[str, str | None]) -> list[ContainerSummary]:
        """Containers carrying all of `labels` (None: with any value), from one list call
        (no per-container inspect, which would race with a container being removed)."""
        filters = _label_filters({**labels, **self.scope})
        rows = await self.call(
            self._client.api.containers, all=True, filters=filters, what="list containers"
        )
        return [
            ContainerSummary(
                id=row["Id"],
                name=(row.get("Names") or ["/"])[0].lstrip("/"),
                labels=row.get("Labels") or {},
            )
            for row in rows
        ]

    async def list_volumes(self, labels: Mapping[str, str | None]) -> list[Any]:
        filters = _label_filters({**labels, **self.scope})
        return await self.call(self._client.volumes.list, filters=filters, what="list volumes")

    async def get_container(self, name: str) -> Any | None:
        try:
            return await self.call(self._client.containers.get, name, what=f"container {name}")
        except NotFound:
            return None

    async def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        await self.call(
            self._client.volumes.create,
            name=name,
            labels={**labels, **self.scope},
            what=f"volume {name}",
        )

    async def remove_volume(self, name: str) -> None:
        """Remove the volume `name` (one request, no lookup first; absent is done);
        `ServiceError` when a container still uses it (409 Conflict)."""
        await self.call(self._remove_volume, name, what=f"remove volume {name}")

    async def try_remove_volume(self, name: str) -> bool:
        """`remove_volume`, but False rather than an error when a container still uses it."""
        try:
            await self.call(self._remove_volume, name, what=f"remove volume {name}")
        except ServiceError as exc:
            cause = exc.__cause__
            if isinstance(cause, docker.errors.APIError) and cause.status_code == 409:
                return False
            raise
        return True

    def _remove_volume(self, name: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self._client.api.remove_volume(name, force=True)

    async def create_node_container(
        self,
        *,
        name: str,
        image: str,
        command: list[str],
        hostname: str,
        labels: Mapping[str, str],
        volume: str,
        mount_point: str,
        host_options: Mapping[str, Any],
        ports: Sequence[tuple[int, str]] = (),
    ) -> Any | None:
        """A container whose stdin stays open across attaches, for a long-lived agent, with
        the volume `volume` at `mount_point`; `ports` (port, protocol) are exposed (published
        by ``port_bindings`` in `host_options`). None when a container named `name` exists
        (409 Conflict: the caller finds it). One request: the engine makes the volume, with
        `labels`, as it creates the container (a mount's ``VolumeOptions.Labels``), or uses
        the volume of that name when there is one. The container is returned as created (not
        inspected: ``attrs`` holds its id only; `reload` fills them).

        docker-py always sets ``StdinOnce`` with an open stdin, which closes the agent's stdin
        when the first client detaches; the low-level API lets us turn it off.
        """
        labelled = {**labels, **self.scope}

        def create() -> Any | None:
            api = self._client.api
            mount = docker.types.Mount(mount_point, volume, type="volume", labels=labelled)
            host_config = api.create_host_config(mounts=[mount], **host_options)
            config = api.create_container_config(
                image,
                command,
                hostname=hostname,
                labels=labelled,
                stdin_open=True,
                host_config=host_config,
                ports=list(ports) or None,
            )
            config["StdinOnce"] = False
            try:
                created = api.create_container_from_config(config, name)
            except docker.errors.APIError as exc:
                if exc.status_code == 409:
                    return None
                raise
            return self._client.containers.prepare_model({"Id": created["Id"]})

        return await self._run(create, f"create container {name}")

    async def remove_container(self, container_id: str) -> None:
        """Remove a container (id or name; absent is done), killing it if it runs. When its
        removal is already under way (409 "removal of container ... is already in progress":
        a container task removing itself as it ended, while its node goes), wait until that
        ends (``POST /containers/<id>/wait?condition=removed``, at most `REMOVAL_WAIT`
        seconds), so that what the caller removes next (the volume it mounts) is free."""

        def remove() -> None:
            api = self._client.api
            try:
                api.remove_container(container_id, force=True)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if exc.status_code != 409 or "in progress" not in str(exc.explanation):
                    raise
                with contextlib.suppress(docker.errors.NotFound):
                    api.wait(container_id, timeout=REMOVAL_WAIT, condition="removed")

        await self._run(remove, "remove container")

    async def put_archive(self, container_id: str, data: bytes | IO[bytes]) -> None:
        """Extract a tar (rooted at `/`; bytes, or a file read as it is sent) into a container."""
        await self.call(self._client.api.put_archive, container_id, "/", data, what="copy files")

    async def stat(self, container_id: str, path: str) -> dict[str, Any] | None:
        """The engine's stat of a path in a container (``linkTarget`` set for a symlink, to
        its resolved target); None when there is no such path."""

        def head() -> dict[str, Any] | None:
            api = self._client.api
            url = api._url("/containers/{0}/archive", container_id)
            response = api.head(url, params={"path": path})
            if response.status_code == 404:
                return None
            api._raise_for_status(response)
            header = response.headers.get("X-Docker-Container-Path-Stat")
            return json.loads(base64.b64decode(header)) if header else None

        return await self._run(head, f"stat {path}")

    async def confined_path(
        self, container_id: str, root: str, relative: str, *, follow_last: bool = True
    ) -> str:
        """The path in the container that `relative` under `root` names, refusing any symlink
        on the way that leads out of `root` (the engine would otherwise follow it anywhere in
        the container). With `follow_last` false, a link at the end is left as it is."""
        parts = relative.split("/")
        path = root
        for index, part in enumerate(parts):
            path = f"{path}/{part}"
            if index == len(parts) - 1 and not follow_last:
                break
            info = await self.stat(container_id, path)
            if info is None:
                raise NotFound(f"{relative}: no such file", code="FileNotFound")
            target = str(info.get("linkTarget") or "")
            if target:
                if target != root and not target.startswith(root + "/"):
                    raise InvalidRequest(
                        f"{relative}: a symbolic link leads out of the node's root",
                        code="InvalidNodeFilePath",
                    )
                path = target
        return path

    async def read_confined_file(self, container_id: str, root: str, relative: str) -> bytes:
        """A file at `relative` under `root` (see `confined_path`)."""
        return await self.read_file(
            container_id, await self.confined_path(container_id, root, relative)
        )

    async def stream_confined_file(
        self, container_id: str, root: str, relative: str, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """A file at `relative` under `root` (see `confined_path`), streamed (`stream_file`)."""
        path = await self.confined_path(container_id, root, relative)
        async for chunk in self.stream_file(container_id, path, start, length):
            yield chunk

    async def stream_file(
        self, container_id: str, path: str, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """The bytes of a regular file in a container from `start`, `length` of them (to its
        end when None), in chunks of at most `STREAM_CHUNK` bytes, read from the engine's
        archive stream as they are sent (never the whole file in memory: the bytes before
        `start` are read and dropped, the archive having no seek). `NotFound` for anything but
        a regular file; each read is one worker-thread call."""
        opened = functools.partial(_open_archived_file, self._client.api, container_id, path)
        try:
            response, extracted = await self._run(opened, f"read {path}")
        except FileNotFoundError as exc:
            raise NotFound(f"{path}: not a regular file", code="FileNotFound") from exc
        try:
            skip = start
            while skip > 0:
                dropped = await self._run(
                    functools.partial(extracted.read, min(skip, STREAM_SKIP)), f"read {path}"
                )
                if not dropped:
                    return
                skip -= len(dropped)
            left = length
            while left is None or left > 0:
                size = STREAM_CHUNK if left is None else min(left, STREAM_CHUNK)
                chunk = await self._run(functools.partial(extracted.read, size), f"read {path}")
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(response.close, limiter=self.limiter)

    async def read_file(self, container_id: str, path: str) -> bytes:
        """The bytes of a regular file in a container (read from the engine's archive as it
        arrives, so held once); `NotFound` for anything else."""

        def read() -> bytes:
            response, extracted = _open_archived_file(self._client.api, container_id, path)
            try:
                return extracted.read()
            finally:
                response.close()

        try:
            return await self._run(read, f"read {path}")
        except FileNotFoundError as exc:
            raise NotFound(f"{path}: not a regular file", code="FileNotFound") from exc

"""Removing what the docker backend made: the containers and volumes it labelled and its record
of pools and jobs. By default only what this state directory's processes made (the label
``jobprep_release.state``), so a cleanup never removes the pools of another run with its own
state directory on a shared engine (another CI job, another app container); with `every_state`,
everything labelled ``jobprep_release.pool`` (for objects whose state directory is lost, or made
by a version without the state label). Nothing without the project's label is touched."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from jobprep_release.backends.docker.core.store import (
    StateStore,
    Tracker,
    default_state_dir,
    unusable_state_dir,
)
from jobprep_release.backends.docker.node.engine import POOL_LABEL, STATE_LABEL, Engine
from jobprep_release.backends.docker.settings import DockerSettings
from jobprep_release.backends.docker.sharing import known_identity, state_identity
from jobprep_release.backends.errors import StateUnreadable


@dataclass(slots=True)
class Leftovers:
    """What carries the project's label on the engine, by pool: in the cleanup's scope, and
    (`others`) outside it."""

    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    pools: set[str] = field(default_factory=set)
    others: Leftovers | None = None


async def find_leftovers(
    settings: DockerSettings, pool_id: str | None = None, *, every_state: bool = False
) -> Leftovers:
    """What carries the label (of `pool_id` only, when given), made with this state directory
    unless `every_state`."""
    engine = await Engine.connect(settings.docker_host)
    try:
        if every_state:
            return await _find(engine, pool_id, None)
        store = StateStore(settings.state_dir or default_state_dir(), await engine.engine_id())
        try:
            identity = await anyio.to_thread.run_sync(known_identity, store)
        except OSError as exc:
            raise unusable_state_dir(store.path.parent, exc) from exc
        return await _find(engine, pool_id, identity or "")
    finally:
        await engine.close()


async def _find(engine: Engine, pool_id: str | None, identity: str | None) -> Leftovers:
    """What carries the label, of `pool_id` only when given; made with the state `identity`
    (None: any; "": none yet), the rest in `others`."""
    found, others = Leftovers(), Leftovers()
    for container in await engine.list_containers({POOL_LABEL: pool_id}):
        ours = identity is None or container.labels.get(STATE_LABEL) == identity
        into = found if ours else others
        into.containers.append(container.name)
        into.pools.add(container.labels.get(POOL_LABEL, ""))
    for volume in await engine.list_volumes({POOL_LABEL: pool_id}):
        labels = volume.attrs.get("Labels") or {}
        into = found if identity is None or labels.get(STATE_LABEL) == identity else others
        into.volumes.append(volume.name)
        into.pools.add(labels.get(POOL_LABEL, ""))
    found.others = others
    return found


async def remove_everything(
    settings: DockerSettings, pool_id: str | None = None, *, every_state: bool = False
) -> Leftovers:
    """Remove every labelled container and volume (of `pool_id` only, when given) made with
    this state directory (with `every_state`: whichever made it) and forget those pools and
    their jobs; return what was removed. Waits (state lock) while another process uses the
    backend's state. Raises `StateUnreadable` (the state's file named), with nothing removed,
    when the state cannot be read."""
    engine = await Engine.connect(settings.docker_host)
    store = StateStore(settings.state_dir or default_state_dir(), await engine.engine_id())
    try:
        await store.acquire()
    except StateUnreadable:
        await engine.close()
        raise
    try:
        # Read first: a state that cannot be read stops the cleanup before anything goes.
        state = await store.load()
        identity = None if every_state else await anyio.to_thread.run_sync(state_identity, store)
        found = await _find(engine, pool_id, identity)
        if identity is not None:
            engine.scope = {STATE_LABEL: identity}
        for container in await engine.list_containers({POOL_LABEL: pool_id}):
            await engine.remove_container(container.id)
        for name in found.volumes:
            await engine.remove_volume(name)
        saved = Tracker()
        saved.prime(state)
        forgotten = {pool.lower() for pool in found.pools} if pool_id else set(state.pools)
        for key in forgotten:
            state.pools.pop(key, None)
        for key, job in list(state.jobs.items()):
            if job.spec.pool_id.lower() in forgotten:
                del state.jobs[key]
        await store.write(await saved.changes(state))
        return found
    finally:
        store.release()
        await engine.close()

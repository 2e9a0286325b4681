"""Removing everything the docker backend made: every container and volume it labelled, and
its record of pools and jobs. Nothing without the project's label is touched."""

from __future__ import annotations

from dataclasses import dataclass, field

from jobprep_release.backends.docker.core.store import StateStore, Tracker, default_state_dir
from jobprep_release.backends.docker.node.engine import POOL_LABEL, Engine
from jobprep_release.backends.docker.settings import DockerSettings, unusable_state_dir


@dataclass(slots=True)
class Leftovers:
    """What carries the project's label on the engine, by pool."""

    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    pools: set[str] = field(default_factory=set)


async def find_leftovers(settings: DockerSettings, pool_id: str | None = None) -> Leftovers:
    """What carries the label (of `pool_id` only, when given)."""
    engine = await Engine.connect(settings.docker_host)
    try:
        return await _find(engine, pool_id)
    finally:
        await engine.close()


async def _find(engine: Engine, pool_id: str | None) -> Leftovers:
    found = Leftovers()
    labels = {POOL_LABEL: pool_id}
    for container in await engine.list_containers(labels):
        found.containers.append(container.name)
        found.pools.add(container.labels.get(POOL_LABEL, ""))
    for volume in await engine.list_volumes(labels):
        found.volumes.append(volume.name)
        found.pools.add((volume.attrs.get("Labels") or {}).get(POOL_LABEL, ""))
    return found


async def remove_everything(settings: DockerSettings, pool_id: str | None = None) -> Leftovers:
    """Remove every labelled container and volume (of `pool_id` only, when given) and forget
    those pools and their jobs; return what was removed. Waits (state lock) while another
    process uses the backend's state. Raises `StateUnreadable` (the state's file named), with
    nothing removed, when the state cannot be read."""
    engine = await Engine.connect(settings.docker_host)
    store = StateStore(settings.state_dir or default_state_dir(), await engine.engine_id())
    try:
        await store.acquire()
    except OSError as exc:
        await engine.close()
        raise unusable_state_dir(store.path.parent, exc) from exc
    try:
        # Read first: a state that cannot be read stops the cleanup before anything goes.
        state = await store.load()
        found = await _find(engine, pool_id)
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

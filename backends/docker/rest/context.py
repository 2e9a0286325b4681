"""What every handler of the endpoint shares: the service (any `EndpointService`), deletions.

Deletes answer 202 at once, as the service does, and run in the endpoint's task group while the
object reads as ``deleting``; an endpoint stopped in the middle of one finishes it when it starts
again (`resume_deletions`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio.abc
import structlog
from aiohttp import web

from jobprep_release.backends.base import JobState, PoolState
from jobprep_release.backends.docker.rest.auth import SharedKey
from jobprep_release.backends.docker.rest.errors import RestError
from jobprep_release.backends.docker.rest.interface import EndpointService
from jobprep_release.backends.errors import JobPrepReleaseError

log = structlog.get_logger("jobprep_release.endpoint")


@dataclass
class Context:
    """The endpoint's state besides the service's own."""

    service: EndpointService
    keys: SharedKey
    group: anyio.abc.TaskGroup
    deleting_pools: set[str] = field(default_factory=set)
    deleting_jobs: set[str] = field(default_factory=set)

    def pool_deleting(self, pool_id: str) -> bool:
        return pool_id.lower() in self.deleting_pools

    def job_deleting(self, job_id: str) -> bool:
        return job_id.lower() in self.deleting_jobs

    def refuse_if_pool_deleting(self, pool_id: str) -> None:
        if self.pool_deleting(pool_id):
            raise RestError(409, "PoolBeingDeleted", f"The pool {pool_id} is being deleted.")

    def refuse_if_job_deleting(self, job_id: str) -> None:
        if self.job_deleting(job_id):
            raise RestError(409, "JobBeingDeleted", f"The job {job_id} is being deleted.")

    def delete_pool_later(self, pool_id: str) -> None:
        self._later(self.deleting_pools, f"pool:{pool_id}", pool_id, self.service.delete_pool)

    def delete_job_later(self, job_id: str) -> None:
        self._later(self.deleting_jobs, f"job:{job_id}", job_id, self.service.delete_job)

    def _later(
        self,
        pending: set[str],
        what: str,
        object_id: str,
        delete: Callable[[str], Awaitable[None]],
    ) -> None:
        pending.add(object_id.lower())

        async def run() -> None:
            try:
                await delete(object_id)
            except JobPrepReleaseError as exc:
                log.warning("delete failed", what=what, error=exc.one_line())
            except Exception:
                log.exception("delete failed", what=what)
            else:
                log.info("deleted", what=what)
            finally:
                pending.discard(object_id.lower())

        self.group.start_soon(run)

    async def resume_deletions(self) -> None:
        """Finish deletes that an earlier endpoint (or app) started and did not end."""
        for job in await self.service.list_jobs():
            if job.state is JobState.DELETING:
                self.delete_job_later(job.id)
        for pool in await self.service.list_pools():
            if pool.state is PoolState.DELETING:
                self.delete_pool_later(pool.id)


CONTEXT = web.AppKey("context", Context)


def context(request: web.Request) -> Context:
    return request.app[CONTEXT]


def base_url(request: web.Request) -> str:
    """The account URL as the client addressed it (``http://127.0.0.1:8089``)."""
    return f"{request.scheme}://{request.host}"

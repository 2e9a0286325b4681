"""Ctrl-C and SIGTERM: the first stops the run cleanly, a second exits at once.

Stopping cleanly means: the sample's work is cancelled between two steps (the docker backend's
state is written atomically, so nothing is half-written), then, within a bounded time, either
everything is deleted (the user gave `--yes`) or the job is terminated so its running tasks end
and its release tasks run, and the user is told what remains and how to remove it.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import structlog

from jobprep_release.backends.base import BatchBackend, JobState
from jobprep_release.backends.errors import BackendError, NotFound
from jobprep_release.options import EXIT_INTERRUPTED, Answer, SampleOptions

TIDY_LIMIT = 120.0

log = structlog.get_logger("jobprep_release.interrupts")


class Interrupts:
    """Watches for SIGINT/SIGTERM; `scope` is the cancel scope the first one cancels."""

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.signalled = False
        self._guards: list[anyio.CancelScope] = []
        self._hooks: list[Callable[[], Awaitable[None]]] = []

    def guard(self) -> anyio.CancelScope:
        """A further scope the first signal cancels (at once when it came already): for a
        wait before `scope` is entered, such as opening the backend."""
        guard = anyio.CancelScope()
        if self.signalled:
            guard.cancel()
        self._guards.append(guard)
        return guard

    def drop(self, guard: anyio.CancelScope) -> None:
        """Signals no longer cancel `guard`."""
        self._guards.remove(guard)

    def on_signal(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` at the first signal, before anything is cancelled and before the
        ``stopping`` line (shielded; it must be quick): for what must not wait for the run's
        work to unwind, such as a holder of the docker backend's state letting no other run
        attach to it."""
        self._hooks.append(hook)

    async def watch(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for received in signals:
                if self.signalled:
                    print("stopped at once (second signal)", file=sys.stderr, flush=True)
                    os._exit(EXIT_INTERRUPTED)
                self.signalled = True
                with anyio.CancelScope(shield=True):
                    for hook in self._hooks:
                        await hook()
                name = signal.Signals(received).name
                print(
                    f"stopping ({name}); press Ctrl-C again to exit at once",
                    file=sys.stderr,
                    flush=True,
                )
                self.scope.cancel()
                for guard in self._guards:
                    guard.cancel()


@dataclass(frozen=True, slots=True)
class Tidied:
    """What the tidy-up did: the line telling the user, and what it deleted (for `--json`)."""

    line: str
    job_deleted: bool = False
    pool_deleted: bool = False


async def tidy(backend: BatchBackend, options: SampleOptions, answer: Answer) -> Tidied:
    """Leave the run's objects in a clean state; say what was done."""
    deleted: list[str] = []
    line = "interrupted"
    with anyio.CancelScope(shield=True), anyio.move_on_after(TIDY_LIMIT) as limit:
        try:
            if answer is Answer.YES:
                line = await _delete_everything(backend, options, deleted)
            else:
                line = await _end_the_job(backend, options)
        except BackendError as exc:
            line = f"interrupted; tidying up failed: {exc.one_line()}"
    if limit.cancelled_caught:
        line = "interrupted; tidying up took too long and was abandoned"
    return Tidied(line, job_deleted="job" in deleted, pool_deleted="pool" in deleted)


async def _delete_everything(
    backend: BatchBackend, options: SampleOptions, deleted: list[str]
) -> str:
    """Delete the job and the pool; `deleted` gets "job" and "pool" as each is deleted."""
    if await backend.find_job(options.job_id) is not None:
        await backend.delete_job(options.job_id)
        deleted.append("job")
    try:
        await backend.delete_pool(options.pool_id)
        deleted.append("pool")
    except NotFound:
        pass
    ids = {"job": f"job {options.job_id}", "pool": f"pool {options.pool_id}"}
    names = " and ".join(ids[kind] for kind in deleted)
    return f"interrupted; deleted {names or 'nothing (nothing was created)'}"


async def _end_the_job(backend: BatchBackend, options: SampleOptions) -> str:
    job = await backend.find_job(options.job_id)
    ended = ""
    if job is not None and job.state is JobState.ACTIVE:
        await backend.terminate_job(options.job_id)
        deadline = anyio.current_time() + options.job_timeout.total_seconds()
        while (await backend.get_job(options.job_id)).state is not JobState.COMPLETED:
            if anyio.current_time() > deadline:
                break
            await backend.wait_for_change(backend.poll_interval)
        ended = (
            f"job {options.job_id} was terminated (its running tasks ended, the others will "
            "not run); "
        )
    remains = [f"pool {options.pool_id}"] + ([f"job {options.job_id}"] if job else [])
    # A terminated job takes no more tasks: the next run reports how it ended, not more work.
    again = "see how the job ended" if ended else "carry on"
    return (
        f"interrupted; {ended}{' and '.join(remains)} remain: run again to {again}, "
        "with --yes to delete them"
    )

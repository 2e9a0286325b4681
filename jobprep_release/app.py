"""The commands, run: the sample (with clean interrupts), `status` and `cleanup`."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import structlog

from jobprep_release.backends.base import BatchBackend
from jobprep_release.backends.errors import Conflict
from jobprep_release.console import Console
from jobprep_release.flow import SampleOutcome, run_sample
from jobprep_release.interrupts import Interrupts, tidy
from jobprep_release.options import EXIT_INTERRUPTED, EXIT_TASKS_FAILED, Answer

if TYPE_CHECKING:
    from jobprep_release.cli import Invocation
    from jobprep_release.storage_use import Prepared

log = structlog.get_logger("jobprep_release.app")


async def run(invocation: Invocation, backend: BatchBackend) -> int:
    """Run the sample; the first SIGINT/SIGTERM stops it cleanly, a second exits at once."""
    interrupts = Interrupts()
    async with anyio.create_task_group() as group:
        group.start_soon(interrupts.watch)
        status = await _run_sample(invocation, backend, interrupts)
        group.cancel_scope.cancel()
    return status


async def _run_sample(invocation: Invocation, backend: BatchBackend, interrupts: Interrupts) -> int:
    args = invocation.args
    live = not args.json and not args.no_progress and sys.stdout.isatty()
    console = Console(invocation.answer, out=sys.stderr if args.json else None, live=live)
    outcomes: list[SampleOutcome] = []

    stdout_closed = False

    async def sample() -> None:
        # In a task of its own: the signal cancels this task only, so the tidying below runs
        # in a task no cancellation was ever aimed at.
        nonlocal stdout_closed
        try:
            with interrupts.scope:
                outcomes.append(await run_sample(backend, console, invocation.options, storage))
        except BrokenPipeError:
            # The reader of stdout went away (`| head`): stop as a signal stops the run, with
            # nothing more written there (Python's own flush at exit would fail again).
            stdout_closed = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)

    # Opening may wait (for the docker backend's state, held by another run): the first
    # signal stops that wait too, and nothing was created then. Once open (and the storage
    # the run asks for ready), the guard is dropped: signals go to the sample's own scope.
    opened = False
    with interrupts.guard() as opening:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(backend)
            # Stopping (a signal), a holder of the docker backend's state lets no run attach
            # from then on: one started meanwhile waits for the state, then holds it.
            withdraw = getattr(backend, "withdraw", None)
            if withdraw is not None:
                interrupts.on_signal(withdraw)
            storage = await _storage(invocation, stack)
            opened = True
            interrupts.drop(opening)
            try:
                async with anyio.create_task_group() as group:
                    group.start_soon(sample)
            except Exception:
                # This run failed, but runs attached to its service may still be using it.
                if not interrupts.signalled:
                    await _linger(backend, interrupts)
                raise
            if interrupts.signalled or not outcomes:
                if withdraw is not None:  # a signal before the hook was set: not yet done
                    await withdraw()
                message = await tidy(backend, invocation.options, invocation.answer)
                if stdout_closed:
                    message = f"stdout was closed; {message}"
                print(message, file=sys.stderr)
                return EXIT_INTERRUPTED
            if not await _linger(backend, interrupts):
                print("stopped waiting for the other runs", file=sys.stderr)
                return EXIT_INTERRUPTED
    if not opened:
        print("interrupted; nothing was created", file=sys.stderr)
        return EXIT_INTERRUPTED
    (outcome,) = outcomes
    if args.json:
        from jobprep_release import report

        print(report.render(report.build(args.backend, invocation.options, outcome)))
    if outcome.succeeded:
        return 0
    failed = outcome.failed_tasks + [f"prep/release on {n}" for n in outcome.failed_prep_release]
    print(f"error: the sample ran, but these failed: {', '.join(failed)}", file=sys.stderr)
    return EXIT_TASKS_FAILED


async def _linger(backend: BatchBackend, interrupts: Interrupts) -> bool:
    """As the process holding the docker backend's state, wait for the runs attached to its
    service to end (`jobprep_release.attach`); False when a signal stopped the wait."""
    linger = getattr(backend, "linger", None)
    if linger is None:
        return True
    with interrupts.guard() as waiting:
        await linger(lambda line: print(line, file=sys.stderr, flush=True))
    interrupts.drop(waiting)
    return not waiting.cancelled_caught


async def _storage(invocation: Invocation, stack: contextlib.AsyncExitStack) -> Prepared | None:
    """The storage the run's use cases need (None when it asks for none): Azurite started
    where the nodes reach it (stopped when the run ends) or the account named; its containers
    made and the tasks' SAS URLs signed."""
    options = invocation.options
    if not options.uses_storage:
        return None
    from jobprep_release import storage_use  # with azurite's helpers: only a run using storage

    connection_string = options.storage_connection_string or ""
    if options.azurite:
        from jobprep_release import azurite
        from jobprep_release.backends.docker.backend import node_reachable_host

        host = await node_reachable_host(getattr(invocation.args, "docker_host", None))
        emulator = await stack.enter_async_context(azurite.serving(host))
        log.info("Azurite started for the run", url=emulator.account_url)
        connection_string = emulator.connection_string
    use = storage_use.StorageUse(
        connection_string=connection_string,
        stage_container=options.stage_container,
        logs_container=options.logs_container,
    )
    return await storage_use.prepare(use)


async def show_status(backend: BatchBackend, job_id: str) -> int:
    """The job's preparation and release task settings and their status on each node."""
    console = Console()
    async with backend:
        try:
            job = await backend.get_job(job_id)
            spec = await backend.get_job_spec(job_id)
            try:
                statuses = await backend.list_prep_release_status(job_id)
            except Conflict:
                statuses = []
        finally:
            # As the docker backend's holder, a run may have attached meanwhile.
            await _linger(backend, Interrupts())
    console.job_status(job, spec, statuses)
    return 0


async def clean_up(
    docker_host: str | None,
    state_dir: Path | None,
    pool_id: str | None,
    answer: Answer,
    *,
    every_state: bool = False,
) -> int:
    """Remove what the docker backend created with this state directory (`every_state`: with
    any), after saying what it is."""
    from jobprep_release.backends.docker import DockerSettings
    from jobprep_release.backends.docker.cleanup import find_leftovers, remove_everything

    settings = DockerSettings(docker_host=docker_host, state_dir=state_dir)
    console = Console(answer)
    found = await find_leftovers(settings, pool_id, every_state=every_state)
    console.leftovers(sorted(found.pools), found.containers, found.volumes, pool_id)
    if found.others is not None:
        others = found.others
        console.elsewhere(sorted(others.pools), len(others.containers), len(others.volumes))
    if not found.containers and not found.volumes:
        return 0
    if await console.confirm("Remove them?", at_end_of_input=False):
        removed = await remove_everything(settings, pool_id, every_state=every_state)
        console.removed(len(removed.containers), len(removed.volumes))
    else:
        console.line("Nothing removed.")
    return 0

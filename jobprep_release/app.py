"""The commands, run: the sample (with clean interrupts), `status` and `cleanup`."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import structlog

from jobprep_release.backends.base import BatchBackend, JobState, TaskState
from jobprep_release.backends.errors import Conflict, NotFound
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
    # How a stopped run ends (outcome, status, line): written once the backend is closed, so
    # that an error closing it cannot follow a `--json` document with a second one.
    stopped: tuple[SampleOutcome, int, str] | None = None
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
                tidied = await tidy(backend, invocation.options, invocation.answer)
                reached = outcomes[0] if outcomes else SampleOutcome()
                reached.job_deleted |= tidied.job_deleted
                reached.pool_deleted |= tidied.pool_deleted
                stopped = (reached, EXIT_INTERRUPTED, tidied.line)
            elif not await _linger(backend, interrupts):
                stopped = (outcomes[0], EXIT_INTERRUPTED, "stopped waiting for the other runs")
    if not opened:
        stopped = (SampleOutcome(), EXIT_INTERRUPTED, "interrupted; nothing was created")
    if stopped is not None:
        if stdout_closed:
            print(f"stdout was closed; {stopped[2]}", file=sys.stderr)
            return stopped[1]
        return _end(invocation, *stopped)
    (outcome,) = outcomes
    if outcome.succeeded:
        return _end(invocation, outcome, 0)
    message = f"the sample ran, but {_not_succeeded(outcome, invocation.options.job_id)}"
    return _end(invocation, outcome, EXIT_TASKS_FAILED, f"error: {message}")


def _not_succeeded(outcome: SampleOutcome, job_id: str) -> str:
    """What did not exit 0, by why: failed; ended by the job's termination while running;
    never run, the job terminated first (Batch schedules no task of a terminated job: its
    active tasks stay active; ../shared/reference/batch-semantics.md, "Terminate Job"). The
    last two follow a run interrupted before its tasks were done, whose tidy-up terminated
    the job."""
    job = outcome.job
    terminated_at = None
    if job is not None and job.previous_state is JobState.TERMINATING:
        terminated_at = job.previous_state_transition_time
    failed, ended, never_ran = [], [], []
    for task in outcome.tasks:
        info = task.execution_info
        if info.exit_code == 0:
            continue
        if task.state is not TaskState.COMPLETED:
            never_ran.append(task.id)
        elif (
            info.failure_info is not None
            and info.failure_info.code == "TaskEnded"
            and terminated_at is not None
            and info.end_time is not None
            and info.end_time >= terminated_at
        ):
            ended.append(task.id)
        else:
            failed.append(task.id)
    failed += [f"prep/release on {node_id}" for node_id in outcome.failed_prep_release]
    parts = []
    if failed:
        parts.append(f"these failed: {', '.join(failed)}")
    if ended:
        parts.append(
            f"job {job_id} was terminated while these ran, ending them: {', '.join(ended)}"
        )
    if never_ran:
        parts.append(
            f"job {job_id} was terminated before these ran, so they never will: "
            + ", ".join(never_ran)
        )
    return "; ".join(parts)


def _end(invocation: Invocation, outcome: SampleOutcome, status: int, line: str = "") -> int:
    """Write the `--json` document (when asked for) and then `line` on stderr; return
    `status`."""
    if invocation.args.json:
        from jobprep_release import report  # only a run with --json

        document = report.build(
            invocation.args.backend,
            invocation.options,
            outcome,
            status=status,
            message=line.removeprefix("error: "),
        )
        print(report.render(document))
    if line:
        print(line, file=sys.stderr)
    return status


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
            try:
                job = await backend.get_job(job_id)
            except NotFound as exc:
                if exc.hint:
                    raise
                raise NotFound(
                    exc.message,
                    code=exc.code,
                    hint="the sample deletes its job at its end unless run with --keep or "
                    "answered no; give --job-id for another job",
                ) from exc
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
    others = found.others
    elsewhere = others is not None and bool(others.containers or others.volumes)
    console.leftovers(
        sorted(found.pools), found.containers, found.volumes, pool_id, others=elsewhere
    )
    if others is not None:
        console.elsewhere(sorted(others.pools), len(others.containers), len(others.volumes))
    if not found.containers and not found.volumes:
        return 0
    if await console.confirm("Remove them?", at_end_of_input=False):
        removed = await remove_everything(settings, pool_id, every_state=every_state)
        console.removed(len(removed.containers), len(removed.volumes))
    else:
        console.line("Nothing removed.")
    return 0

"""A node's hello on the fake executor: what the core asks a node about when it says hello,
and that a hello repeated on the same boot loses nothing that runs there."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from jobprep_release.backends.base import JobPreparationTaskSpec, TaskState
from jobprep_release.backends.docker.core import FakeClock, FakeExecutor, FakeOutcome, FakeStart
from jobprep_release.backends.docker.core.environment import SHARED_DIR
from tests.core.harness import JOB, job_spec, pool_spec, running_core, tasks

SHARED_FILE = f"{SHARED_DIR}/job_prep_and_release.txt"
PREP = JobPreparationTaskSpec("/bin/prep")


class AgentRecordingLate(FakeExecutor):
    """A fake whose nodes answer a query as the Docker node's agent can: a process it was
    asked to start in this very instant has not recorded itself yet, so the node shows no
    trace of it (and reports it lost) although it runs."""

    async def query_processes(self, node_id: str, keys: Sequence[str]) -> None:
        now = self.clock.now()
        fresh = {s.key for s in self.starts if s.node_id == node_id and s.time == now}
        node = self.nodes[node_id]
        hidden = {key: node.running.pop(key) for key in keys if key in fresh}
        await super().query_processes(node_id, keys)
        node.running.update(hidden)


def sample_like(fake: FakeExecutor) -> Callable[[FakeStart], FakeOutcome]:
    """The sample's commands on `fake`: the preparation task truncates the node's shared file,
    each task appends its id. The first preparation task is slow (10 s), any later one 1 s."""

    def script(start: FakeStart) -> FakeOutcome:
        if start.task_id == "jobpreparation":
            first = len([s for s in fake.starts if s.task_id == "jobpreparation"]) == 1
            header = f"{start.node_id} tasks:\n".encode()
            return FakeOutcome(duration=10.0 if first else 1.0, files={SHARED_FILE: header})
        return FakeOutcome(duration=1.0, appends={SHARED_FILE: f"  {start.task_id}\n".encode()})

    return script


async def test_a_repeated_hello_loses_no_preparation_task_and_no_task_append() -> None:
    # The Docker node's agent says hello when it starts and again when its keeper asks; the
    # core may start the preparation task between the two. Seen under load: the second hello
    # had the node asked about the just-started preparation task, the agent had no trace of
    # it yet, the core ran a second one, and the first, still running, truncated the shared
    # file after task001 had appended to it.
    fake = AgentRecordingLate(FakeClock())
    fake.outcome = sample_like(fake)
    async with running_core(fake=fake) as core:
        await core.service.create_pool(pool_spec(1))
        await core.settle()
        (node_id,) = await core.node_ids()
        await core.service.create_job(job_spec(PREP))
        await core.service.add_tasks(JOB, tasks(2))
        await core.settle()
        assert [s.task_id for s in core.starts_of("jobpreparation")] == ["jobpreparation"]
        # The node says hello again on the same boot (the executor attaches to it again).
        fake.create_node(fake.nodes[node_id].setup)
        await core.settle()
        for _ in range(15):
            await core.advance(1.0)
        assert fake.file_text(node_id, SHARED_FILE) == f"{node_id} tasks:\n  task001\n  task002\n"
        assert len(core.starts_of("jobpreparation")) == 1
        for task in await core.service.list_tasks(JOB):
            assert task.state is TaskState.COMPLETED
            assert task.execution_info.requeue_count == 0

"""Autoscale on the core over the fake executor, with a clock the tests move: the formula set
at Add Pool and by Enable Autoscale, evaluated at once and then every evaluation interval, its
targets applied through the pool's resize; samples every 30 s; Evaluate (not applied),
Disable, and the service's refusals. Expected values follow the REST reference (Enable,
Evaluate, Disable Pool Auto Scale) and the documentation's autoscale article."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobprep_release.backends.base import NodeState, PoolSpec
from jobprep_release.backends.docker.core import (
    FakeClock,
    FakeExecutor,
    FakeOutcome,
    FakeStart,
    MemoryStore,
)
from jobprep_release.backends.docker.core.autoscaling import FIRST_EVALUATION_DELAY, FormulaRefused
from jobprep_release.backends.errors import Conflict, InvalidRequest, NotSupported, ServiceError
from tests.autoscale.test_formula import PENDING_TASKS_FORMULA
from tests.core.harness import JOB, POOL, Core, job_spec, pool_spec, running_core, tasks

FIVE_MINUTES = timedelta(minutes=5)
SERVICE_DEFAULTS = ";$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"


def long_tasks(start: FakeStart) -> FakeOutcome:
    return FakeOutcome(duration=100_000)


def autoscaled(formula: str, interval: timedelta | None = FIVE_MINUTES) -> PoolSpec:
    return pool_spec(
        nodes=0,
        enable_auto_scale=True,
        auto_scale_formula=formula,
        auto_scale_evaluation_interval=interval,
    )


async def first_run(core: Core) -> None:
    """Let the first evaluation after enabling happen (a few seconds later, as the service)."""
    await core.advance(FIRST_EVALUATION_DELAY)


async def minutes(core: Core, count: float) -> None:
    """Move the clock `count` minutes in 30-second steps (the sampling period)."""
    for _ in range(int(count * 2)):
        await core.advance(30)


async def test_add_pool_evaluates_the_formula_soon_after_and_sets_the_target() -> None:
    async with running_core() as core:
        await core.service.create_pool(autoscaled("$TargetDedicatedNodes=2"))
        await core.settle()
        pool = await core.service.get_pool(POOL)
        # As the recorded service a second after enabling: no run yet, the old target.
        assert pool.auto_scale_run is None and pool.target_dedicated_nodes == 0
        await first_run(core)
        pool = await core.service.get_pool(POOL)
        assert pool.target_dedicated_nodes == 2
        assert len(await core.node_ids()) == 2
        run = pool.auto_scale_run
        assert run is not None and run.error is None
        assert run.results == "$TargetDedicatedNodes=2" + SERVICE_DEFAULTS
        assert pool.creation_time is not None
        assert run.timestamp.timestamp() == pool.creation_time.timestamp() + 5
        spec = core.service.pool_spec(POOL)
        assert spec.enable_auto_scale and spec.auto_scale_evaluation_interval == FIVE_MINUTES


async def test_the_formula_is_evaluated_again_each_interval() -> None:
    # Pending tasks drive the target, at most 3: none at first, then 4 tasks without a node.
    formula = "$TargetDedicatedNodes = min(3, $PendingTasks)"
    async with running_core(long_tasks) as core:
        await core.service.create_pool(autoscaled(formula))
        created = core.clock.now()
        await first_run(core)
        assert (await core.service.get_pool(POOL)).target_dedicated_nodes == 0
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(4))
        await minutes(core, 4.5)
        pool = await core.service.get_pool(POOL)
        assert pool.target_dedicated_nodes == 0  # the next evaluation is at 5 minutes
        await minutes(core, 0.5)
        pool = await core.service.get_pool(POOL)
        assert pool.target_dedicated_nodes == 3
        assert pool.auto_scale_run is not None
        assert pool.auto_scale_run.timestamp.timestamp() == created + 305
        assert pool.auto_scale_run.results == "$TargetDedicatedNodes=3" + SERVICE_DEFAULTS
        assert len(await core.node_ids()) == 3


async def test_the_documentations_pending_tasks_formula_on_the_core_samples() -> None:
    # A sample at the pool's creation (t), then one at each step of the clock from t+5 s on
    # (t+35, t+65, ...); 5 tasks pending throughout. First evaluation at t+5: 1 sample of the 6
    # a 180-second window holds (16%): startingNumberOfVMs, 1. The next at t+305: (t+125,
    # t+305] holds the 6 samples t+155 ... t+305, all 5: 100%, average 5, min(25, 5) = 5.
    async with running_core(long_tasks) as core:
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(5))
        await core.service.create_pool(autoscaled(PENDING_TASKS_FORMULA))
        await first_run(core)
        assert (await core.service.get_pool(POOL)).target_dedicated_nodes == 1
        await minutes(core, 5)
        pool = await core.service.get_pool(POOL)
        assert pool.target_dedicated_nodes == 5
        assert pool.auto_scale_run is not None
        assert "pendingTaskSamplePercent=100;pendingTaskSamples=5" in (
            pool.auto_scale_run.results or ""
        )


async def test_a_failed_evaluation_is_recorded_and_changes_nothing() -> None:
    # 10 minutes hold 20 samples; at the first evaluation there is one (5%), 90 wanted.
    formula = (
        "x = $PendingTasks.GetSample(TimeInterval_Minute * 10, 90);\n$TargetDedicatedNodes = 2"
    )
    async with running_core() as core:
        await core.service.create_pool(autoscaled(formula))
        await first_run(core)
        pool = await core.service.get_pool(POOL)
        assert pool.target_dedicated_nodes == 0
        run = pool.auto_scale_run
        assert run is not None and run.results is None and run.error is not None
        assert run.error.code == "InsufficientSampleData"
        assert run.error.message == "Autoscale evaluation failed due to insufficient sample data"
        assert run.error.values == (
            (
                "Message",
                "Line 1, Col 19: Insufficient data from data set: $PendingTasks wanted 90%, "
                "received 5%",
            ),
        )
        # Ten minutes later (t+605) the 20 samples t+35 ... t+605 are there: it applies.
        await minutes(core, 10)
        pool = await core.service.get_pool(POOL)
        assert pool.target_dedicated_nodes == 2
        assert pool.auto_scale_run is not None and pool.auto_scale_run.error is None


async def test_enable_on_a_fixed_pool_then_a_new_interval_restarts_the_schedule() -> None:
    formula = "$TargetDedicatedNodes = $CurrentDedicatedNodes + 1"
    async with running_core() as core:
        await core.service.create_pool(pool_spec(nodes=1))
        await core.settle()
        await core.service.enable_auto_scale(POOL, formula, FIVE_MINUTES)
        await first_run(core)
        assert (await core.service.get_pool(POOL)).target_dedicated_nodes == 2  # 1 + 1
        await minutes(core, 5)
        assert (await core.service.get_pool(POOL)).target_dedicated_nodes == 3  # 2 + 1
        await minutes(core, 2)
        await core.service.enable_auto_scale(POOL, None, timedelta(minutes=10))
        await first_run(core)
        assert (await core.service.get_pool(POOL)).target_dedicated_nodes == 4  # again
        await minutes(core, 9.5)
        assert (await core.service.get_pool(POOL)).target_dedicated_nodes == 4
        await minutes(core, 0.5)
        assert (await core.service.get_pool(POOL)).target_dedicated_nodes == 5


async def test_a_new_formula_alone_keeps_the_schedule() -> None:
    async with running_core() as core:
        await core.service.create_pool(autoscaled("$TargetDedicatedNodes = 1"))
        await first_run(core)
        await minutes(core, 2)
        await core.service.enable_auto_scale(POOL, "$TargetDedicatedNodes = 2")
        await core.settle()
        assert (await core.service.get_pool(POOL)).target_dedicated_nodes == 1
        await minutes(core, 3)
        assert (await core.service.get_pool(POOL)).target_dedicated_nodes == 2


async def test_evaluate_answers_a_run_without_applying_it() -> None:
    async with running_core() as core:
        await core.service.create_pool(autoscaled("$TargetDedicatedNodes = 1"))
        await first_run(core)
        run = await core.service.evaluate_auto_scale(POOL, "$TargetDedicatedNodes=3")
        assert run.results == "$TargetDedicatedNodes=3" + SERVICE_DEFAULTS
        assert run.timestamp.timestamp() == core.clock.now()
        pool = await core.service.get_pool(POOL)
        assert pool.target_dedicated_nodes == 1
        assert pool.auto_scale_run is not None
        assert pool.auto_scale_run.results == "$TargetDedicatedNodes=1" + SERVICE_DEFAULTS
        failed = await core.service.evaluate_auto_scale(POOL, "$TargetDedicatedNodes = y")
        assert failed.results is None and failed.error is not None
        assert failed.error.code == "AutoScalingFormulaEvaluationError"


async def test_disable_keeps_the_targets_and_allows_resizing_again() -> None:
    async with running_core() as core:
        await core.service.create_pool(autoscaled("$TargetDedicatedNodes = 2"))
        await first_run(core)
        with pytest.raises(Conflict) as refused:
            await core.service.resize_pool(POOL, 1)
        assert refused.value.code == "OperationInvalidForCurrentState"
        await core.service.disable_auto_scale(POOL)
        pool = await core.service.get_pool(POOL)
        spec = core.service.pool_spec(POOL)
        assert pool.target_dedicated_nodes == 2 and pool.auto_scale_run is None
        assert not spec.enable_auto_scale and spec.auto_scale_formula is None
        await minutes(core, 5)  # no evaluation any more
        assert (await core.service.get_pool(POOL)).auto_scale_run is None
        await core.service.resize_pool(POOL, 1)
        await core.settle()
        assert (await core.service.get_pool(POOL)).target_dedicated_nodes == 1
        with pytest.raises(Conflict) as not_enabled:
            await core.service.evaluate_auto_scale(POOL, "$TargetDedicatedNodes = 1")
        assert not_enabled.value.code == "OperationInvalidForCurrentState"


async def test_shrinking_removes_nodes() -> None:
    async with running_core() as core:
        await core.service.create_pool(autoscaled("$TargetDedicatedNodes = 3"))
        await first_run(core)
        assert len(await core.node_ids()) == 3
        await core.service.enable_auto_scale(POOL, "$TargetDedicatedNodes = 1", FIVE_MINUTES)
        await first_run(core)
        nodes = await core.service.list_nodes(POOL)
        assert [node.state for node in nodes] == [NodeState.IDLE]


@pytest.mark.parametrize(
    "interval", [timedelta(minutes=4, seconds=59), timedelta(hours=168, seconds=1)]
)
async def test_intervals_outside_5_minutes_to_168_hours_are_refused(interval: timedelta) -> None:
    async with running_core() as core:
        with pytest.raises(InvalidRequest) as refused:
            await core.service.create_pool(autoscaled("$TargetDedicatedNodes = 1", interval))
        assert refused.value.code == "InvalidPropertyValue"
        await core.service.create_pool(pool_spec(nodes=0))
        with pytest.raises(InvalidRequest):
            await core.service.enable_auto_scale(POOL, "$TargetDedicatedNodes = 1", interval)


async def test_formulas_the_service_refuses() -> None:
    async with running_core() as core:
        await core.service.create_pool(pool_spec(nodes=0))
        with pytest.raises(FormulaRefused) as syntax:
            await core.service.enable_auto_scale(POOL, "$TargetDedicatedNodes = (1")
        assert syntax.value.code == "AutoScalingFormulaSyntaxError"
        assert syntax.value.values == (
            ("Message", "Line 1, Col 27: expected ')', found the end of the formula"),
        )
        with pytest.raises(InvalidRequest) as missing:
            await core.service.enable_auto_scale(POOL, None, FIVE_MINUTES)
        assert missing.value.code == "MissingRequiredProperty"
        with pytest.raises(NotSupported) as cpu:
            await core.service.enable_auto_scale(
                POOL, "$TargetDedicatedNodes = avg($CPUPercent.GetSample(10)) > 0.7 ? 2 : 1"
            )
        assert "$CPUPercent" in str(cpu.value)
        assert not core.service.pool_spec(POOL).enable_auto_scale


async def test_low_priority_target_and_the_deallocation_option_apply() -> None:
    # Two nodes each running a long task; the formula keeps one dedicated node, adds a
    # low-priority one, and lets the leaving node finish its task (taskcompletion).
    formula = """$TargetDedicatedNodes = 1;
    $TargetLowPriorityNodes = 1;
    $NodeDeallocationOption = taskcompletion;"""
    async with running_core(long_tasks) as core:
        await core.service.create_pool(pool_spec(nodes=2))
        await core.service.create_job(job_spec())
        await core.service.add_tasks(JOB, tasks(2))
        await core.settle()
        await core.service.enable_auto_scale(POOL, formula, FIVE_MINUTES)
        await first_run(core)
        pool = await core.service.get_pool(POOL)
        assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (1, 1)
        nodes = await core.service.list_nodes(POOL)
        states = sorted((node.is_dedicated, node.state.value) for node in nodes)
        assert states == [(False, "idle"), (True, "leavingpool"), (True, "running")]
        assert [(await core.task(t)).state.value for t in ("task001", "task002")] == [
            "running",
            "running",
        ]


async def test_enable_at_most_once_every_30_seconds() -> None:
    # REST Enable Pool Auto Scale: not more than once every 30 seconds for the same pool.
    async with running_core() as core:
        await core.service.create_pool(pool_spec(nodes=0))
        await core.service.enable_auto_scale(POOL, "$TargetDedicatedNodes = 0")
        await core.advance(29)
        with pytest.raises(ServiceError) as refused:
            await core.service.enable_auto_scale(POOL, "$TargetDedicatedNodes = 1")
        assert refused.value.code == "TooManyEnableAutoScaleRequests"
        await core.advance(1)
        await core.service.enable_auto_scale(POOL, "$TargetDedicatedNodes = 1")
        assert core.service.pool_spec(POOL).auto_scale_formula == "$TargetDedicatedNodes = 1"


async def test_a_restarted_core_keeps_the_schedule_and_the_last_run() -> None:
    fake = FakeExecutor(FakeClock())
    store = MemoryStore()
    formula = "$TargetDedicatedNodes = $CurrentDedicatedNodes + 1"
    async with running_core(fake=fake, store=store) as core:
        await core.service.create_pool(autoscaled(formula))
        await first_run(core)
        await minutes(core, 1)
    async with running_core(fake=fake, store=store) as core:
        pool = await core.service.get_pool(POOL)
        assert pool.target_dedicated_nodes == 1
        assert pool.auto_scale_run is not None
        assert pool.auto_scale_run.results == "$TargetDedicatedNodes=1" + SERVICE_DEFAULTS
        await minutes(core, 4)  # the 5-minute evaluation, on the restarted core
        assert (await core.service.get_pool(POOL)).target_dedicated_nodes == 2

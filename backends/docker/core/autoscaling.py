"""Autoscale on the core: Enable, Evaluate and Disable Autoscale, and the periodic evaluation
that sets a pool's targets from its formula (the language: `core.autoscale`).

As the service does (REST Enable/Evaluate/Disable Pool Auto Scale; learn.microsoft.com,
"Create a formula to automatically scale compute nodes in a Batch pool"):

- Every 30 s of the core's clock each pool's measured variables are sampled (`Autoscaler.run`).
- Enabling autoscale (Add Pool with ``enableAutoScale``, or Enable Autoscale) checks the
  formula (400 ``AutoScalingFormulaSyntaxError``, ``AutoScalingFormulaTooLong``) and the
  interval (5 minutes to 168 hours, 15 minutes when not given: 400 ``InvalidPropertyValue``);
  a pool newly enabled, or given a new interval, starts its schedule at once: evaluated a few
  seconds later (`FIRST_EVALUATION_DELAY`), then every interval. A new formula alone keeps the
  schedule. Enabling is refused while the pool resizes (409 ``PoolBeingResized``), and within
  30 s of the pool's last Enable Autoscale (503 ``TooManyEnableAutoScaleRequests``).
- Each evaluation records the pool's ``autoScaleRun`` (time, ``results`` or ``error``) and
  applies the targets through `pools.resize_pool` (a target is the formula's double, its
  fraction dropped), unless it failed: then nothing changes.
- Evaluate Autoscale runs a formula on a pool with autoscale enabled (409
  ``OperationInvalidForCurrentState`` otherwise, the endpoint's choice of the documented
  codes) and answers its run without applying or recording it.
- Disable Autoscale keeps the targets as they are and forgets the formula, interval and run.

A formula that reads a resource metric the core does not measure (`names.UNMEASURED`:
``$CPUPercent``, ...) is refused with `NotSupported` naming it, rather than fed made-up samples.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from jobprep_release.backends.base import (
    DEFAULT_AUTO_SCALE_EVALUATION_INTERVAL,
    AllocationState,
    AutoScaleRun,
    AutoScaleRunError,
    ExecutionResult,
    JobState,
    NodeDeallocationOption,
    NodeState,
    PoolState,
    TaskState,
)
from jobprep_release.backends.docker.core import pools, rules
from jobprep_release.backends.docker.core.autoscale import names
from jobprep_release.backends.docker.core.autoscale.errors import FormulaError, evaluation_error
from jobprep_release.backends.docker.core.autoscale.samples import SAMPLE_PERIOD, MetricHistory
from jobprep_release.backends.docker.core.kernel import Core
from jobprep_release.backends.docker.core.records import AutoscaleRecord, PoolRecord, touch
from jobprep_release.backends.errors import (
    BackendError,
    Conflict,
    InvalidRequest,
    NotSupported,
    ServiceError,
)

log = structlog.get_logger("jobprep_release.docker")

if TYPE_CHECKING:  # the formula language loads when a formula is first read
    from jobprep_release.backends.docker.core.autoscale.evaluator import Outcome
    from jobprep_release.backends.docker.core.autoscale.parser import Statement

FIRST_EVALUATION_DELAY = 5.0
"""Seconds from enabling autoscale to the first evaluation. Inferred: the service evaluates
soon after, not during, the request (its recording shows a pool read a second after Enable
Autoscale with no ``autoScaleRun`` and the old target); how soon is not documented."""
ENABLE_SPACING = 30.0
"""Enable Autoscale on one pool at most once every 30 s (REST Enable Pool Auto Scale), else
503 ``TooManyEnableAutoScaleRequests`` (the Batch error-code table)."""
TOO_MANY_ENABLES = "Too many Enable Pool AutoScale requests are issued on the pool."
MIN_INTERVAL = timedelta(minutes=5)
MAX_INTERVAL = timedelta(hours=168)
INVALID_STATE = "The specified operation is not valid for the current state of the resource."
POOL_BEING_RESIZED = (
    "A pool operation was attempted which is not permitted when the pool is in the process "
    "of being resized."
)


class FormulaRefused(InvalidRequest):
    """A formula the service refuses outright (400): `code` ``AutoScalingFormulaSyntaxError``
    or ``AutoScalingFormulaTooLong``, `values` its ``Message`` detail (line, column, why)."""

    def __init__(self, error: FormulaError) -> None:
        super().__init__(f"{error.message} {error.detail}", code=error.code)
        self.sentence = error.message
        self.values = error.values


def compile_checked(formula: str) -> list[Statement]:
    """The formula's statements; `FormulaRefused`, or `NotSupported` naming the unmeasured
    metrics it reads."""
    try:
        from jobprep_release.backends.docker.core.autoscale.parser import parse

        statements = parse(formula)
    except FormulaError as error:
        raise FormulaRefused(error) from None
    from jobprep_release.backends.docker.core.autoscale.evaluator import unmeasured

    missing = unmeasured(statements)
    if missing:
        raise NotSupported(
            f"autoscale formulas reading {', '.join(missing)}: the local service does not "
            "measure its nodes' resource usage",
            code="NotSupported",
        )
    return statements


def refuse_if_autoscaled(pool: PoolRecord) -> None:
    """409 ``OperationInvalidForCurrentState`` for a resize of a pool autoscale sizes (the
    documentation: to resize it by hand, disable autoscale first)."""
    if pool.spec.enable_auto_scale:
        raise Conflict(INVALID_STATE, code="OperationInvalidForCurrentState")


def check_interval(interval: timedelta) -> None:
    """400 ``InvalidPropertyValue`` outside 5 minutes to 168 hours (the service's limits)."""
    if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise InvalidRequest(
            "The value provided for autoScaleEvaluationInterval is invalid: it is 5 minutes to "
            "168 hours",
            code="InvalidPropertyValue",
        )


def measure(core: Core, pool: PoolRecord) -> dict[str, float]:
    """The pool's measured variables now: its jobs' tasks (active and running of its active
    jobs; succeeded and failed of all its jobs) and its nodes."""
    key = pool.spec.id.lower()
    counts = dict.fromkeys(names.MEASURED, 0.0)
    for job in core.state.jobs.values():
        if job.spec.pool_id.lower() != key:
            continue
        for task in job.tasks.values():
            if task.state is TaskState.COMPLETED:
                succeeded = task.run.result is ExecutionResult.SUCCESS
                counts["$SucceededTasks" if succeeded else "$FailedTasks"] += 1
            elif job.state is JobState.ACTIVE:
                running = task.state in (TaskState.RUNNING, TaskState.PREPARING)
                counts["$RunningTasks" if running else "$ActiveTasks"] += 1
    counts["$PendingTasks"] = counts["$ActiveTasks"] + counts["$RunningTasks"]
    members = [node for node in pool.nodes if node.state is not NodeState.LEAVING_POOL]
    dedicated = [node for node in members if node.dedicated]
    counts["$CurrentDedicatedNodes"] = float(len(dedicated))
    counts["$CurrentLowPriorityNodes"] = float(len(members) - len(dedicated))
    counts["$PreemptedNodeCount"] = float(sum(n.state is NodeState.PREEMPTED for n in members))
    counts["$UsableNodeCount"] = float(sum(n.state in rules.USABLE for n in members))
    counts["$SampleNodeCount"] = float(len(members))
    return counts


class Autoscaler:
    """The pools' metric histories and autoscale schedules. `run` it in the core's task group."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self._histories: dict[str, MetricHistory] = {}
        self._pending: dict[str, Outcome] = {}
        """Targets evaluated while the pool was resizing, applied once it is steady."""

    async def run(self) -> None:
        """Sample every pool each 30 s and evaluate the formulas that are due, until
        cancelled."""
        core = self._core
        while True:
            now = core.now()
            wake = SAMPLE_PERIOD
            for key, pool in list(core.state.pools.items()):
                self.sample(pool)
                wake = min(wake, self._histories[key].next_due() - now)
                record = pool.autoscale
                if record is None or pool.state is not PoolState.ACTIVE:
                    continue
                if key in self._pending:
                    await self._apply(pool, self._pending.pop(key))
                if record.next_evaluation <= now:
                    await self._scheduled(pool, record)
                wake = min(wake, record.next_evaluation - now)
            for key in list(self._histories):
                if key not in core.state.pools:
                    del self._histories[key]
            await core.clock.sleep(max(wake, 0.0))

    async def _first(self, key: str) -> None:
        """The first evaluation after enabling, `FIRST_EVALUATION_DELAY` on (unless the loop
        ran it, or autoscale was disabled, first)."""
        core = self._core
        await core.clock.sleep(FIRST_EVALUATION_DELAY)
        pool = core.state.pools.get(key)
        record = pool.autoscale if pool is not None else None
        if pool is None or record is None or pool.state is not PoolState.ACTIVE:
            return
        if record.next_evaluation <= core.now():
            await self._scheduled(pool, record)

    def sample(self, pool: PoolRecord) -> None:
        """Record the pool's measured variables, when a sample is due."""
        history = self._histories.setdefault(pool.spec.id.lower(), MetricHistory())
        now = self._core.now()
        if history.due(now):
            history.record(now, measure(self._core, pool))

    # --- operations ------------------------------------------------------------------------

    async def enable(self, pool_id: str, formula: str | None, interval: timedelta | None) -> None:
        """Enable Autoscale (or change its formula or interval); see the module's docstring."""
        core = self._core
        pool = core.pool(pool_id)
        rules.refuse_if_deleting(pool)
        if pool.allocation_state is not AllocationState.STEADY:
            raise Conflict(POOL_BEING_RESIZED, code="PoolBeingResized")
        spec = pool.spec
        record = pool.autoscale
        now = core.now()
        last = record.enabled_at if record is not None else None
        if last is not None and now - last < ENABLE_SPACING:
            raise ServiceError(TOO_MANY_ENABLES, code="TooManyEnableAutoScaleRequests")
        enabled = spec.enable_auto_scale and record is not None
        if formula is None and (not enabled or interval is None):
            raise InvalidRequest(
                "A required property was not specified in the request body: autoScaleFormula",
                code="MissingRequiredProperty",
            )
        formula = formula if formula is not None else spec.auto_scale_formula
        assert formula is not None
        compile_checked(formula)
        if interval is not None:
            check_interval(interval)
        await self.begin(pool, formula, interval, restart=not enabled or interval is not None)
        assert pool.autoscale is not None
        pool.autoscale.enabled_at = now
        core.changed()

    async def begin(
        self, pool: PoolRecord, formula: str, interval: timedelta | None, *, restart: bool
    ) -> None:
        """Set the pool's formula (`compile_checked` by the caller) and interval (None: keep
        it, or 15 minutes); with `restart`, start its schedule now (the first evaluation
        `FIRST_EVALUATION_DELAY` on).
        Saves the state."""
        core = self._core
        spec = pool.spec
        interval = interval or spec.auto_scale_evaluation_interval
        pool.spec = replace(
            spec,
            enable_auto_scale=True,
            auto_scale_formula=formula,
            auto_scale_evaluation_interval=interval or DEFAULT_AUTO_SCALE_EVALUATION_INTERVAL,
        )
        now = core.now()
        touch(pool, now)
        if restart or pool.autoscale is None:
            pool.autoscale = AutoscaleRecord(next_evaluation=now + FIRST_EVALUATION_DELAY)
            self.sample(pool)
            core.spawn(self._first, pool.spec.id.lower())
        await core.persist()

    async def disable(self, pool_id: str) -> None:
        """Disable Autoscale: the targets stay; the formula, interval and last run go."""
        core = self._core
        pool = core.pool(pool_id)
        rules.refuse_if_deleting(pool)
        pool.spec = replace(
            pool.spec,
            enable_auto_scale=False,
            auto_scale_formula=None,
            auto_scale_evaluation_interval=None,
        )
        pool.autoscale = None
        self._pending.pop(pool.spec.id.lower(), None)
        touch(pool, core.now())
        await core.persist()

    def evaluate(self, pool_id: str, formula: str) -> AutoScaleRun:
        """Evaluate Autoscale: the formula's run on the pool now, neither applied nor
        recorded."""
        pool = self._core.pool(pool_id)
        rules.refuse_if_deleting(pool)
        if not pool.spec.enable_auto_scale:
            raise Conflict(INVALID_STATE, code="OperationInvalidForCurrentState")
        statements = compile_checked(formula)
        self.sample(pool)
        now = self._core.now()
        try:
            outcome = self._outcome(pool, statements)
        except FormulaError as error:
            failure = AutoScaleRunError(error.code, error.message, error.values)
            return AutoScaleRun(timestamp=_stamp(now), error=failure)
        return AutoScaleRun(timestamp=_stamp(now), results=outcome.results)

    # --- evaluations -------------------------------------------------------------------------

    def _outcome(self, pool: PoolRecord, statements: list[Statement]) -> Outcome:
        history = self._histories.get(pool.spec.id.lower()) or MetricHistory()
        current = measure(self._core, pool)
        current["$TaskSlotsPerNode"] = float(pool.spec.task_slots_per_node)
        from jobprep_release.backends.docker.core.autoscale.evaluator import Inputs, evaluate

        inputs = Inputs(
            now=self._core.now(),
            target_dedicated=pool.spec.target_dedicated_nodes,
            target_low_priority=pool.spec.target_low_priority_nodes,
            current=current,
            samples=history.samples,
        )
        outcome = evaluate(statements, inputs)
        dedicated = _node_count(names.TARGET_DEDICATED, outcome.target_dedicated)
        low_priority = _node_count(names.TARGET_LOW_PRIORITY, outcome.target_low_priority)
        if dedicated + low_priority > rules.MAX_NODES:
            raise evaluation_error(
                f"{dedicated} dedicated and {low_priority} low-priority nodes: a local pool has "
                f"at most {rules.MAX_NODES}"
            )
        return outcome

    async def _scheduled(self, pool: PoolRecord, record: AutoscaleRecord) -> None:
        """The pool's evaluation that is due: recorded, applied, the next one scheduled."""
        core = self._core
        now = core.now()
        interval = pool.spec.auto_scale_evaluation_interval or (
            DEFAULT_AUTO_SCALE_EVALUATION_INTERVAL
        )
        record.next_evaluation = now + interval.total_seconds()
        record.run_time = now
        record.results = record.error_code = record.error_message = record.error_detail = None
        try:
            assert pool.spec.auto_scale_formula is not None
            outcome = self._outcome(pool, compile_checked(pool.spec.auto_scale_formula))
        except FormulaError as error:
            record.error_code, record.error_message = error.code, error.message
            record.error_detail = error.detail
            outcome = None
        except BackendError as error:  # a formula refused since (a state from an older core)
            record.error_code, record.error_message = error.code, error.one_line()
            outcome = None
        touch(pool, now)
        core.changed()
        if outcome is not None:
            record.results = outcome.results
            await self._apply(pool, outcome)

    async def _apply(self, pool: PoolRecord, outcome: Outcome) -> None:
        """Set the pool's targets to the outcome's (their fractions dropped), nodes leaving by
        its ``$NodeDeallocationOption``; once the pool is steady, if it is resizing now."""
        dedicated, low_priority = int(outcome.target_dedicated), int(outcome.target_low_priority)
        spec = pool.spec
        if (dedicated, low_priority) == (
            spec.target_dedicated_nodes,
            spec.target_low_priority_nodes,
        ):
            return
        if pool.allocation_state is not AllocationState.STEADY:
            self._pending[spec.id.lower()] = outcome
            return
        try:
            await pools.resize_pool(
                self._core,
                spec.id,
                dedicated,
                target_low_priority_nodes=low_priority,
                deallocation=NodeDeallocationOption(outcome.deallocation),
            )
        except Conflict:  # resizing (or being deleted) after all: tried again once steady
            self._pending[spec.id.lower()] = outcome
        except BackendError as error:  # the evaluation stands; the next one tries again
            log.warning("autoscale could not resize", pool=spec.id, error=error.one_line())


def _node_count(name: str, value: float) -> int:
    """`value` as a node count, its fraction dropped; an evaluation error when it is none."""
    if not math.isfinite(value) or value < 0:
        raise evaluation_error(f"{name} is {value:g}, not a number of nodes")
    return int(value)


def _stamp(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)

"""The names a formula can use: the service-defined variables (those it sets, those it reads,
which of those have sample history), the constants, the functions, the sample methods and a
timestamp's members.

Source: learn.microsoft.com, "Create a formula to automatically scale compute nodes in a Batch
pool" ("Variables", "Types", "Functions", "Obtain sample data").
"""

from __future__ import annotations

TARGET_DEDICATED = "$TargetDedicatedNodes"
TARGET_LOW_PRIORITY = "$TargetLowPriorityNodes"
DEALLOCATION = "$NodeDeallocationOption"

SETTABLE = (TARGET_DEDICATED, TARGET_LOW_PRIORITY, DEALLOCATION)
"""The service-defined variables a formula sets, in the order the service reports them
(Evaluate Autoscale's ``results`` in Microsoft's recording of the service)."""

ALIASES = {"$TargetDedicated": TARGET_DEDICATED, "$TargetLowPriority": TARGET_LOW_PRIORITY}
"""Older names of the targets; the full name's value wins when a formula sets both."""

TASK_METRICS = (
    "$ActiveTasks",
    "$RunningTasks",
    "$PendingTasks",
    "$SucceededTasks",
    "$FailedTasks",
)
NODE_METRICS = (
    "$CurrentDedicatedNodes",
    "$CurrentLowPriorityNodes",
    "$PreemptedNodeCount",
    "$UsableNodeCount",
    "$SampleNodeCount",
)
MEASURED = TASK_METRICS + NODE_METRICS
"""The sampled variables the core measures from its own records, every 30 s."""

UNMEASURED = (
    "$CPUPercent",
    "$WallClockSeconds",
    "$MemoryBytes",
    "$DiskBytes",
    "$DiskReadBytes",
    "$DiskWriteBytes",
    "$DiskReadOps",
    "$DiskWriteOps",
    "$NetworkInBytes",
    "$NetworkOutBytes",
)
"""The resource metrics of the service's node agents, which the core does not measure: a
formula that reads one is refused (501 naming it), never given made-up samples."""

PLAIN = ("$TaskSlotsPerNode",)
"""Read-only service variables without sample history."""

DEALLOCATION_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")

SECOND = 1.0
INTERVALS = {
    "TimeInterval_Zero": 0.0,
    "TimeInterval_100ns": 1e-7,
    "TimeInterval_Microsecond": 1e-6,
    "TimeInterval_Millisecond": 1e-3,
    "TimeInterval_Second": SECOND,
    "TimeInterval_Minute": 60 * SECOND,
    "TimeInterval_Hour": 3600 * SECOND,
    "TimeInterval_Day": 86400 * SECOND,
    "TimeInterval_Week": 7 * 86400 * SECOND,
    "TimeInterval_Year": 365 * 86400 * SECOND,
}
"""The time interval constants, in seconds (a year: 365 days)."""

FUNCTIONS = frozenset(
    {
        "avg", "ceil", "floor", "len", "lg", "ln", "log", "max", "min", "norm", "percentile",
        "rand", "range", "round", "std", "stop", "sum", "time", "val",
    }
)  # fmt: skip
METHODS = frozenset(
    {"GetSample", "GetSamplePeriod", "GetSamplePercent", "HistoryBeginTime", "Count"}
)
TIMESTAMP_MEMBERS = ("year", "month", "day", "weekday", "hour", "minute", "second")


def is_sampled(name: str) -> bool:
    """A service variable with sample history (its methods apply)."""
    return name in MEASURED or name in UNMEASURED


def is_read_only(name: str) -> bool:
    return is_sampled(name) or name in PLAIN


def is_constant(name: str) -> bool:
    return name in INTERVALS or name in DEALLOCATION_OPTIONS

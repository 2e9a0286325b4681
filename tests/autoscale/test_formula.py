"""The autoscale formula language, pure (no core, no Docker): formulas from the documentation
("Create a formula to automatically scale compute nodes in a Batch pool", learn.microsoft.com)
evaluated over values and sample histories given here; each expected value is worked out by
hand from the documented semantics, in the comment beside it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from jobprep_release.backends.docker.core.autoscale import (
    FormulaError,
    Inputs,
    Outcome,
    Sample,
    compile_formula,
    evaluate,
    unmeasured,
)

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a Thursday
MONDAY_NINE = 1_767_603_600.0  # 2026-01-05T09:00:00Z

CURRENT = {
    "$ActiveTasks": 3.0,
    "$RunningTasks": 2.0,
    "$PendingTasks": 5.0,
    "$SucceededTasks": 7.0,
    "$FailedTasks": 1.0,
    "$CurrentDedicatedNodes": 4.0,
    "$CurrentLowPriorityNodes": 0.0,
    "$PreemptedNodeCount": 0.0,
    "$UsableNodeCount": 4.0,
    "$SampleNodeCount": 4.0,
    "$TaskSlotsPerNode": 4.0,
}


def history(name: str, values: Sequence[float], now: float = NOW) -> list[Sample]:
    """`values` as samples 30 s apart, the last one taken at `now`."""
    count = len(values)
    return [Sample(now - 30 * (count - 1 - i), {name: v}) for i, v in enumerate(values)]


def run(
    formula: str,
    samples: Sequence[Sample] = (),
    *,
    now: float = NOW,
    target: float = 0,
    current: Mapping[str, float] = CURRENT,
) -> Outcome:
    inputs = Inputs(now, target, 0, current, samples, rand=lambda: 0.25)
    return evaluate(compile_formula(formula), inputs)


def failure(formula: str, samples: Sequence[Sample] = ()) -> FormulaError:
    with pytest.raises(FormulaError) as caught:
        run(formula, samples)
    return caught.value


def variables(outcome: Outcome) -> dict[str, str]:
    return dict(item.split("=", 1) for item in outcome.results.split(";"))


# --- results, as the service writes them ---------------------------------------------------


def test_the_recorded_evaluation_writes_the_three_service_variables() -> None:
    # Microsoft's recording of Evaluate Autoscale with "$TargetDedicatedNodes=3".
    outcome = run("$TargetDedicatedNodes=3")
    assert outcome.results == (
        "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
    )
    assert outcome.target_dedicated == 3


def test_time_based_example_on_a_thursday_midnight() -> None:
    # Example 1: a Thursday (weekday 4) at hour 0: not working hours, so 10 nodes; user
    # variables follow the service's by name, as the documentation's results show.
    formula = """$curTime = time();
    $workHours = $curTime.hour >= 8 && $curTime.hour < 18;
    $isWeekday = $curTime.weekday >= 1 && $curTime.weekday <= 5;
    $isWorkingWeekdayHour = $workHours && $isWeekday;
    $TargetDedicatedNodes = $isWorkingWeekdayHour ? 20:10;
    $NodeDeallocationOption = taskcompletion;"""
    outcome = run(formula)
    assert outcome.results == (
        "$TargetDedicatedNodes=10;$TargetLowPriorityNodes=0;"
        "$NodeDeallocationOption=taskcompletion;$curTime=2026-01-01T00:00:00.000Z;"
        "$isWeekday=1;$isWorkingWeekdayHour=0;$workHours=0"
    )
    assert outcome.deallocation == "taskcompletion"


def test_time_based_example_on_a_monday_morning() -> None:
    # 2026-01-05 is a Monday (weekday 1), 09:00 is a working hour: 20 nodes.
    formula = """$curTime = time();
    $workHours = $curTime.hour >= 8 && $curTime.hour < 18;
    $isWeekday = $curTime.weekday >= 1 && $curTime.weekday <= 5;
    $TargetDedicatedNodes = ($workHours && $isWeekday) ? 20:10;"""
    assert run(formula, now=MONDAY_NINE).target_dedicated == 20


def test_the_weekday_one_liner_of_the_net_snippet() -> None:
    # "$TargetDedicatedNodes = (time().weekday == 1 ? 5:1);": 5 on Mondays, else 1.
    formula = "$TargetDedicatedNodes = (time().weekday == 1 ? 5:1);"
    assert run(formula, now=MONDAY_NINE).target_dedicated == 5
    assert run(formula, now=NOW).target_dedicated == 1


def test_values_are_written_in_their_types_forms() -> None:
    outcome = run(
        "a = 2.5; b = TimeInterval_Minute * 5; c = TimeInterval_Day + TimeInterval_Hour * 2;"
        ' d = $PendingTasks.GetSample(3); e = "text"; f = 1 / 3',
        PENDING,
    )
    got = variables(outcome)
    assert got["a"] == "2.5"
    assert got["b"] == "00:05:00"  # a TimeSpan's form
    assert got["c"] == "1.02:00:00"
    assert got["e"] == "text"
    assert got["f"] == "0.333333333333333"


# --- samples --------------------------------------------------------------------------------

PENDING = history("$PendingTasks", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
"""Eleven samples: 10 at now, 9 at now-30 s, ..., 0 at now-300 s."""


PENDING_TASKS_FORMULA = """startingNumberOfVMs = 1;
maxNumberofVMs = 25;
pendingTaskSamplePercent = $PendingTasks.GetSamplePercent(180 * TimeInterval_Second);
pendingTaskSamples = pendingTaskSamplePercent < 70 ? startingNumberOfVMs :
    avg($PendingTasks.GetSample(180 * TimeInterval_Second));
$TargetDedicatedNodes=min(maxNumberofVMs, pendingTaskSamples);
$NodeDeallocationOption = taskcompletion;"""
"""The documentation's "Pending tasks" sample formula."""


def test_pending_tasks_example_averages_the_last_180_seconds() -> None:
    # (now-180, now] holds the samples at now, -30, ..., -150: 10, 9, 8, 7, 6, 5; 6 of the 6
    # a 180-second window has (100%), their average 7.5; min(25, 7.5) = 7.5, applied as 7.
    outcome = run(PENDING_TASKS_FORMULA, PENDING)
    assert outcome.target_dedicated == 7.5
    assert variables(outcome)["pendingTaskSamplePercent"] == "100"


def test_pending_tasks_example_starts_at_one_node_without_enough_samples() -> None:
    # Two samples (now, now-30 s) of the six: 33%, under 70: startingNumberOfVMs.
    formula = """pct = $PendingTasks.GetSamplePercent(180 * TimeInterval_Second);
    $TargetDedicatedNodes = pct < 70 ? 1 :
        avg($PendingTasks.GetSample(180 * TimeInterval_Second));"""
    outcome = run(formula, history("$PendingTasks", [4, 4]))
    assert outcome.target_dedicated == 1
    assert variables(outcome)["pct"] == "33.3333333333333"


def test_get_sample_count_is_the_latest_samples_newest_first() -> None:
    got = variables(run("v = $PendingTasks.GetSample(3); first = val(v, 0)", PENDING))
    assert got["v"] == "[10,9,8]"
    assert got["first"] == "10"


def test_get_sample_between_two_look_backs() -> None:
    # "$RunningTasks.GetSample(1 * TimeInterval_Minute, 6 * TimeInterval_Minute)": between 6 and
    # 1 minutes ago, (now-360, now-60]: the samples at -60 ... -300 (8 ... 0) of 10 possible.
    got = variables(
        run(
            "v = $PendingTasks.GetSample(1 * TimeInterval_Minute, 6 * TimeInterval_Minute)", PENDING
        )
    )
    assert got["v"] == "[8,7,6,5,4,3,2,1,0]"
    pct = variables(
        run(
            "p = $PendingTasks.GetSamplePercent(TimeInterval_Minute, 6 * TimeInterval_Minute)",
            PENDING,
        )
    )
    assert pct["p"] == "90"  # 9 of 10


def test_get_sample_with_a_percentage_fails_as_the_service_does() -> None:
    # 15 minutes hold 30 samples; 11 are there (36.67%), 70 wanted.
    error = failure("x = $PendingTasks.GetSample(TimeInterval_Minute * 15, 70)", PENDING)
    assert error.code == "InsufficientSampleData"
    assert error.message == "Autoscale evaluation failed due to insufficient sample data"
    assert error.values == (
        (
            "Message",
            "Line 1, Col 19: Insufficient data from data set: $PendingTasks wanted 70%, "
            "received 36%",
        ),
    )


def test_example_four_does_not_read_samples_while_the_pool_is_young() -> None:
    # lifespan 5 minutes < startup 10 minutes: the ternary keeps 4 and never evaluates
    # GetSample (which would fail: no $RunningTasks samples at all).
    formula = """$TargetDedicatedNodes = 4;
    lifespan = time() - time("Thu, 31 Dec 2025 23:55:00 GMT");
    span = TimeInterval_Minute * 60;
    startup = TimeInterval_Minute * 10;
    ratio = 50;
    $TargetDedicatedNodes = (lifespan > startup ? (max($RunningTasks.GetSample(span, ratio),
        $ActiveTasks.GetSample(span, ratio)) == 0 ? 0 : $TargetDedicatedNodes) : 4);"""
    outcome = run(formula)
    assert outcome.target_dedicated == 4
    assert variables(outcome)["lifespan"] == "00:05:00"


def test_example_four_scales_to_zero_after_an_idle_hour() -> None:
    # An hour of zeros in both (121 samples, 120 in the window: 100%): max(...) == 0 -> 0.
    zeros = [0.0] * 121
    samples = [
        Sample(s.time, {"$RunningTasks": 0.0, "$ActiveTasks": 0.0})
        for s in history("$RunningTasks", zeros)
    ]
    formula = """lifespan = time() - time("2025-12-31T20:00:00Z");
    span = TimeInterval_Minute * 60;
    $TargetDedicatedNodes = lifespan > TimeInterval_Minute * 10 ?
        (max($RunningTasks.GetSample(span, 50), $ActiveTasks.GetSample(span, 50)) == 0 ? 0 : 9)
        : 4;"""
    assert run(formula, samples, target=3).target_dedicated == 0


def test_example_two_task_based() -> None:
    # Samples of the last 15 minutes: the 11 of PENDING (36.7% < 70): max(0, GetSample(1)) =
    # max(0, [10]) = 10 tasks; 10 > 0 so targetVMs 10; min(10, 20) = 10.
    formula = """// Get pending tasks for the past 15 minutes.
    $samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 15);
    // If we have fewer than 70 percent data points, we use the last sample point,
    $tasks = $samples < 70 ? max(0,$PendingTasks.GetSample(1)) : max( $PendingTasks.GetSample(1),
        avg($PendingTasks.GetSample(TimeInterval_Minute * 15)));
    $targetVMs = $tasks > 0? $tasks:max(0, $TargetDedicatedNodes/2);
    $TargetDedicatedNodes = max(0, min($targetVMs, 20));
    $NodeDeallocationOption = taskcompletion;"""
    assert run(formula, PENDING).target_dedicated == 10


def test_example_three_parallel_tasks() -> None:
    # $ActiveTasks: 31 samples of 9 over 15 minutes (30 in the window: 100%): tasks =
    # max(9, avg(9...)) = 9; target 1: cores 4; extraVMs = ((9 - 4) + 3) / 4 = 2;
    # targetVMs 3; max(0, min(3, 3)) = 3.
    formula = """$samples = $ActiveTasks.GetSamplePercent(TimeInterval_Minute * 15);
    $tasks = $samples < 70 ? max(0,$ActiveTasks.GetSample(1)) : max( $ActiveTasks.GetSample(1),
        avg($ActiveTasks.GetSample(TimeInterval_Minute * 15)));
    $cores = $TargetDedicatedNodes * 4;
    $extraVMs = (($tasks - $cores) + 3) / 4;
    $targetVMs = ($TargetDedicatedNodes + $extraVMs);
    $TargetDedicatedNodes = max(0,min($targetVMs,3));
    $NodeDeallocationOption = taskcompletion;"""
    outcome = run(formula, history("$ActiveTasks", [9.0] * 31), target=1)
    assert outcome.target_dedicated == 3
    assert variables(outcome)["$extraVMs"] == "2"


def test_read_only_variables_read_as_their_value_now() -> None:
    # The CPU example's shape on measured values: 4 current nodes * 1.1 = 4.4; min(400, 4.4).
    formula = """$total = $CurrentDedicatedNodes * 1.1;
    $TargetDedicatedNodes = min(400, $total)"""
    assert run(formula).target_dedicated == pytest.approx(4.4)
    got = variables(run("p = $PendingTasks; s = $TaskSlotsPerNode; u = $UsableNodeCount"))
    assert (got["p"], got["s"], got["u"]) == ("5", "4", "4")


def test_history_methods() -> None:
    got = variables(
        run(
            "n = $PendingTasks.Count(); b = $PendingTasks.HistoryBeginTime();"
            " p = $PendingTasks.GetSamplePeriod()",
            PENDING,
        )
    )
    assert got["n"] == "11"
    assert got["b"] == "2025-12-31T23:55:00.000Z"  # 300 s before NOW
    assert got["p"] == "00:00:30"


# --- functions and operators ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("avg(1, 2, 3, 6)", "3"),
        ("sum($PendingTasks.GetSample(3), 7)", "34"),  # 10 + 9 + 8 + 7
        ("len($PendingTasks.GetSample(4), 1, 2)", "6"),
        ("max(3, 9, 4)", "9"),
        ("min(3, 9, 4)", "3"),
        ("range(3, 9, 4)", "6"),
        ("norm(3, 4)", "5"),
        ("std(2, 4, 4, 4, 5, 5, 7, 9)", "2.1380899352994"),  # sqrt(32 / 7), 15 digits
        ("percentile($PendingTasks.GetSample(10), 50)", "5"),  # 1..10: rank ceil(5) -> 5
        ("percentile($PendingTasks.GetSample(10), 90)", "9"),
        ("lg(8)", "3"),
        ("log(1000)", "3"),
        ("ln(1)", "0"),
        ("ceil(2.1)", "3"),
        ("floor(2.9)", "2"),
        ("round(2.5)", "2"),  # half to even, as .NET's Math.Round
        ("round(3.5)", "4"),
        ("val($PendingTasks.GetSample(3), 2)", "8"),
        ("rand()", "0.25"),
        ("2 + 3 * 4", "14"),
        ("(2 + 3) * 4", "20"),
        ("10 - 4 - 3", "3"),
        ("-2 * 3", "-6"),
        ("!0", "1"),
        ("!5", "0"),
        ("1 < 2 && 2 < 1", "0"),
        ("1 < 2 || 2 < 1", "1"),
        ('"abc" < "abd"', "1"),
        ("TimeInterval_Hour == TimeInterval_Minute * 60", "1"),
        ("time() - TimeInterval_Day < time()", "1"),
        ("1 ? 2 : 0 ? 3 : 4", "2"),
        ("0 ? 2 : 0 ? 3 : 4", "4"),
        ("$PendingTasks.GetSample(2) * 2", "[20,18]"),
        ("$PendingTasks.GetSample(2) + $PendingTasks.GetSample(2)", "[20,18]"),
        ("lg($PendingTasks.GetSample(1) - 2)", "[3]"),
        ("1 / 0", "inf"),
    ],
)
def test_expressions(expression: str, expected: str) -> None:
    assert variables(run(f"x = {expression}", PENDING))["x"] == expected


def test_stop_ends_the_evaluation_keeping_what_was_assigned() -> None:
    outcome = run("$TargetDedicatedNodes = 2; stop(); $TargetDedicatedNodes = 9")
    assert outcome.target_dedicated == 2


def test_the_full_name_wins_over_its_alias() -> None:
    assert run("$TargetDedicated = 3").target_dedicated == 3
    assert run("$TargetDedicatedNodes = 5; $TargetDedicated = 3").target_dedicated == 5


def test_line_breaks_comments_and_a_missing_last_semicolon() -> None:
    formula = "/* block\ncomment */ a = 1; // line\n\n$TargetDedicatedNodes = a + 1"
    assert run(formula).target_dedicated == 2


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "detail"),
    [
        ("$TargetDedicatedNodes = (1 +", "Line 1, Col 29: expected a value, found the end"),
        ("$PendingTasks = 3", "Line 1, Col 1: $PendingTasks cannot be assigned"),
        ("a = 1\nb = 2", "Line 2, Col 1: expected ';', found 'b'"),
        ("a = nosuch(1)", "Line 1, Col 5: unknown function nosuch"),
        ("a = $PendingTasks.GetSampel(1)", "Line 1, Col 19: unknown method GetSampel"),
        ("a = 1 # 2", "Line 1, Col 7: unexpected character '#'"),
        ('a = "open', "Line 1, Col 5: string not closed"),
        ("", "the formula has no statement"),
    ],
)
def test_syntax_errors(formula: str, detail: str) -> None:
    error = failure(formula)
    assert error.code == "AutoScalingFormulaSyntaxError"
    assert error.message == "The specified auto-scaling formula has a syntax error."
    assert error.values[0][0] == "Message"
    assert error.values[0][1].startswith(detail)


def test_too_long() -> None:
    error = failure("a = 1;" * 1400)  # 8,400 characters, over the 8 KB limit
    assert error.code == "AutoScalingFormulaTooLong"


def test_more_than_100_statements() -> None:
    error = failure("a = 1;" * 101)
    assert error.code == "AutoScalingFormulaSyntaxError"


@pytest.mark.parametrize(
    ("formula", "detail"),
    [
        ("$TargetDedicatedNodes = y + 1", "Line 1, Col 25: y is used before it is assigned"),
        ('a = "x" + 1', "Line 1, Col 9: string + double is not an operation"),
        ('$TargetDedicatedNodes = "x"', "Line 1, Col 1: $TargetDedicatedNodes takes a double"),
        ('$NodeDeallocationOption = "later"', "Line 1, Col 1: $NodeDeallocationOption is one of"),
        (
            "a = avg($PendingTasks.GetSample(TimeInterval_Day, TimeInterval_Hour))",
            "Line 1, Col 5: avg() of an empty",
        ),
        ("a = val($PendingTasks.GetSample(1), 3)", "Line 1, Col 5: val() index 3 is outside"),
    ],
)
def test_evaluation_errors(formula: str, detail: str) -> None:
    error = failure(formula, PENDING)
    assert error.code == "AutoScalingFormulaEvaluationError"
    assert error.values[0][1].startswith(detail)


def test_get_sample_count_beyond_the_history_is_insufficient_data() -> None:
    error = failure("a = $PendingTasks.GetSample(3)", history("$PendingTasks", [1]))
    assert error.code == "InsufficientSampleData"
    assert "wanted 3 samples, received 1" in error.values[0][1]


def test_unmeasured_metrics_are_named() -> None:
    formula = """$totalDedicatedNodes =
    (min($CPUPercent.GetSample(TimeInterval_Minute * 10)) > 0.7) ?
    ($CurrentDedicatedNodes * 1.1) : $CurrentDedicatedNodes;
    x = $MemoryBytes + $PendingTasks;"""
    assert unmeasured(compile_formula(formula)) == ["$CPUPercent", "$MemoryBytes"]
    assert unmeasured(compile_formula("$TargetDedicatedNodes = $PendingTasks")) == []


def test_timestamps_members_and_both_documented_time_forms() -> None:
    # W3C-DTF and RFC 1123 name the same instant; 2026-01-05 is a Monday (weekday 1).
    got = variables(
        run(
            'a = time("2026-01-05T09:30:15Z"); b = time("Mon, 05 Jan 2026 09:30:15 GMT");'
            " same = a == b; y = a.year; mo = a.month; d = a.day; w = a.weekday;"
            " h = a.hour; mi = a.minute; s = a.second"
        )
    )
    assert got["same"] == "1"
    assert [got[name] for name in ("y", "mo", "d", "w", "h", "mi", "s")] == [
        "2026", "1", "5", "1", "9", "30", "15",
    ]  # fmt: skip


def test_get_sample_between_two_timestamps() -> None:
    # Timestamps instead of look-backs: (now-120 s, now-30 s] holds the samples at -90, -60
    # and -30 s: 7, 8, 9 (3 of the 3 the 90 seconds hold).
    formula = (
        "v = $PendingTasks.GetSample(time() - 120 * TimeInterval_Second,"
        " time() - 30 * TimeInterval_Second, 100)"
    )
    assert variables(run(formula, PENDING))["v"] == "[9,8,7]"


def test_a_vector_is_not_compared() -> None:
    error = failure("a = $PendingTasks.GetSample(2) > 1", PENDING)
    assert error.code == "AutoScalingFormulaEvaluationError"
    assert "doubleVec > double" in error.detail

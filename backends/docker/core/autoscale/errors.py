"""What an autoscale formula's compilation or evaluation reports when it fails: the service's
error code, message and ``values`` (REST AutoScaleRunError, and the Enable/Evaluate answers).

Codes and messages: `AutoScalingFormulaSyntaxError` and `AutoScalingFormulaTooLong` are the
service's (Batch error code table, 400); `InsufficientSampleData` with "Autoscale evaluation
failed due to insufficient sample data" and a ``Message`` value in the service's
``Line l, Col c: Insufficient data from data set: $PendingTasks wanted 70%, received 0%`` form
(as users report the service's runs). Other evaluation failures (a variable never assigned, a
value of the wrong type, a target out of range) have no documented code: they are
``AutoScalingFormulaEvaluationError``, the endpoint's own, with the same ``Message`` form.
"""

from __future__ import annotations

from dataclasses import dataclass

SYNTAX_ERROR = "AutoScalingFormulaSyntaxError"
TOO_LONG = "AutoScalingFormulaTooLong"
INSUFFICIENT_SAMPLES = "InsufficientSampleData"
EVALUATION_ERROR = "AutoScalingFormulaEvaluationError"

MESSAGES = {
    SYNTAX_ERROR: "The specified auto-scaling formula has a syntax error.",
    TOO_LONG: "The specified auto-scaling formula exceeds lengths limit.",
    INSUFFICIENT_SAMPLES: "Autoscale evaluation failed due to insufficient sample data",
    EVALUATION_ERROR: "Autoscale evaluation failed",
}


@dataclass(frozen=True, slots=True)
class Position:
    """Where in the formula: 1-based line and column, as the service's messages count."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"Line {self.line}, Col {self.column}"


class FormulaError(Exception):
    """A formula that does not compile or evaluate: `code` (one of this module's), `detail`
    (the ``Message`` value: where and why), `position` (None when the whole formula is at
    fault)."""

    def __init__(self, code: str, detail: str, position: Position | None = None) -> None:
        self.code = code
        self.position = position
        self.detail = f"{position}: {detail}" if position is not None else detail
        super().__init__(self.detail)

    @property
    def message(self) -> str:
        """The service's sentence for `code`."""
        return MESSAGES[self.code]

    @property
    def values(self) -> tuple[tuple[str, str], ...]:
        """The error's ``values`` (name, value): the ``Message`` saying where and why."""
        return (("Message", self.detail),)


def syntax_error(detail: str, position: Position | None = None) -> FormulaError:
    return FormulaError(SYNTAX_ERROR, detail, position)


def evaluation_error(detail: str, position: Position | None = None) -> FormulaError:
    return FormulaError(EVALUATION_ERROR, detail, position)

"""Batch's autoscale formula language, with no Docker and no core in it: `compile_formula`
parses (`parser`) and checks a formula, `evaluate` runs it over a pool's values and metric
history (`samples`), giving the targets and the service's ``results`` string, or a
`FormulaError` with the service's code, message and ``values``.

Source: learn.microsoft.com, "Create a formula to automatically scale compute nodes in a Batch
pool".
"""

from __future__ import annotations

from jobprep_release.backends.docker.core.autoscale.errors import FormulaError
from jobprep_release.backends.docker.core.autoscale.evaluator import (
    Inputs,
    Outcome,
    evaluate,
    unmeasured,
)
from jobprep_release.backends.docker.core.autoscale.parser import Statement, parse
from jobprep_release.backends.docker.core.autoscale.samples import (
    SAMPLE_PERIOD,
    MetricHistory,
    Sample,
)

compile_formula = parse

__all__ = [
    "SAMPLE_PERIOD",
    "FormulaError",
    "Inputs",
    "MetricHistory",
    "Outcome",
    "Sample",
    "Statement",
    "compile_formula",
    "evaluate",
    "unmeasured",
]

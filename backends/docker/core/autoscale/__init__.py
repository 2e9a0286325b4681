"""Batch's autoscale formula language, with no Docker and no core in it: `compile_formula`
parses (`parser`) and checks a formula, `evaluate` runs it over a pool's values and metric
history (`samples`), giving the targets and the service's ``results`` string, or a
`FormulaError` with the service's code, message and ``values``.

Source: learn.microsoft.com, "Create a formula to automatically scale compute nodes in a Batch
pool".

The names load lazily (module `__getattr__`, PEP 562): a run that never sees a formula (the
sample's) does not import the parser and evaluator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobprep_release.backends.docker.core.autoscale.errors import FormulaError
    from jobprep_release.backends.docker.core.autoscale.evaluator import (
        Inputs,
        Outcome,
        evaluate,
        unmeasured,
    )
    from jobprep_release.backends.docker.core.autoscale.parser import Statement
    from jobprep_release.backends.docker.core.autoscale.parser import parse as compile_formula
    from jobprep_release.backends.docker.core.autoscale.samples import (
        SAMPLE_PERIOD,
        MetricHistory,
        Sample,
    )

_HOMES = {
    "FormulaError": ("errors", "FormulaError"),
    "Inputs": ("evaluator", "Inputs"),
    "Outcome": ("evaluator", "Outcome"),
    "evaluate": ("evaluator", "evaluate"),
    "unmeasured": ("evaluator", "unmeasured"),
    "Statement": ("parser", "Statement"),
    "compile_formula": ("parser", "parse"),
    "SAMPLE_PERIOD": ("samples", "SAMPLE_PERIOD"),
    "MetricHistory": ("samples", "MetricHistory"),
    "Sample": ("samples", "Sample"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home[0]}"), home[1])
    globals()[name] = value
    return value


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

"""One wire schema: azure-batch's own models as the single mapping between Batch's REST JSON and
the backend-neutral models of `jobprep_release.backends.base`.

Both sides of the project speak through it, and neither imports the other: the azure backend
sends specs as SDK create options and reads SDK results as views; the local endpoint parses
request JSON into SDK models and then specs, and renders views as SDK models (``as_dict()``).
A new Batch property is added here once.

Modules: `shapes` (what each SDK model's REST properties are: types, required, defaults; request
validation, the round-trip comparison, durations as the service writes them), `requests` (specs
<-> create options, both directions; a package with a module per resource: pools, jobs, tasks,
job schedules, and the service's limits), `results` (views <-> result models, both directions).
"""

from __future__ import annotations

"""The backend-neutral models, split by resource: `pools` (a pool's specs, Update Pool, the pool
as reported), `nodes` (compute nodes, Upload Batch Service Logs), `jobs` (a job's specs with its
auto pool and its preparation and release tasks, Update and Replace Job, the job as reported, the
preparation and release tasks' status per node), `tasks` (a task's specs and the task as
reported), with what they share in `common` (the id check, identities, resource files,
constraints, execution info); `value` gives the frozen models their equality, hash and repr.

Import a model from its module, or from `backends.base`, which re-exports every one of them with
the `BatchBackend` interface; this package itself re-exports nothing (it imports no module of its
own, so importing one model module does not import the others)."""

"""Add Task (and Add Task Collection): `TaskSpec` <-> the SDK's task options, in both
directions (output files, exit conditions, dependencies, multi-instance settings), and the
service's limits on tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from azure.batch import models

from jobprep_release.backends.base import (
    DependencyAction,
    ExitCodeMapping,
    ExitCodeRangeMapping,
    ExitConditions,
    ExitOptions,
    JobAction,
    MultiInstanceSettings,
    OutputFile,
    OutputFileUploadCondition,
    TaskDependencies,
    TaskIdRange,
    TaskSpec,
)
from jobprep_release.backends.schema.requests.common import (
    CONSTRAINTS,
    TASK_LIMITS,
    Limit,
    choice,
    optional_choice,
    resource_file_specs,
    resource_files,
    task_constraints,
    task_constraints_spec,
    task_settings,
    task_settings_spec,
    within,
)


def output_files(files: Sequence[OutputFile]) -> list[models.OutputFile] | None:
    if not files:
        return None
    return [
        models.OutputFile(
            file_pattern=file.file_pattern,
            destination=models.OutputFileDestination(
                container=models.OutputFileBlobContainerDestination(
                    container_url=file.container_url,
                    path=file.path,
                    upload_headers=[
                        models.OutputFileUploadHeader(name=name, value=value)
                        for name, value in file.upload_headers.items()
                    ]
                    or None,
                )
            ),
            upload_options=models.OutputFileUploadConfiguration(
                upload_condition=file.upload_condition.value
            ),
        )
        for file in files
    ]


def output_file_specs(files: Sequence[models.OutputFile] | None) -> tuple[OutputFile, ...]:
    """Output files with a container destination (the only destination the REST API has)."""
    specs = []
    for f in files or ():
        container = f.destination.container if f.destination else None
        options = f.upload_options
        specs.append(
            OutputFile(
                file_pattern=f.file_pattern or "",
                container_url=(container.container_url or "") if container else "",
                path=container.path if container else None,
                upload_condition=choice(
                    OutputFileUploadCondition,
                    options.upload_condition if options else None,
                    OutputFileUploadCondition.TASK_COMPLETION,
                ),
                upload_headers={
                    header.name: header.value or ""
                    for header in ((container.upload_headers or []) if container else [])
                },
            )
        )
    return tuple(specs)


def exit_options(options: ExitOptions | None) -> models.ExitOptions | None:
    if options is None:
        return None
    return models.ExitOptions(
        job_action=options.job_action.value if options.job_action else None,
        dependency_action=options.dependency_action.value if options.dependency_action else None,
    )


def _options(options: ExitOptions) -> models.ExitOptions:
    return exit_options(options) or models.ExitOptions()


def exit_options_spec(options: models.ExitOptions | None) -> ExitOptions | None:
    if options is None:
        return None
    return ExitOptions(
        job_action=optional_choice(JobAction, options.job_action),
        dependency_action=optional_choice(DependencyAction, options.dependency_action),
    )


def exit_conditions(conditions: ExitConditions | None) -> models.ExitConditions | None:
    if conditions is None:
        return None
    return models.ExitConditions(
        exit_codes=[
            models.ExitCodeMapping(code=item.code, exit_options=_options(item.exit_options))
            for item in conditions.exit_codes
        ]
        or None,
        exit_code_ranges=[
            models.ExitCodeRangeMapping(
                start=item.start, end=item.end, exit_options=_options(item.exit_options)
            )
            for item in conditions.exit_code_ranges
        ]
        or None,
        pre_processing_error=exit_options(conditions.pre_processing_error),
        file_upload_error=exit_options(conditions.file_upload_error),
        default=exit_options(conditions.default),
    )


def exit_conditions_spec(conditions: models.ExitConditions | None) -> ExitConditions | None:
    if conditions is None:
        return None
    return ExitConditions(
        exit_codes=tuple(
            ExitCodeMapping(item.code, exit_options_spec(item.exit_options) or ExitOptions())
            for item in conditions.exit_codes or ()
        ),
        exit_code_ranges=tuple(
            ExitCodeRangeMapping(
                item.start, item.end, exit_options_spec(item.exit_options) or ExitOptions()
            )
            for item in conditions.exit_code_ranges or ()
        ),
        pre_processing_error=exit_options_spec(conditions.pre_processing_error),
        file_upload_error=exit_options_spec(conditions.file_upload_error),
        default=exit_options_spec(conditions.default),
    )


def task_dependencies(depends_on: TaskDependencies | None) -> models.BatchTaskDependencies | None:
    if depends_on is None:
        return None
    return models.BatchTaskDependencies(
        task_ids=list(depends_on.task_ids) or None,
        task_id_ranges=[
            models.BatchTaskIdRange(start=item.start, end=item.end)
            for item in depends_on.task_id_ranges
        ]
        or None,
    )


def task_dependencies_spec(
    depends_on: models.BatchTaskDependencies | None,
) -> TaskDependencies | None:
    if depends_on is None:
        return None
    return TaskDependencies(
        task_ids=tuple(depends_on.task_ids or ()),
        task_id_ranges=tuple(
            TaskIdRange(item.start, item.end) for item in depends_on.task_id_ranges or ()
        ),
    )


def task_create_options(spec: TaskSpec) -> models.BatchTaskCreateOptions:
    return models.BatchTaskCreateOptions(
        **task_settings(spec),
        display_name=spec.display_name,
        constraints=task_constraints(spec.constraints),
        required_slots=spec.required_slots,
        exit_conditions=exit_conditions(spec.exit_conditions),
        depends_on=task_dependencies(spec.depends_on),
        output_files=output_files(spec.output_files),
        multi_instance_settings=_multi_instance(spec.multi_instance),
    )


def _multi_instance(settings: MultiInstanceSettings | None) -> models.MultiInstanceSettings | None:
    if settings is None:
        return None
    model = models.MultiInstanceSettings({"numberOfInstances": settings.number_of_instances})
    if settings.coordination_command_line is not None:
        model.coordination_command_line = settings.coordination_command_line
    model.common_resource_files = resource_files(settings.common_resource_files)
    return model


def _multi_instance_spec(
    settings: models.MultiInstanceSettings | None,
) -> MultiInstanceSettings | None:
    if settings is None:
        return None
    return MultiInstanceSettings(
        number_of_instances=settings.number_of_instances or 1,
        coordination_command_line=settings.coordination_command_line,
        common_resource_files=resource_file_specs(settings.common_resource_files),
    )


def task_spec(task: models.BatchTaskCreateOptions | models.BatchTask) -> TaskSpec:
    """A task's settings (a request's, or as the service reports them) as a `TaskSpec`."""
    return TaskSpec(
        **task_settings_spec(task),
        id=task.id or "",
        constraints=task_constraints_spec(task.constraints),
        required_slots=task.required_slots or 1,
        display_name=task.display_name,
        exit_conditions=exit_conditions_spec(task.exit_conditions),
        depends_on=task_dependencies_spec(task.depends_on),
        output_files=output_file_specs(task.output_files),
        multi_instance=_multi_instance_spec(task.multi_instance_settings),
    )


# --- the service's limits -------------------------------------------------------------------------


LIMITS: Mapping[type, Mapping[str, Limit]] = {
    models.BatchTaskConstraints: CONSTRAINTS,
    models.BatchTaskCreateOptions: {**TASK_LIMITS, "requiredSlots": within(1)},
    models.MultiInstanceSettings: {"numberOfInstances": within(1)},
}
"""The service's limits on tasks' properties (`limits.LIMITS` has the sources)."""

"""What the request mappings of every resource share: SDK enums as wire values, what every kind
of task has (environment, metadata, resource files, identity, constraints, container
settings), and the checks the service's limits are made of (`Limit`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from enum import Enum
from typing import Any, TypeVar

from azure.batch import models

from jobprep_release.backends.base import (
    AutoUserScope,
    ElevationLevel,
    JobPreparationTaskSpec,
    JobReleaseTaskSpec,
    ResourceFile,
    TaskConstraints,
    TaskContainerSettings,
    TaskSpec,
    UserIdentity,
    check_id,
)
from jobprep_release.backends.errors import InvalidRequest
from jobprep_release.backends.schema.shapes import format_duration, limited, parse_duration

_E = TypeVar("_E", bound=Enum)


def wire_value(value: Any) -> str | None:
    """An SDK enum or plain string as the service's lower-case wire value."""
    if value is None:
        return None
    if isinstance(value, Enum):
        value = value.value
    return str(value).lower()


def choice(cls: type[_E], value: Any, fallback: _E) -> _E:
    """`value` as a member of `cls`; `fallback` when absent or unknown (a later API's value)."""
    raw = wire_value(value)
    try:
        return cls(raw)
    except ValueError:
        return fallback


def optional_choice(cls: type[_E], value: Any) -> _E | None:
    """`value` as a member of `cls`; None when absent or unknown."""
    raw = wire_value(value)
    return next((member for member in cls if member.value == raw), None)


# --- what tasks share -----------------------------------------------------------------------------


def environment_settings(environment: Mapping[str, str]) -> list[models.EnvironmentSetting] | None:
    if not environment:
        return None
    return [
        models.EnvironmentSetting(name=name, value=value) for name, value in environment.items()
    ]


def environment(settings: Sequence[models.EnvironmentSetting] | None) -> dict[str, str]:
    return {setting.name: setting.value or "" for setting in settings or ()}


def metadata_items(metadata: Mapping[str, str]) -> list[models.BatchMetadataItem] | None:
    if not metadata:
        return None
    return [models.BatchMetadataItem(name=name, value=value) for name, value in metadata.items()]


def metadata(items: Sequence[models.BatchMetadataItem] | None) -> dict[str, str]:
    return {item.name: item.value for item in items or ()}


def resource_files(files: Sequence[ResourceFile]) -> list[models.ResourceFile] | None:
    if not files:
        return None
    return [
        models.ResourceFile(
            http_url=file.http_url or None,
            storage_container_url=file.storage_container_url,
            auto_storage_container_name=file.auto_storage_container_name,
            blob_prefix=file.blob_prefix,
            file_path=file.file_path or None,
            file_mode=file.file_mode,
        )
        for file in files
    ]


def resource_file_specs(files: Sequence[models.ResourceFile] | None) -> tuple[ResourceFile, ...]:
    return tuple(
        ResourceFile(
            http_url=f.http_url or "",
            file_path=f.file_path or "",
            file_mode=f.file_mode,
            storage_container_url=f.storage_container_url,
            auto_storage_container_name=f.auto_storage_container_name,
            blob_prefix=f.blob_prefix,
        )
        for f in files or ()
    )


def user_identity(identity: UserIdentity) -> models.UserIdentity:
    if identity.user_name is not None:
        return models.UserIdentity(username=identity.user_name)
    return models.UserIdentity(
        auto_user=models.AutoUserSpecification(
            scope=identity.scope.value, elevation_level=identity.elevation_level.value
        )
    )


def user_identity_spec(identity: models.UserIdentity | None) -> UserIdentity:
    """A task's user: a named user account (``username``, the auto-user then ignored), else
    the auto-user."""
    if identity is not None and identity.username:
        return UserIdentity(user_name=identity.username)
    auto = identity.auto_user if identity else None
    if auto is None:
        return UserIdentity()
    return UserIdentity(
        elevation_level=choice(ElevationLevel, auto.elevation_level, ElevationLevel.NON_ADMIN),
        scope=choice(AutoUserScope, auto.scope, AutoUserScope.POOL),
    )


def task_constraints(constraints: TaskConstraints) -> models.BatchTaskConstraints | None:
    if constraints == TaskConstraints():
        return None
    return models.BatchTaskConstraints(
        max_wall_clock_time=constraints.max_wall_clock_time,
        retention_time=constraints.retention_time,
        max_task_retry_count=constraints.max_task_retry_count,
    )


def task_constraints_spec(limits: models.BatchTaskConstraints | None) -> TaskConstraints:
    if limits is None:
        return TaskConstraints()
    return TaskConstraints(
        max_wall_clock_time=limited(limits.max_wall_clock_time),
        retention_time=limited(limits.retention_time),
        max_task_retry_count=limits.max_task_retry_count,
    )


def enum_text(value: Any) -> str | None:
    """An SDK enum's wire value as sent (``dockerCompatible``), or a plain string."""
    if value is None:
        return None
    return str(value.value if isinstance(value, Enum) else value)


def container_settings(
    settings: TaskContainerSettings | None,
) -> models.BatchTaskContainerSettings | None:
    if settings is None:
        return None
    return models.BatchTaskContainerSettings(
        image_name=settings.image_name,
        container_run_options=settings.container_run_options,
        working_directory=settings.working_directory,
    )


def container_settings_spec(
    settings: models.BatchTaskContainerSettings | None,
) -> TaskContainerSettings | None:
    """A task's ``containerSettings``; ``workingDirectory`` is ``taskWorkingDirectory``
    unless given (the service's default). ``registry`` is not mapped: refused."""
    if settings is None:
        return None
    return TaskContainerSettings(
        image_name=settings.image_name or "",
        container_run_options=settings.container_run_options,
        working_directory=enum_text(settings.working_directory) or "taskWorkingDirectory",
    )


def task_settings(spec: JobPreparationTaskSpec | JobReleaseTaskSpec | TaskSpec) -> dict[str, Any]:
    """What every kind of task has: id, command line, files, environment, identity."""
    return {
        "id": spec.id,
        "command_line": spec.command_line,
        "resource_files": resource_files(spec.resource_files),
        "environment_settings": environment_settings(spec.environment),
        "user_identity": user_identity(spec.user_identity),
        "container_settings": container_settings(spec.container_settings),
    }


def task_settings_spec(
    task: models.BatchJobPreparationTask
    | models.BatchJobReleaseTask
    | models.BatchTaskCreateOptions
    | models.BatchTask,
) -> dict[str, Any]:
    return {
        "command_line": task.command_line or "",
        "environment": environment(task.environment_settings),
        "resource_files": resource_file_specs(task.resource_files),
        "user_identity": user_identity_spec(task.user_identity),
        "container_settings": container_settings_spec(task.container_settings),
    }


# --- checks of the service's limits ---------------------------------------------------------------


Limit = Callable[[Any], str | None]
"""A check of one property's value (JSON, as `shapes.conform` gives it): why the service
refuses it, or None."""


def within(low: int | None = None, high: int | None = None) -> Limit:
    def check(value: Any) -> str | None:
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            return f"{value} is not an integer {bounds}"
        return None

    return check


def at_least(shortest: timedelta) -> Limit:
    def check(value: Any) -> str | None:
        length = parse_duration(value)
        if length is not None and length < shortest:
            return f"{value} is shorter than {format_duration(shortest)}"
        return None

    return check


def duration_within(shortest: timedelta, longest: timedelta) -> Limit:
    def check(value: Any) -> str | None:
        length = parse_duration(value)
        if length is not None and not shortest <= length <= longest:
            bounds = f"{format_duration(shortest)} to {format_duration(longest)}"
            return f"{value} is not from {bounds}"
        return None

    return check


def longest_text(characters: int) -> Limit:
    def check(value: Any) -> str | None:
        if len(value) > characters:
            return f"{len(value)} characters are more than {characters}"
        return None

    return check


def id_limit(value: Any) -> str | None:
    try:
        check_id("object", value)
    except InvalidRequest:
        return f"{value!r} is not 1 to 64 letters, digits, hyphens or underscores"
    return None


def unique_names(value: Any) -> str | None:
    names = [str(item.get("name", "")) for item in value if isinstance(item, Mapping)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    return f"the name {repeated[0]} is given more than once" if repeated else None


POSITIVE = at_least(timedelta(seconds=1))


DISPLAY_NAME = longest_text(1024)


CONSTRAINTS = {"maxTaskRetryCount": within(-1), "maxWallClockTime": POSITIVE}


TASK_LIMITS = {"id": id_limit, "displayName": DISPLAY_NAME, "environmentSettings": unique_names}

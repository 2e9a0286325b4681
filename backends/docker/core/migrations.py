"""The stored state's format versions, and how a document of an older one is brought forward.

A state document carries ``version``. A field added to a record needs no new version: records
are decoded by their type hints (`codec.decode`), so a field a document lacks takes its
default and a field the app does not know is left out. A change that defaults cannot express
(a field renamed, moved or given a new meaning) raises `records.STATE_VERSION` by one and adds
to `MIGRATIONS` the function that rewrites a document of the previous version, and the
journal's entries written beside it, in place. A document is never reset: a version this app
cannot read (newer than it, or older with no migration) is an error naming the file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jobprep_release.backends.docker.core.records import STATE_VERSION
from jobprep_release.backends.errors import StateUnreadable

Migration = Callable[[dict[str, Any], list[Any]], None]
"""Rewrites a document of version n and its journal entries to version n + 1, in place."""

MIGRATIONS: dict[int, Migration] = {}
"""By the version each migration reads. Empty: every format so far is version 1."""


def migrate(document: Any, entries: list[Any], where: str) -> int:
    """Bring `document` (and the journal `entries` written beside it) to `STATE_VERSION`, in
    place; returns the version it had. `where` names the file in errors.

    `StateUnreadable` when the document is not a state, is newer than this app, or is older
    with no way forward.
    """
    if not isinstance(document, dict):
        raise StateUnreadable(f"the docker backend's state {where} is not a state document")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise StateUnreadable(
            f"the docker backend's state {where} has no format version ({version!r})"
        )
    if version > STATE_VERSION:
        raise StateUnreadable(
            f"the docker backend's state {where} has format version {version}; this app "
            f"reads versions up to {STATE_VERSION}",
            hint="use the app version that wrote it (nothing was changed)",
        )
    found = version
    while version < STATE_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise StateUnreadable(
                f"the docker backend's state {where} has format version {version}, which "
                f"this app cannot bring to version {STATE_VERSION}",
                hint="use an app version that reads it (nothing was changed)",
            )
        step(document, entries)
        version += 1
        document["version"] = version
    return found

"""The times and ETags the endpoint reports, as the endpoint observes them.

The Docker service keeps what ran and when tasks started and ended, but not when a pool or job
changed state or was last modified. The endpoint fills those in from what it sees: an object's
``creationTime`` is when it was created through the endpoint (or first seen, for objects made
before it started), ``stateTransitionTime``/``previousState`` follow each state change it
observes, and ``eTag``/``lastModified`` change whenever the object's rendered properties do.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobprep_release.backends.docker.rest.wire import now


@dataclass(slots=True)
class Stamp:
    """What the endpoint knows of one object's history."""

    created: datetime
    modified: datetime
    etag: str
    fingerprint: str
    state: str
    state_time: datetime
    previous_state: str | None = None
    previous_state_time: datetime | None = None


def _fingerprint(content: Mapping[str, Any]) -> str:
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Timeline:
    """Stamps by key (``pool:<id>``, ``job:<id>``, ``job:<id>/<task>``, ``node:<id>``)."""

    def __init__(self) -> None:
        self._stamps: dict[str, Stamp] = {}
        self._ticks = 0

    def _etag(self, at: datetime) -> str:
        """A new ETag in the service's form (``0x`` and 15 hex digits), never repeated."""
        self._ticks = max(self._ticks + 1, int(at.timestamp() * 10_000_000))
        return f"0x8D{self._ticks % 16**13:013X}"

    def created(self, key: str) -> Stamp:
        """Mark the moment an object was created through the endpoint."""
        at = now()
        stamp = Stamp(at, at, self._etag(at), "", "", at)
        self._stamps[key.lower()] = stamp
        return stamp

    def observe(self, key: str, state: str, content: Mapping[str, Any]) -> Stamp:
        """The object's stamp after seeing it in `state` with these rendered properties."""
        at = now()
        fingerprint = _fingerprint(content)
        stamp = self._stamps.get(key.lower())
        if stamp is None:
            stamp = Stamp(at, at, self._etag(at), fingerprint, state, at)
            self._stamps[key.lower()] = stamp
            return stamp
        if not stamp.state:  # created through the endpoint, seen for the first time
            stamp.state, stamp.fingerprint = state, fingerprint
            return stamp
        if stamp.state != state:
            stamp.previous_state, stamp.previous_state_time = stamp.state, stamp.state_time
            stamp.state, stamp.state_time = state, at
        if stamp.fingerprint != fingerprint:
            stamp.fingerprint, stamp.modified, stamp.etag = fingerprint, at, self._etag(at)
        return stamp

    def forget(self, prefix: str) -> None:
        """Drop the stamps of a deleted object (and of what it held: a job's tasks)."""
        prefix = prefix.lower()
        for key in [key for key in self._stamps if key == prefix or key.startswith(prefix + "/")]:
            del self._stamps[key]

"""structlog loggers that import structlog at the first line they log, not at import.

Importing structlog imports rich when it is installed (``structlog.dev`` and
``structlog.tracebacks`` both do, for their tracebacks): about 50 ms, which a CLI run would pay
before its first engine call. Through `get_logger`, a module's logger costs nothing until it
logs; the sample's first line ("pool created") comes while the engine starts the nodes, so the
import overlaps that wait. The logger is structlog's own (`structlog.get_logger`), so the
configuration in force when a line is logged applies, as it does for a module-level
``structlog.get_logger``.

`when_loaded` is for the one configuration a process makes (`jobprep_release.logs.configure`):
applied once structlog is imported, at once when it already is.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
_pending: list[Callable[[], None]] = []


def _structlog() -> Any:
    """structlog, imported now if it was not, with the pending configuration applied."""
    import structlog

    if _pending:
        with _lock:
            hooks = list(_pending)
            _pending.clear()
        for hook in hooks:
            hook()
    return structlog


def when_loaded(configure: Callable[[], None]) -> None:
    """Run `configure` (which may import structlog) once structlog is imported: now if it is,
    else before the first line logged through `get_logger`."""
    if "structlog" in sys.modules:
        _structlog()
        configure()
        return
    with _lock:
        _pending.append(configure)


class _Logger:
    """A structlog logger named `name`, made at its first use."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str | None) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, method: str) -> Any:
        logger = self._logger
        if logger is None:
            structlog = _structlog()
            logger = structlog.get_logger(self._name) if self._name else structlog.get_logger()
            self._logger = logger
        return getattr(logger, method)


def get_logger(name: str | None = None) -> Any:
    """`structlog.get_logger(name)`, structlog imported at the first line logged."""
    return _Logger(name)

"""Names a package exports but imports only when first used (module `__getattr__`, PEP 562).

A package's ``__init__`` that imports all its parts makes importing any one part import them
all: the docker backend's package would import docker-py for the core's fake-executor tests, and
the core's would import the fake executor for every run.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`: each name in `homes` (name: the module that
    defines it) is imported from its module at its first use and then kept in the package.
    Usage: ``__getattr__, __dir__ = lazy_exports(__name__, {...})``."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *homes})

    return __getattr__, __dir__

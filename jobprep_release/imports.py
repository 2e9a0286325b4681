"""Start-up imports without the garbage collector's passes.

Importing makes long-lived objects (modules, classes, functions) and next to no garbage: a CLI
run's imports leave a few dozen objects of it. The collector's passes during them (a hundred
young passes and some older ones, walking ever more objects) find nothing and cost about a tenth
of the imports' time. `without_collection` turns the collector off for a block of imports, then
freezes what the block made (`gc.freeze`, as the core's heap does with its long-lived records:
`backends/docker/core/heap.py`), so no later pass walks it either, and turns it back on.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def without_collection() -> Iterator[None]:
    """The block runs with the collector off; on leaving it, everything alive is frozen and the
    collector is on again. Nothing changes when the collector was off already."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()

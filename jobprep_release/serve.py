"""`python -m jobprep_release serve`: a local Azure Batch endpoint backed by Docker (issue 8).

Not built yet: the command says so and exits with the "not supported" status.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from backends.errors import NotSupported


def main(argv: Sequence[str]) -> int:
    error = NotSupported("`serve` is not available yet")
    print(f"error: {error.one_line()}", file=sys.stderr)
    return error.exit_status

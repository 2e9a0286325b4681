"""Start-up stays light: `--help` and importing the app load neither the Azure SDK nor the
Docker client nor the app's machinery."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import sys
from jobprep_release import cli
try:
    cli.main(["--help"])
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"azure", "docker", "aiohttp", "rich"})
print("heavy:" + ",".join(heavy))
"""


def test_help_imports_no_backend_sdk() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert "usage: python -m jobprep_release" in result.stdout
    assert result.stdout.splitlines()[-1] == "heavy:"


def test_imports_without_collection_freeze_what_they_made_and_turn_the_collector_back_on() -> None:
    probe = """
import gc
from jobprep_release.imports import without_collection
before = gc.get_freeze_count()
with without_collection():
    assert not gc.isenabled()
    import json.decoder
print(gc.isenabled(), gc.get_freeze_count() > before)
gc.disable()
with without_collection():
    pass
print(gc.isenabled())
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.split() == ["True", "True", "False"]

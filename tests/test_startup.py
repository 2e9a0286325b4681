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


def test_a_run_imports_no_storage_or_report_module_until_it_uses_them() -> None:
    """The modules a run without storage flags or `--json` never calls stay unimported: the
    commands' module (with the flow it runs) and the docker backend as the CLI loads them."""
    probe = """
import sys
from jobprep_release import app, attach, cli
unused = {"jobprep_release.storage_use", "jobprep_release.azurite", "jobprep_release.report"}
print("unused imported:" + ",".join(sorted(unused & set(sys.modules))))
from jobprep_release import flow
from jobprep_release.options import SampleOptions
flow.job_spec(SampleOptions())
flow.task_specs(SampleOptions())
print("after specs:" + ",".join(sorted(unused & set(sys.modules))))
flow.task_specs(SampleOptions(stage_container="common"))
print("staging:" + ",".join(sorted(unused & set(sys.modules))))
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.splitlines() == [
        "unused imported:",
        "after specs:",
        "staging:jobprep_release.azurite,jobprep_release.storage_use",
    ]

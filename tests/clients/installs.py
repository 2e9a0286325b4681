"""Installing other clients for the tests, once, under a cache directory reused between runs:
``$JOBPREP_RELEASE_CLIENT_CACHE``, else ``$XDG_CACHE_HOME/jobprep_release/clients``, else
``~/.cache/jobprep_release/clients``. An install is used only once it finished (a marker file
written last), so an interrupted one is redone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobprep_release.azurite import cache_dir

__all__ = ["cache_dir", "npm_package", "python_venv"]

DONE = ".installed"


def _run(command: list[str], where: Path, timeout: float) -> None:
    result = subprocess.run(
        command, cwd=where, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


def npm_package(spec: str, name: str) -> Path:
    """A directory whose ``node_modules`` holds `spec` (``@azure/batch@10``), from the npm
    registry. Skips (saying why) where Node.js or npm cannot be had."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: apt-get install nodejs npm)")
    where = cache_dir() / f"npm-{name}"
    if not (where / DONE).is_file():
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        (where / "package.json").write_text('{"name": "clients-test", "private": true}\n')
        _run(["npm", "install", "--no-audit", "--no-fund", spec], where, timeout=600)
        (where / DONE).write_text(spec + "\n")
    return where


def python_venv(requirement: str) -> Path:
    """The Python of a virtual environment holding `requirement` (``azure-batch==8.0.0``), from
    PyPI through pip, made with this interpreter's version."""
    where = cache_dir() / requirement.replace("==", "-")
    python = where / "bin" / "python"
    if not (where / DONE).is_file():
        shutil.rmtree(where, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(where)], cache_dir(), timeout=300)
        _run([str(python), "-m", "pip", "install", "-q", requirement], where, timeout=900)
        (where / DONE).write_text(requirement + "\n")
    return python

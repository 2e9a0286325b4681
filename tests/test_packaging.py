"""Packaging: the backends install and import as `jobprep_release.backends`, never as a top-level
`backends` package that would shadow (or be shadowed by) a user's own."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the sources (a build in the working tree would
    leave its `build/` there) without dependencies or the network."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__")
    for name in ("jobprep_release", "backends"):
        shutil.copytree(REPO / name, source / name, symlinks=True, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--wheel-dir", str(out), str(source)),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("jobprep_release-*.whl")
    return built


def test_wheel_holds_backends_under_the_app_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    stray = [
        name for name in names if not name.startswith(("jobprep_release/", "jobprep_release-"))
    ]
    assert stray == []
    assert "jobprep_release/backends/base.py" in names
    assert "jobprep_release/backends/docker/__init__.py" in names


def test_app_runs_beside_an_unrelated_backends_package(tmp_path: Path) -> None:
    """A folder with its own `backends` package (one that fails on import) changes nothing."""
    package = tmp_path / "backends"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('not the app backends')\n")
    result = subprocess.run(
        [sys.executable, "-m", "jobprep_release", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: python -m jobprep_release" in result.stdout
    modules = ("base", "docker", "docker.rest", "azure")
    probe = "import importlib; " + "; ".join(
        f"importlib.import_module('jobprep_release.backends.{name}')" for name in modules
    )
    imported = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert imported.returncode == 0, imported.stderr

"""Benchmark 4: start-up: ``python -m jobprep_release --help`` wall time, and what it imports;
and the imports of a run on docker (what the CLI imports before its first engine request)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from bench.common import PYTHON, REPO, Result, app_env, median, spread, verdict

TARGET_SECONDS = 0.3
TOP = 12


def _wall(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


RUN_IMPORTS = """
import time
start = time.perf_counter()
from jobprep_release.imports import without_collection
with without_collection():
    from jobprep_release import cli
    from jobprep_release.attach import shared_docker_backend
    from jobprep_release import app
print(time.perf_counter() - start)
"""


def run_imports(env: dict[str, str]) -> float:
    """Seconds a new interpreter takes to import what a docker run imports before its first
    engine request (the CLI, the docker backend as `attach` loads it, the commands with the
    flow, structlog with the logs), as `__main__` and `cli` import them."""
    done = subprocess.run(
        [PYTHON, "-c", RUN_IMPORTS], cwd=REPO, env=env, check=True, capture_output=True, text=True
    )
    return float(done.stdout.split()[-1])


def import_times(env: dict[str, str]) -> list[tuple[int, int, str]]:
    """(self us, cumulative us, module) for every import of ``--help``."""
    done = subprocess.run(
        [PYTHON, "-X", "importtime", "-m", "jobprep_release", "--help"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|", 2)
        rows.append((int(own), int(cumulative), name.rstrip()))
    return rows


def bench(runs: int) -> Result:
    env = app_env(Path(os.devnull))
    help_command = [PYTHON, "-m", "jobprep_release", "--help"]
    bare_command = [PYTHON, "-c", "pass"]
    _wall(help_command, env)  # warm the page cache and the bytecode cache
    helps, bares, runs_imports = [], [], []
    for _ in range(runs):
        helps.append(_wall(help_command, env))
        bares.append(_wall(bare_command, env))
        runs_imports.append(run_imports(env))
    rows = import_times(env)
    # Skip the app's own entry points: everything is imported under them.
    nested = [row for row in rows if row[2].strip() not in ("jobprep_release.cli", "runpy")]
    by_cumulative = sorted(nested, key=lambda row: row[1], reverse=True)[:TOP]
    by_self = sorted(rows, key=lambda row: row[0], reverse=True)[:TOP]
    total = sum(row[0] for row in rows) / 1e6
    met = median(helps) < TARGET_SECONDS
    lines = [
        "| what | wall time, median (min, max) |",
        "| --- | --- |",
        f"| `python -m jobprep_release --help` | {spread(helps)} |",
        f"| `python -c pass` (the interpreter alone) | {spread(bares)} |",
        f"| a docker run's imports, in process (`bench/startup.py` `RUN_IMPORTS`) | "
        f"{spread(runs_imports)} |",
        "",
        f"- `--help`: **{median(helps):.3f} s**; target under {TARGET_SECONDS} s: {verdict(met)}",
        f"- imports (sum of `-X importtime` self times): {total:.3f} s over {len(rows)} modules",
        "",
        "Imports by cumulative time (`-X importtime`, one run; depth = nesting under",
        "`jobprep_release.cli`):",
        "",
        "| module | depth | cumulative | self |",
        "| --- | --- | --- | --- |",
        *(
            f"| `{name.strip()}` | {(len(name) - len(name.lstrip())) // 2} | "
            f"{cum / 1000:.1f} ms | {own / 1000:.1f} ms |"
            for own, cum, name in by_cumulative
        ),
        "",
        "Modules by self time:",
        "",
        "| module | self |",
        "| --- | --- |",
        *(f"| `{name.strip()}` | {own / 1000:.1f} ms |" for own, _, name in by_self),
    ]
    name = "`python -m jobprep_release --help` wall time, under 0.3 s"
    return Result("4. Start-up", "\n".join(lines), {name: met}, {name: f"{median(helps):.3f} s"})

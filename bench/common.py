"""What every benchmark shares: ids, scratch state, clean-up by label, timing, the machine."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

REPO = Path(__file__).resolve().parents[1]
POOL_LABEL = "jobprep_release.pool"
NODE_IMAGE = "debian:bookworm-slim"
PYTHON = sys.executable


@dataclass(slots=True)
class Result:
    """One benchmark's outcome: a Markdown section, whether each target was met, and the figure
    each target was judged on (by target)."""

    title: str
    body: str
    targets: dict[str, bool] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)


def unique_id(kind: str) -> str:
    """A Batch id no other run (nor another engineer's test) uses: letters, digits, `-`."""
    return f"bench-{kind}-{uuid.uuid4().hex[:10]}"


def docker_client(pool_size: int = 10) -> Any:
    return docker.from_env(max_pool_size=pool_size)


def remove_labelled(pool_ids: Sequence[str]) -> int:
    """Remove every container and volume labelled with one of `pool_ids`; how many went."""
    client = docker_client()
    removed = 0
    try:
        for pool_id in pool_ids:
            labels = {"label": [f"{POOL_LABEL}={pool_id}"]}
            for container in client.containers.list(all=True, filters=labels):
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True)
                    removed += 1
            for volume in client.volumes.list(filters=labels):
                with contextlib.suppress(docker.errors.NotFound):
                    volume.remove(force=True)
                    removed += 1
    finally:
        client.close()
    return removed


@contextlib.contextmanager
def scratch(*pool_ids: str) -> Iterator[Path]:
    """A temporary state directory; on exit (even on failure) everything labelled with one of
    `pool_ids` is removed, and so is the directory."""
    with tempfile.TemporaryDirectory(prefix="jobprep-bench-") as directory:
        try:
            yield Path(directory)
        finally:
            clean_up(pool_ids)


def clean_up(pool_ids: Sequence[str], patience: float = 180.0) -> None:
    """`remove_labelled`, retried while the engine is unreachable (other people's tests restart
    it); a warning naming the ids, never an exception hiding the benchmark's own, if it stays
    unreachable."""
    deadline = time.monotonic() + patience
    while True:
        try:
            remove_labelled(pool_ids)
        except (docker.errors.DockerException, OSError) as exc:  # requests errors are OSErrors
            if time.monotonic() < deadline:
                time.sleep(2.0)
                continue
            print(
                f"warning: could not remove what pools {', '.join(pool_ids)} left: {exc}",
                file=sys.stderr,
            )
        return


def app_env(state_dir: Path) -> dict[str, str]:
    """The environment of an app subprocess: the repo importable, the scratch state dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_BATCH_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["JOBPREP_RELEASE_STATE_DIR"] = str(state_dir)
    env.pop("JOBPREP_RELEASE_BACKEND", None)
    env.pop("PYTHONASYNCIODEBUG", None)
    return env


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float], unit: str = "s", digits: int = 3) -> str:
    """`median (min-max, n=k)`."""
    return (
        f"{median(values):.{digits}f} {unit} "
        f"(min {min(values):.{digits}f}, max {max(values):.{digits}f}, n={len(values)})"
    )


def verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


def _meminfo_total_gib() -> float:
    with Path("/proc/meminfo").open() as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    return 0.0


def _cpu_model() -> str:
    with contextlib.suppress(OSError), Path("/proc/cpuinfo").open() as handle:
        for line in handle:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    client = docker_client()
    try:
        version = client.version()
    finally:
        client.close()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": f"{os.cpu_count()} ({_cpu_model()})",
        "memory": f"{_meminfo_total_gib():.1f} GiB",
        "kernel": f"{platform.system()} {platform.release()}",
        "docker": f"engine {version.get('Version')} (API {version.get('ApiVersion')})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }

"""``python -m bench``: run every benchmark, write bench/RESULTS.md and the README's table."""

from __future__ import annotations

import argparse
import compileall
import logging
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import structlog

from bench import azure_requests, endpoint, latency, loopcheck, memory, readme, startup, throughput
from bench.common import REPO, Result, machine

OUT = Path(__file__).resolve().parent / "RESULTS.md"
NAMES = ("latency", "throughput", "memory", "startup", "requests", "endpoint", "loop")


def _quiet_app_logs() -> None:
    """The in-process runs log through structlog; keep only warnings and errors."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def _compile_bytecode() -> None:
    """Write the project's bytecode caches first, as any earlier run of the app would have
    (an environment with ``PYTHONDONTWRITEBYTECODE`` set, this one's, never writes them, and
    every CLI run would then compile about 50 modules from source: 0.2 s of CPU)."""
    for package in ("jobprep_release", "backends", "bench"):
        compileall.compile_dir(REPO / package, quiet=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", action="append", choices=NAMES, help="run only these")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the latency benchmark")
    parser.add_argument(
        "--throughput-rounds", type=int, default=3, help="rounds of the throughput benchmark"
    )
    parser.add_argument("--tasks", type=int, default=2000, help="tasks of the throughput run")
    parser.add_argument("--startup-runs", type=int, default=15)
    parser.add_argument(
        "--scale-tasks", type=int, default=10_000, help="tasks of the endpoint and loop checks"
    )
    parser.add_argument(
        "--fake-sizes",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        default=memory.FAKE_SIZES,
        help="task counts of the memory benchmark over the fake executor (comma-separated)",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    _quiet_app_logs()
    _compile_bytecode()
    chosen = args.only or list(NAMES)
    suites: dict[str, Callable[[], Result]] = {
        "latency": lambda: latency.bench(args.rounds),
        "throughput": lambda: throughput.bench(args.throughput_rounds, args.tasks),
        "memory": lambda: memory.bench(fake_sizes=args.fake_sizes),
        "startup": lambda: startup.bench(args.startup_runs),
        "requests": azure_requests.bench,
        "endpoint": lambda: endpoint.bench(args.scale_tasks),
        "loop": lambda: loopcheck.bench(args.scale_tasks),
    }
    host = machine()
    results: list[Result] = []
    started = time.perf_counter()
    for name in NAMES:
        if name not in chosen:
            continue
        print(f"{name} ...", flush=True)
        try:
            results.append(suites[name]())
        except Exception:
            failure = traceback.format_exc()
            print(failure, file=sys.stderr)
            results.append(Result(f"{name}: FAILED", f"```\n{failure}```", {name: False}))
    args.out.write_text(render(host, results, time.perf_counter() - started, chosen))
    print(f"wrote {args.out}")
    if args.out == OUT:
        readme.write()
        print(f"rewrote the performance table in {readme.README}")
    return 0 if all(all(r.targets.values()) for r in results) else 1


def render(host: dict[str, str], results: list[Result], seconds: float, chosen: list[str]) -> str:
    ran = "every benchmark" if len(chosen) == len(NAMES) else "only " + ", ".join(chosen)
    lines = [
        "# Benchmarks (issues 6 and 17)",
        "",
        "Written by `bench/run.sh` (= `python -m bench`); every figure below comes from one run,",
        f"and every ratio compares measurements taken in that same run ({ran}).",
        "",
        "| machine | |",
        "| --- | --- |",
        *(f"| {key} | {value} |" for key, value in host.items()),
        f"| bench wall time | {seconds:.0f} s |",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "| --- | --- | --- |",
    ]
    for result in results:
        lines += [
            f"| {name} | {result.figures.get(name, '')} | {'met' if met else '**missed**'} |"
            for name, met in result.targets.items()
        ]
    for result in results:
        lines += ["", f"## {result.title}", "", result.body]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

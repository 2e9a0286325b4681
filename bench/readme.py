"""The README's performance table, generated from bench/RESULTS.md.

``python -m bench.readme`` rewrites the part of README.md between `START` and `END` from the
machine table and the "Targets" table of bench/RESULTS.md (`python -m bench` does it after each
full run), so the README shows the latest run's figures, missed targets included, and cannot
drift from it: tests/test_bench_readme.py checks that the README holds exactly what `table`
makes of RESULTS.md.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "bench" / "RESULTS.md"
START = "<!-- performance table: written by `python -m bench.readme` from bench/RESULTS.md -->"
END = "<!-- end of the performance table -->"


def _section(text: str, heading: str) -> list[str]:
    """The lines of the Markdown table that follows `heading` (or the first table)."""
    lines = text.splitlines()
    start = lines.index(heading) if heading else 0
    table: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    return table


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def table(results: str) -> str:
    """The README's block (markers included) for the text of bench/RESULTS.md."""
    machine = {
        cells[0]: cells[1] for cells in map(_cells, _section(results, "")[2:]) if len(cells) > 1
    }
    rows = []
    for cells in map(_cells, _section(results, "## Targets")[2:]):
        name, *rest = cells
        measured = rest[0] if len(rest) > 1 else ""
        met = rest[-1] == "met"
        rows.append(f"| {name} | {measured} | {'met' if met else '**missed**'} |")
    missed = sum(row.endswith("**missed** |") for row in rows)
    return "\n".join(
        [
            START,
            f"Latest run: {machine.get('date', '?')}, cores {machine.get('cores', '?')}, "
            f"Docker {machine.get('docker', '?')}, load average at the start "
            f"{machine.get('load average at start', '?')}, {machine.get('bench wall time', '?')}"
            f" in all; {len(rows) - missed} of {len(rows)} targets met.",
            "",
            "| comparison | measured | target |",
            "| --- | --- | --- |",
            *rows,
            END,
        ]
    )


def rewrite(readme: str, results: str) -> str:
    """`readme` with the block between the markers replaced by `table(results)`; ValueError
    when the markers are missing."""
    start, end = readme.index(START), readme.index(END) + len(END)
    return readme[:start] + table(results) + readme[end:]


def current(readme: str) -> str:
    """The block between the markers as the README holds it."""
    return readme[readme.index(START) : readme.index(END) + len(END)]


def write() -> None:
    README.write_text(rewrite(README.read_text(), RESULTS.read_text()))


if __name__ == "__main__":
    write()

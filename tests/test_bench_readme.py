"""The README's performance table is what bench/readme.py makes of bench/RESULTS.md (issue 17):
the two cannot drift apart, and a missed target in RESULTS.md shows as missed in the README."""

from __future__ import annotations

from bench import readme


def test_readme_table_is_generated_from_results() -> None:
    results = readme.RESULTS.read_text()
    assert readme.current(readme.README.read_text()) == readme.table(results)


def test_every_target_of_results_is_in_the_table_with_its_verdict() -> None:
    results = readme.RESULTS.read_text()
    lines = results.splitlines()
    targets = lines[lines.index("## Targets") + 4 :]
    targets = targets[: next(i for i, line in enumerate(targets) if not line.startswith("|"))]
    block = readme.table(results)
    assert targets, "RESULTS.md has no targets"
    for row in targets:
        name = row.strip("|").split("|")[0].strip()
        missed = row.rstrip().endswith("**missed** |")
        wanted = f"| {name} |"
        line = next(line for line in block.splitlines() if line.startswith(wanted))
        assert line.endswith("**missed** |") == missed, line


def test_a_missed_target_shows_as_missed() -> None:
    results = "\n".join(
        [
            "| machine | |",
            "| --- | --- |",
            "| date | 2026-01-01 00:00 UTC |",
            "",
            "## Targets",
            "",
            "| target | measured | |",
            "| --- | --- | --- |",
            "| a / b, at most 1.0x | 1.30x | **missed** |",
            "| c, under 50 ms | 12 ms | met |",
            "",
        ]
    )
    block = readme.table(results)
    assert "| a / b, at most 1.0x | 1.30x | **missed** |" in block
    assert "| c, under 50 ms | 12 ms | met |" in block
    assert "1 of 2 targets met" in block

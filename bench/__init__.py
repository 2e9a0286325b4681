"""Benchmarks of jobprep_release (issue 6): run with ``bench/run.sh`` or ``python -m bench``.

Not tests: pytest never collects them (its testpath is ``tests/``). Results go to
``bench/RESULTS.md``.
"""

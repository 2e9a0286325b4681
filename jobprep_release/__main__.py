"""`python -m jobprep_release`: run the sample."""

from __future__ import annotations

from jobprep_release.cli import main

raise SystemExit(main())

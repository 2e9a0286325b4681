"""Batch backends: the interface the app talks to and one implementation per service.

`base` holds the interface and the models; `errors` the error tree. Each backend lives in its
own subpackage and is imported only when chosen (see `jobprep_release.backends.load`).

The source folder is the repository's top-level `backends/`; `jobprep_release/backends` is a
symbolic link to it, so it installs and imports as `jobprep_release.backends` and nothing named
`backends` lands in site-packages.
"""

from __future__ import annotations

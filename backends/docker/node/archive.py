"""Files the core places on a node, as one tar the engine extracts into the node container."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import time
from collections.abc import Sequence
from typing import IO

from jobprep_release.backends.docker.core.executor import NodeFile

TASK_USER_ID = 1000
SPOOL_LIMIT = 1 << 20
"""Bytes of an archive kept in memory before it goes to a temporary file."""


def archive(files: Sequence[NodeFile]) -> IO[bytes]:
    """A tar, rooted at `/`, holding each file at its path with its mode and owner (root when
    elevated, else the task user), read back from the start; spooled to disk past
    `SPOOL_LIMIT`, so a file from a local `source` is copied, never held in memory. Blocking:
    run it in a worker thread."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_LIMIT)  # noqa: SIM115 (returned)
    with tarfile.open(fileobj=spool, mode="w") as tar:
        for file in files:
            member = tarfile.TarInfo(file.path.lstrip("/"))
            member.mode = file.mode
            member.uid = member.gid = 0 if file.elevated else TASK_USER_ID
            member.mtime = int(time.time())
            if file.source is None:
                member.size = len(file.data)
                tar.addfile(member, io.BytesIO(file.data))
                continue
            with open(file.source, "rb") as source:  # noqa: PTH123 (a plain path string)
                member.size = os.fstat(source.fileno()).st_size
                tar.addfile(member, source)
    spool.seek(0)
    return spool

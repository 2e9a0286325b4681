"""Files the core places on a node, as one tar the engine extracts into the node container."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Sequence

from jobprep_release.backends.docker.core.executor import NodeFile

TASK_USER_ID = 1000


def archive(files: Sequence[NodeFile]) -> bytes:
    """A tar, rooted at `/`, holding each file at its path with its mode and owner (root when
    elevated, else the task user)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for file in files:
            member = tarfile.TarInfo(file.path.lstrip("/"))
            member.size = len(file.data)
            member.mode = file.mode
            member.uid = member.gid = 0 if file.elevated else TASK_USER_ID
            member.mtime = int(time.time())
            tar.addfile(member, io.BytesIO(file.data))
    return buffer.getvalue()

"""The state lock's probe (`StateStore.held`): a killed holder no longer holds the state, even
while its pid still answers (a zombie its parent has not reaped yet)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from jobprep_release.backends.docker.core.store import StateStore

HOLD = """
import sys, time
from pathlib import Path
from jobprep_release.backends.docker.core.store import StateStore
store = StateStore(Path(sys.argv[1]), "engine")
assert store.try_acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_killed_holder_holds_nothing_while_its_pid_still_answers(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "engine")
    assert not store.held()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert store.held()
        assert not store.try_acquire()
        os.kill(holder.pid, signal.SIGKILL)
        os.waitid(os.P_PID, holder.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped
        os.kill(holder.pid, 0)  # the zombie's pid still answers
        assert not store.held()
    finally:
        holder.kill()
        holder.wait()
    assert store.try_acquire()
    store.release()

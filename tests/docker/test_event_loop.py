"""Nothing blocking runs on the event loop: a detector wraps the blocking I/O the app could
reach (docker-py's HTTP requests, blocking sockets, time.sleep) and records any call made on
the loop's own thread while the whole sample runs."""

from __future__ import annotations

import io
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from jobprep_release.backends.docker import DockerBackend, DockerSettings
from jobprep_release.console import Console
from jobprep_release.flow import run_sample
from jobprep_release.options import Answer, SampleOptions
from tests.conftest import Ids


@contextmanager
def blocking_call_detector(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    loop_thread = threading.get_ident()
    calls: list[str] = []

    def guard(name: str, original: Callable[..., Any], *, only_blocking: bool = False) -> Any:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            blocking = not only_blocking or args[0].gettimeout() is None
            if threading.get_ident() == loop_thread and blocking:
                where = traceback.format_stack(limit=6)[:-1]
                calls.append(f"{name} on the event loop:\n{''.join(where)}")
            return original(*args, **kwargs)

        return guarded

    monkeypatch.setattr(requests.Session, "send", guard("HTTP request", requests.Session.send))
    for method in ("recv", "sendall", "connect"):
        original = getattr(socket.socket, method)
        monkeypatch.setattr(socket.socket, method, guard(method, original, only_blocking=True))
    monkeypatch.setattr(time, "sleep", guard("time.sleep", time.sleep))
    yield calls


async def test_the_sample_never_blocks_the_event_loop(
    ids: Ids, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = SampleOptions(pool_id=ids.pool, job_id=ids.job)
    with blocking_call_detector(monkeypatch) as calls:
        async with DockerBackend(DockerSettings(state_dir=state_dir)) as backend:
            outcome = await run_sample(backend, Console(Answer.YES, out=io.StringIO()), options)
    assert outcome.succeeded
    assert calls == [], "\n".join(calls)


def test_the_detector_sees_blocking_calls(
    monkeypatch: pytest.MonkeyPatch, docker_client: docker.DockerClient
) -> None:
    with blocking_call_detector(monkeypatch) as calls:
        time.sleep(0)
        docker_client.ping()
    assert [call.split(" on ")[0] for call in calls[:2]] == ["time.sleep", "HTTP request"]

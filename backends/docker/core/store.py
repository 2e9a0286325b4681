"""Where the service's state is kept: one JSON document and a journal, in files or in memory.

The file store (`StateStore`) rewrites its document atomically (write, fsync, rename) so a crash
between any two steps leaves either the old or the new document, never half of one. Between two
documents, small entries are appended to a journal (one JSON line each: what the service is
about to start), so the state need not be rewritten before every start; an entry carries a
sequence number, and a document the last one it includes (`journal_seq`), so entries already in
the document are skipped on load and dropped once it is written. It lives in
the user's state directory, one file per engine, and a lock file keeps two runs from driving the
same state at once. `MemoryStore` keeps the document in memory, for tests and in-process
endpoints: a new service on the same store sees what the last one wrote, as after a crash.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any, Protocol

import anyio.to_thread
import structlog

from jobprep_release.backends.base import TaskState
from jobprep_release.backends.docker.core.codec import decode, encode
from jobprep_release.backends.docker.core.migrations import migrate
from jobprep_release.backends.docker.core.records import (
    STATE_VERSION,
    JobRecord,
    ServiceState,
    TaskRecord,
)
from jobprep_release.backends.errors import StateUnreadable

log = structlog.get_logger("jobprep_release.docker")

LOCK_POLL = 0.2
"""Seconds between two looks at a state lock another process holds."""


class Store(Protocol):
    """The service's persistence: the last state written, and writing a new one."""

    async def load(self) -> ServiceState:
        """The state last written (an empty one when none was); `StateUnreadable` when it
        cannot be read."""
        ...

    async def write(self, document: Document) -> None:
        """Replace the kept state with `document` (from `serialize`), atomically; journal
        entries it includes may go."""
        ...

    async def append(self, entry: Any) -> None:
        """Add `entry` (JSON values with a ``seq``) to the journal; kept once this returns."""
        ...

    async def journal(self) -> list[Any]:
        """The journal's entries, oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class Document:
    """A state as JSON text, and the last journal entry it includes."""

    text: str
    journal_seq: int


_COMPACT = (",", ":")
_JOB_FIELDS = tuple(field.name for field in fields(JobRecord) if field.name != "tasks")


class _TaskTexts:
    """The JSON text of each completed or waiting (``active``) task, kept between documents.

    A state is written often and, in a large job, is mostly tasks completed or waiting, which
    change only by a transition or an update (each a new history tick: reactivation, a retry,
    a requeue, Update Task), by being placed on a node or when their files are swept: their
    text is reused while (state, tick, node, files_removed) stays, so writing the state costs a
    look-up per such task, not an encoding. Only the texts of the last document are kept.
    """

    def __init__(self) -> None:
        self.texts: dict[int, tuple[TaskRecord, tuple[Any, ...], str]] = {}

    def document(self, state: ServiceState) -> str:
        kept: dict[int, tuple[TaskRecord, tuple[Any, ...], str]] = {}
        jobs = []
        for key, job in state.jobs.items():
            tasks = [self._text(id_, task, kept) for id_, task in job.tasks.items()]
            shell = json.dumps(
                {name: encode(getattr(job, name)) for name in _JOB_FIELDS}, separators=_COMPACT
            )
            jobs.append(f'{json.dumps(key)}:{shell[:-1]},"tasks":{{{",".join(tasks)}}}}}')
        self.texts = kept
        rest = {
            field.name: encode(getattr(state, field.name))
            for field in fields(ServiceState)
            if field.name != "jobs"
        }
        head = json.dumps(rest, separators=_COMPACT)
        return f'{head[:-1]},"jobs":{{{",".join(jobs)}}}}}'

    def _text(
        self, key: str, task: TaskRecord, kept: dict[int, tuple[TaskRecord, tuple[Any, ...], str]]
    ) -> str:
        """``"<key>":<the task's JSON>``."""
        if task.state not in _STABLE:
            return f"{json.dumps(key)}:{json.dumps(encode(task), separators=_COMPACT)}"
        version = (task.state, task.history.tick, task.node_id, task.files_removed)
        known = self.texts.get(id(task))
        if known is not None and known[0] is task and known[1] == version:
            text = known[2]
        else:
            text = f"{json.dumps(key)}:{json.dumps(encode(task), separators=_COMPACT)}"
        kept[id(task)] = (task, version, text)
        return text


_STABLE = (TaskState.COMPLETED, TaskState.ACTIVE)
_task_texts = _TaskTexts()


def serialize(state: ServiceState) -> Document:
    """A snapshot of the state as JSON text: it may be written by another thread while the
    state moves on."""
    return Document(_task_texts.document(state), state.journal_seq)


def parse(raw: Any, where: str = "document", entries: list[Any] | None = None) -> ServiceState:
    """A state from a document `serialize` made, by this app version or an older one
    (`migrations.migrate`, in place, with the journal `entries` written beside it);
    `StateUnreadable`, naming `where`, when it cannot be read: a state is never reset."""
    migrate(raw, [] if entries is None else entries, where)
    try:
        return decode(ServiceState, raw)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise StateUnreadable(
            f"the docker backend's state {where} does not hold a state this app can read "
            f"({type(exc).__name__}: {exc})",
            hint="use the app version that wrote it (nothing was changed)",
        ) from exc


def default_state_dir() -> Path:
    """``$JOBPREP_RELEASE_STATE_DIR``, else ``$XDG_STATE_HOME/jobprep_release``."""
    explicit = os.environ.get("JOBPREP_RELEASE_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "jobprep_release"


class MemoryStore:
    """A state kept in memory, as the JSON documents files would hold. `writes` counts the
    state's writes, `appends` the journal's."""

    def __init__(self) -> None:
        self.document: str | None = None
        self.entries: list[str] = []
        self.writes = 0
        self.appends = 0

    async def append(self, entry: Any) -> None:
        self.entries.append(json.dumps(entry))
        self.appends += 1

    async def journal(self) -> list[Any]:
        return [json.loads(entry) for entry in self.entries]

    async def load(self) -> ServiceState:
        if self.document is None:
            return ServiceState()
        return parse(json.loads(self.document), "in memory", await self.journal())

    async def write(self, document: Document) -> None:
        self.document = document.text
        self.writes += 1
        done = document.journal_seq
        self.entries = [e for e in self.entries if json.loads(e)["seq"] > done]


class StateStore:
    """One engine's state file, held under an exclusive lock while a backend is open."""

    def __init__(self, directory: Path, engine_id: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", engine_id)[:80]
        self.path = directory / f"docker-{safe}.json"
        self._lock_path = directory / f"docker-{safe}.lock"
        self.journal_path = directory / f"docker-{safe}.journal"
        self._lock: IO[str] | None = None
        self._journal_lock = anyio.Lock()

    async def acquire(self) -> None:
        """Take the state's lock, waiting while another process holds it (a run started
        beside another waits its turn, saying once which process it waits for, rather than
        failing); cancelling the wait (Ctrl-C) leaves nothing taken."""
        waited = False
        while not await anyio.to_thread.run_sync(self.try_acquire):
            if not waited:
                log.warning(
                    "waiting for the docker backend's state: another jobprep_release process "
                    "is using it; this run goes on when that one ends (Ctrl-C stops waiting)",
                    file=str(self.path),
                    holder=self.holder(),
                )
                waited = True
            await anyio.sleep(LOCK_POLL)
        if waited:
            log.info("the docker backend's state is free: going on", file=str(self.path))

    def try_acquire(self) -> bool:
        """Take the lock if it is free (blocking I/O, no waiting); False when it is held."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self._lock_path.open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            return False
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}\n")
        lock.flush()
        self._lock = lock
        return True

    def holder(self) -> str:
        """Who holds the lock, as it wrote itself down (``pid N``); "" when unknown."""
        try:
            return self._lock_path.read_text().strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    async def load(self) -> ServiceState:
        return await anyio.to_thread.run_sync(self.load_now)

    def load_now(self) -> ServiceState:
        """`load`, blocking (for commands that run outside an event loop's hot path). A state
        of an older format is migrated and written back, the original kept beside it as
        ``<name>.v<version>.json``; `StateUnreadable` names the file, left as it was."""
        where = str(self.path)
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return ServiceState()
        except OSError as exc:
            raise StateUnreadable(
                f"the docker backend's state {where} cannot be read: {exc.strerror}"
            ) from exc
        try:
            raw: Any = json.loads(text)
        except ValueError as exc:
            raise StateUnreadable(
                f"the docker backend's state {where} is not JSON ({exc})",
                hint="move it aside to start afresh: pools are found again from their "
                "containers' labels (nothing was changed)",
            ) from exc
        entries = self._read_journal()
        found = raw.get("version") if isinstance(raw, dict) else None
        state = parse(raw, where, entries)
        if found != STATE_VERSION:
            backup = self.path.with_name(f"{self.path.stem}.v{found}.json")
            backup.write_text(text)
            self.write_now(Document(json.dumps(raw, separators=_COMPACT), state.journal_seq))
            self._write_journal(entries)
            log.info("migrated the docker backend's state", file=where, version=found)
        return state

    async def write(self, document: Document) -> None:
        await anyio.to_thread.run_sync(self.write_now, document)
        done = document.journal_seq
        async with self._journal_lock:
            await anyio.to_thread.run_sync(self._compact, done)

    async def append(self, entry: Any) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        async with self._journal_lock:
            await anyio.to_thread.run_sync(self._append_now, line)

    def _append_now(self, line: str) -> None:
        # No fsync: the journal guards against the app dying, which leaves the page cache.
        with self.journal_path.open("a") as handle:
            handle.write(line)

    async def journal(self) -> list[Any]:
        return await anyio.to_thread.run_sync(self._read_journal)

    def _read_journal(self) -> list[Any]:
        try:
            text = self.journal_path.read_text()
        except FileNotFoundError:
            return []
        entries = []
        for line in text.splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                break  # a line cut short by a crash: nothing after it was written either
        return entries

    def _compact(self, done: int) -> None:
        """Drop the entries the written state includes."""
        self._write_journal([entry for entry in self._read_journal() if int(entry["seq"]) > done])

    def _write_journal(self, kept: list[Any]) -> None:
        temporary = self.journal_path.with_suffix(".journal-tmp")
        temporary.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in kept))
        temporary.replace(self.journal_path)

    def write_now(self, document: Document) -> None:
        """`write`, blocking."""
        data = document.text.encode()
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.path)

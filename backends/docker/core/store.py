"""Where the service's state is kept: one row per object and a journal, in SQLite or in memory.

The state is kept as rows keyed by (kind, parent, id): the state's own fields (``meta``), each
pool (with its nodes), job (without its tasks), task (its parent: its job's key) and job
schedule, each row the object's JSON (`codec.encode`). A save (`Tracker.changes`) encodes only
the objects changed since the last one and deletes the rows of objects gone, so its cost grows
with what changed, not with the state: at 10,000 tasks a save after one task moved writes one
task row (and the small rows of its job and pool when they changed too). Between two saves,
small entries are appended to a journal (what the service is about to start), so the state need
not be saved before every start; an entry carries a sequence number, and a save the last one it
includes (``journal_seq``), so entries already in the state are skipped on load and dropped by
the save that includes them, in the same transaction.

The file store (`StateStore`) is one SQLite database per engine, in the user's state directory,
in WAL mode with ``synchronous=NORMAL``: each save and each journal entry is one transaction,
and a transaction committed is kept when the app dies at any instant after it (the WAL is in
the page cache; only an operating-system crash or power loss could lose the last ones, as with
the journal file before it). A lock file keeps two runs from driving the same state at once.
The database is read and written in a worker thread. A state of the format before this one
(one JSON document, ``docker-<engine>.json``, rewritten whole, beside a journal file) is
migrated into the database on first load and kept beside it as ``docker-<engine>.v<version>.json``.

`MemoryStore` keeps the same rows in dictionaries, for tests and in-process endpoints: a new
service on the same store sees what the last one wrote, as after a crash.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any, Protocol

import anyio
import anyio.lowlevel
import anyio.to_thread
import structlog

from jobprep_release.backends.base import TaskState
from jobprep_release.backends.docker.core.codec import decode, encode
from jobprep_release.backends.docker.core.migrations import migrate
from jobprep_release.backends.docker.core.pace import Pace
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

SLICE = 0.002
"""Seconds of encoding a save may spend before letting the loop run (`Tracker.changes`)."""

Key = tuple[str, str, str]
"""A row's key: its kind (``meta``, ``pool``, ``job``, ``task``, ``schedule``), its parent (a
task's job key; "" for the others) and its id (the object's key in the state)."""

META: Key = ("meta", "", "")
_COLLECTIONS = {"pools": "pool", "jobs": "job", "schedules": "schedule"}
_COMPACT = (",", ":")
_META_FIELDS = tuple(f.name for f in fields(ServiceState) if f.name not in _COLLECTIONS)
_JOB_FIELDS = tuple(f.name for f in fields(JobRecord) if f.name != "tasks")
_STABLE = (TaskState.COMPLETED, TaskState.ACTIVE)
_ASIDE = (
    "move it aside to start afresh: pools are found again from their containers' labels "
    "(nothing was changed)"
)


@dataclass(slots=True)
class Changes:
    """What a save writes: rows to put (key to JSON text, in the state's order), rows to
    delete, and the last journal entry the state includes (entries up to it go)."""

    rows: dict[Key, str] = field(default_factory=dict)
    gone: list[Key] = field(default_factory=list)
    journal_seq: int = 0
    seen: list[tuple[Key, Seen | None]] = field(default_factory=list, repr=False)
    """What the tracker learns once these are written (`Tracker.commit`): each row's new
    `Seen` (None: deleted)."""

    def __len__(self) -> int:
        return len(self.rows) + len(self.gone)


class Store(Protocol):
    """The service's persistence: the rows last written, and writing changes to them."""

    async def load(self) -> ServiceState:
        """The state last written (an empty one when none was); `StateUnreadable` when it
        cannot be read."""
        ...

    async def write(self, changes: Changes) -> None:
        """Put and delete `changes`' rows and drop the journal entries up to its
        ``journal_seq``, all at once (a crash leaves all of it or none)."""
        ...

    async def append(self, entry: Any) -> None:
        """Add `entry` (JSON values with a ``seq``) to the journal; kept once this returns."""
        ...

    async def journal(self) -> list[Any]:
        """The journal's entries, oldest first."""
        ...


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=_COMPACT)


Seen = tuple[object, Any, int, Any, bool, str | None]
"""What a save saw of a row's object: the object, and for a task its state, history tick, node
and files_removed (what moves when a stable task changes), and the text written (None: as
read from the store, its text unknown, or a stable task's, never compared)."""


class Tracker:
    """What a service last wrote to its store, so a save encodes only what changed.

    Every object is looked at in each save, but most cost a look-up: a task completed or
    waiting (``active``) changes only by a transition or an update (each a new history tick:
    reactivation, a retry, a requeue, Update Task), by being placed on a node or when its files
    are swept, so its row is rewritten only when its state, tick, node or files_removed moved
    (compared in place: looking at an unchanged task allocates nothing, so saves add no work to
    the garbage collector). Any other row (the few running tasks, pools, jobs without their
    tasks, schedules) is encoded and compared with the text last written. The look-ups and
    encodings are split in slices of at most `SLICE` seconds, the loop running between them:
    an object changed after its slice was looked at is written by the next save.
    """

    def __init__(self) -> None:
        self._rows: dict[Key, Seen] = {}
        """Rows other than tasks'."""
        self._tasks: dict[str, dict[str, Seen]] = {}
        """Tasks' rows, by job key and task key."""

    def prime(self, state: ServiceState) -> None:
        """`state` was just read from the store: its rows are all there (their texts unknown:
        rows other than stable tasks' are written once again by the next save)."""
        self._rows = {META: (state, None, 0, None, False, None)}
        for name, kind in _COLLECTIONS.items():
            for key, record in getattr(state, name).items():
                self._rows[(kind, "", key)] = (record, None, 0, None, False, None)
        self._tasks = {
            job_key: {key: _seen(task, None) for key, task in job.tasks.items()}
            for job_key, job in state.jobs.items()
        }

    async def changes(self, state: ServiceState) -> Changes:
        """The rows to write for `state` to be what the store holds, encoded in slices."""
        changes = Changes(journal_seq=state.journal_seq)
        pace = Pace(SLICE)
        meta = {f: encode(getattr(state, f)) for f in _META_FIELDS}
        present: set[Key] = set()
        self._row(META, state, meta, changes, present)
        for name, kind in _COLLECTIONS.items():
            for key, record in list(getattr(state, name).items()):
                if kind == "job":
                    body = {f: encode(getattr(record, f)) for f in _JOB_FIELDS}
                else:
                    body = encode(record)
                self._row((kind, "", key), record, body, changes, present)
                if pace.due():
                    await pace.pause()
        changes.gone = [key for key in self._rows if key not in present]
        changes.seen.extend((key, None) for key in changes.gone)
        for job_key in list(state.jobs):
            job = state.jobs.get(job_key)
            if job is not None:
                await self._job_tasks(job_key, job, changes, pace)
        for job_key, seen in self._tasks.items():
            if job_key not in state.jobs:
                gone = [("task", job_key, key) for key in seen]
                changes.gone += gone
                changes.seen.extend((key, None) for key in gone)
        return changes

    async def _job_tasks(self, job_key: str, job: JobRecord, changes: Changes, pace: Pace) -> None:
        seen = self._tasks.get(job_key, {})
        tasks = job.tasks
        known = 0
        for count, task_key in enumerate(list(tasks)):
            task = tasks.get(task_key)
            if task is None:
                continue  # deleted since the look began: the next save deletes its row
            entry = seen.get(task_key)
            if entry is not None:
                known += 1
                if (
                    entry[0] is task
                    and entry[1] is task.state
                    and entry[1] in _STABLE
                    and entry[2] == task.history.tick
                    and entry[3] == task.node_id
                    and entry[4] == task.files_removed
                ):
                    if count & 255 == 0 and pace.due():
                        await pace.pause()
                    continue
            text = _dumps(encode(task))
            key = ("task", job_key, task_key)
            if entry is None or entry[0] is not task or entry[5] != text:
                changes.rows[key] = text
            changes.seen.append((key, _seen(task, text)))
            if pace.due():
                await pace.pause()
        if known < len(seen):
            gone = [("task", job_key, key) for key in seen if key not in tasks]
            changes.gone += gone
            changes.seen.extend((key, None) for key in gone)

    async def commit(self, changes: Changes) -> None:
        """`changes` were written: the next save is relative to them (recorded in slices)."""
        pace = Pace(SLICE)
        for count, (key, entry) in enumerate(changes.seen):
            if count & 255 == 255 and pace.due():
                await pace.pause()
            kind, parent, id_ = key
            if kind != "task":
                if entry is None:
                    self._rows.pop(key, None)
                else:
                    self._rows[key] = entry
            elif entry is None:
                tasks = self._tasks.get(parent)
                if tasks is not None:
                    tasks.pop(id_, None)
                    if not tasks:
                        del self._tasks[parent]
            else:
                self._tasks.setdefault(parent, {})[id_] = entry

    def _row(
        self, key: Key, record: object, body: Any, changes: Changes, present: set[Key]
    ) -> None:
        present.add(key)
        text = _dumps(body)
        known = self._rows.get(key)
        if known is None or known[5] != text:
            changes.rows[key] = text
            changes.seen.append((key, (record, None, 0, None, False, text)))


def _seen(task: TaskRecord, text: str | None) -> Seen:
    # A stable task is compared by its version, never by its text: keeping the text of every
    # completed task would cost about a kilobyte a task for nothing.
    kept = None if task.state in _STABLE else text
    return (task, task.state, task.history.tick, task.node_id, task.files_removed, kept)


def rows_of(document: dict[str, Any]) -> dict[Key, str]:
    """The rows of a state document (the JSON form of a whole `ServiceState`)."""
    rows = {META: _dumps({k: v for k, v in document.items() if k not in _COLLECTIONS})}
    for name, kind in _COLLECTIONS.items():
        for key, body in (document.get(name) or {}).items():
            if kind == "job" and isinstance(body, dict):
                rows[(kind, "", key)] = _dumps({k: v for k, v in body.items() if k != "tasks"})
                for task_key, task in (body.get("tasks") or {}).items():
                    rows[("task", key, task_key)] = _dumps(task)
            else:
                rows[(kind, "", key)] = _dumps(body)
    return rows


def document_of(rows: Iterable[tuple[Key, str]], where: str) -> dict[str, Any] | None:
    """The state document `rows` hold (in their order); None when there are none.
    `StateUnreadable`, naming `where`, when a row is not JSON."""
    document: dict[str, Any] = {name: {} for name in _COLLECTIONS}
    tasks: dict[str, dict[str, Any]] = {}
    meta = False
    for (kind, parent, key), text in rows:
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise StateUnreadable(
                f"the docker backend's state {where} has a {kind} row ({key!r}) that is not "
                f"JSON ({exc})",
                hint=_ASIDE,
            ) from exc
        if kind == "meta":
            meta = True
            if isinstance(body, dict):
                document.update(body)
        elif kind == "task":
            tasks.setdefault(parent, {})[key] = body
        else:
            name = next((n for n, k in _COLLECTIONS.items() if k == kind), None)
            if name is None:
                raise StateUnreadable(f"the docker backend's state {where} has a {kind!r} row")
            document[name][key] = body
    if not meta:
        if any(document[name] for name in _COLLECTIONS) or tasks:
            raise StateUnreadable(f"the docker backend's state {where} has no format version")
        return None
    for job_key, job in document["jobs"].items():
        if isinstance(job, dict):
            job["tasks"] = tasks.get(job_key, {})
    return document


def parse(raw: Any, where: str = "document", entries: list[Any] | None = None) -> ServiceState:
    """A state from a document (`document_of`), by this app version or an older one
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
    """A state kept in memory, as the rows the database would hold. `writes` counts the
    saves, `appends` the journal's entries, `written` the rows put or deleted by the last
    save (`last`)."""

    def __init__(self) -> None:
        self.rows: dict[Key, str] = {}
        self.entries: list[str] = []
        self._seqs: list[int] = []
        self.writes = 0
        self.appends = 0
        self.written = 0
        self.last: Changes | None = None

    @property
    def document(self) -> str | None:
        """The whole state as one JSON document (None before the first save); assigning one
        replaces the rows with its."""
        document = document_of(self.rows.items(), "in memory")
        return None if document is None else _dumps(document)

    @document.setter
    def document(self, text: str) -> None:
        self.rows = rows_of(json.loads(text))

    async def append(self, entry: Any) -> None:
        self.entries.append(_dumps(entry))
        self._seqs.append(int(entry["seq"]))
        self.appends += 1

    async def journal(self) -> list[Any]:
        return [json.loads(entry) for entry in self.entries]

    async def load(self) -> ServiceState:
        document = document_of(self.rows.items(), "in memory")
        if document is None:
            return ServiceState()
        return parse(document, "in memory", await self.journal())

    async def write(self, changes: Changes) -> None:
        for key in changes.gone:
            self.rows.pop(key, None)
        self.rows.update(changes.rows)
        self.writes += 1
        self.written = len(changes)
        self.last = changes
        done = changes.journal_seq
        if self._seqs and self._seqs[0] <= done:
            kept = [n for n, seq in enumerate(self._seqs) if seq > done]
            self.entries = [self.entries[n] for n in kept]
            self._seqs = [self._seqs[n] for n in kept]


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, parent TEXT NOT NULL, "
    "id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, parent, id))",
    "CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)",
)
_LAYOUT = 1
"""The database's table layout (``PRAGMA user_version``); the state's format is its
``meta`` row's ``version`` (`migrations`)."""
_PUT = (
    "INSERT INTO objects (kind, parent, id, body) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (kind, parent, id) DO UPDATE SET body = excluded.body"
)
_DELETE = "DELETE FROM objects WHERE kind = ? AND parent = ? AND id = ?"


def unusable_state_dir(directory: Path, exc: OSError) -> StateUnreadable:
    """The error for a state directory that cannot be made or written (a file, a read-only
    file system): status 9, naming the directory and the flag to choose another."""
    return StateUnreadable(
        f"the docker backend's state directory {directory} cannot be used: {exc.strerror or exc}",
        hint="give a directory this user can write, with --state-dir or JOBPREP_RELEASE_STATE_DIR",
    )


class StateStore:
    """One engine's state database, held under an exclusive lock while a backend is open."""

    def __init__(self, directory: Path, engine_id: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", engine_id)[:80]
        self.path = directory / f"docker-{safe}.sqlite"
        self.legacy_path = directory / f"docker-{safe}.json"
        """The state file of the format before the database (migrated on first load)."""
        self.legacy_journal_path = directory / f"docker-{safe}.journal"
        self._lock_path = directory / f"docker-{safe}.lock"
        self._lock: IO[str] | None = None
        self._db: sqlite3.Connection | None = None
        self._db_lock = threading.Lock()

    async def acquire(self, while_held: Callable[[], Awaitable[str | None]] | None = None) -> None:
        """Take the state's lock, waiting while another process holds it (a run started
        beside another waits its turn, saying once which process it waits for, rather than
        failing); cancelling the wait (Ctrl-C) leaves nothing taken. `while_held` is awaited
        each time the lock is found held, before waiting: it may raise to stop waiting, or
        return why this process waits (said instead of the usual line, once per reason).
        `StateUnreadable` (`unusable_state_dir`) when the state directory cannot be made or
        written."""
        waited = False
        said: str | None = None
        while not await anyio.to_thread.run_sync(self._try_acquire):
            reason = None if while_held is None else await while_held()
            if not waited or (reason is not None and reason != said):
                log.warning(
                    reason
                    or "waiting for the docker backend's state: another jobprep_release process "
                    "is using it; this run goes on when that one ends (Ctrl-C stops waiting)",
                    file=str(self.path),
                    holder=self.holder(),
                )
                waited, said = True, reason
            await anyio.sleep(LOCK_POLL)
        if waited:
            log.info("the docker backend's state is free: going on", file=str(self.path))

    def _try_acquire(self) -> bool:
        try:
            return self.try_acquire()
        except OSError as exc:
            raise unusable_state_dir(self.path.parent, exc) from exc

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

    def held(self) -> bool:
        """Whether a process (this one included) holds the lock now: a probe that takes
        nothing (blocking I/O). A holder killed a moment ago no longer holds it even while its
        pid still answers (a zombie its parent has not reaped yet)."""
        try:
            probe = self._lock_path.open("a+")
        except OSError:
            return False
        with probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(probe, fcntl.LOCK_UN)
            return False

    def holder(self) -> str:
        """Who holds the lock, as it wrote itself down (``pid N``); "" when unknown."""
        try:
            return self._lock_path.read_text(errors="replace").strip()
        except OSError:
            return ""

    def release(self) -> None:
        """Close the database (its WAL folded into it) and let the lock go."""
        self.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def close(self) -> None:
        """Close the database; the next use opens it again."""
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --- the database --------------------------------------------------------------------------

    def _unreadable(self, exc: sqlite3.Error) -> StateUnreadable:
        return StateUnreadable(
            f"the docker backend's state {self.path} cannot be read as a state database ({exc})",
            hint=_ASIDE,
        )

    def _connection(self) -> sqlite3.Connection:
        """The open database (opened, and its tables made, on first use); hold `_db_lock`.
        A new database is made beside under a temporary name and renamed into place once its
        tables exist, so a crash never leaves an empty file at `path` (which `load_now`
        refuses: an empty file there is not one this app made)."""
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                made = self.path.with_name(f"{self.path.name}.{os.getpid()}.new")
                made.unlink(missing_ok=True)
                try:
                    _open(made).close()  # closing the last connection ends its WAL files too
                    made.replace(self.path)
                finally:
                    made.unlink(missing_ok=True)
            self._db = _open(self.path)
        return self._db

    def _run(self, work: Any, *args: Any) -> Any:
        """`work(connection, *args)` under the database's lock; its errors as
        `StateUnreadable` naming the file."""
        with self._db_lock:
            try:
                return work(self._connection(), *args)
            except sqlite3.DatabaseError as exc:
                if self._db is not None:
                    self._db.close()
                    self._db = None
                raise self._unreadable(exc) from exc

    async def load(self) -> ServiceState:
        return await anyio.to_thread.run_sync(self.load_now)

    def load_now(self) -> ServiceState:
        """`load`, blocking (for commands that run outside an event loop's hot path). A state
        of an older format is migrated and written back, the original kept beside it (a
        database as ``<name>.v<version>.sqlite``, the JSON file of the format before the
        database as ``<name>.v<version>.json``); `StateUnreadable` names the file, left as it
        was."""
        if not self.path.exists():
            if self.legacy_path.exists():
                return self._import_legacy()
            return ServiceState()
        self._set_legacy_aside()
        if self.path.stat().st_size == 0:
            raise StateUnreadable(
                f"the docker backend's state {self.path} is empty (0 bytes): it is not a state "
                "database this app made, or it was cut short",
                hint=_ASIDE,
            )
        rows, entries = self._run(_read)
        where = str(self.path)
        raw = document_of(rows, where)
        if raw is None:
            return ServiceState()
        found = raw.get("version")
        state = parse(raw, where, entries)
        if found != STATE_VERSION:
            backup = self.path.with_name(f"{self.path.stem}.v{found}.sqlite")
            self._run(_back_up, backup)
            self._run(_replace, rows_of(raw), entries)
            log.info("migrated the docker backend's state", file=where, version=found)
        return state

    def _import_legacy(self) -> ServiceState:
        """Read the JSON state file of the format before the database, write it into a new
        database, and keep it beside as ``<name>.v<version>.json``."""
        where = str(self.legacy_path)
        try:
            text = self.legacy_path.read_bytes()  # not valid UTF-8: `json.loads` says so
        except OSError as exc:
            raise StateUnreadable(
                f"the docker backend's state {where} cannot be read: {exc.strerror}"
            ) from exc
        try:
            raw: Any = json.loads(text)
        except ValueError as exc:
            raise StateUnreadable(
                f"the docker backend's state {where} is not JSON ({exc})",
                hint=_ASIDE,
            ) from exc
        entries = _read_journal_file(self.legacy_journal_path)
        found = raw.get("version") if isinstance(raw, dict) else None
        state = parse(raw, where, entries)
        # Made whole under another name, then moved in place: a crash leaves either no
        # database (the JSON file is read again) or the whole one.
        temporary = self.path.with_name(f"{self.path.name}-new")
        temporary.unlink(missing_ok=True)
        database = _open(temporary)
        try:
            _replace(database, rows_of(raw), entries)
        finally:
            database.close()
        temporary.replace(self.path)
        self._set_legacy_aside(found)
        log.info("moved the docker backend's state into a database", file=str(self.path))
        return state

    def _set_legacy_aside(self, version: Any = None) -> None:
        """Rename the JSON state file (and its journal) already written into the database to
        ``<name>.v<version>.json`` (``.journal``), unless a file of that name exists."""
        if not self.legacy_path.exists():
            return
        if version is None:
            try:
                version = json.loads(self.legacy_path.read_text()).get("version")
            except (OSError, ValueError, AttributeError):
                return
        for path in (self.legacy_path, self.legacy_journal_path):
            kept = path.with_name(f"{path.stem}.v{version}{path.suffix}")
            if path.exists() and not kept.exists():
                path.replace(kept)

    async def write(self, changes: Changes) -> None:
        await anyio.to_thread.run_sync(self.write_now, changes)

    def write_now(self, changes: Changes) -> None:
        """`write`, blocking."""
        self._run(_write, changes)

    async def append(self, entry: Any) -> None:
        text = _dumps(entry)
        await anyio.to_thread.run_sync(self._run, _append, int(entry["seq"]), text)

    async def journal(self) -> list[Any]:
        if not self.path.exists():
            return _read_journal_file(self.legacy_journal_path)
        entries: list[Any] = await anyio.to_thread.run_sync(self._run, _read_entries)
        return entries


def _open(path: Path) -> sqlite3.Connection:
    """A connection to the database at `path` in WAL mode (made when absent); autocommit
    outside explicit transactions; usable from any one thread at a time."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        _prepare(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def _prepare(connection: sqlite3.Connection) -> None:
    layout = connection.execute("PRAGMA user_version").fetchone()[0]
    if layout > _LAYOUT:
        raise sqlite3.DatabaseError(
            f"its table layout is version {layout}; this app reads up to {_LAYOUT}"
        )
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    if layout < _LAYOUT:
        for statement in _SCHEMA:
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version={_LAYOUT}")


def _read(connection: sqlite3.Connection) -> tuple[list[tuple[Key, str]], list[Any]]:
    rows = [
        ((kind, parent, key), body)
        for kind, parent, key, body in connection.execute(
            "SELECT kind, parent, id, body FROM objects ORDER BY rowid"
        )
    ]
    return rows, _read_entries(connection)


def _read_entries(connection: sqlite3.Connection) -> list[Any]:
    entries = []
    for (body,) in connection.execute("SELECT body FROM journal ORDER BY seq"):
        try:
            entries.append(json.loads(body))
        except ValueError as exc:
            raise sqlite3.DatabaseError(f"a journal entry is not JSON ({exc})") from exc
    return entries


def _write(connection: sqlite3.Connection, changes: Changes) -> None:
    with connection:
        connection.execute("BEGIN")
        connection.executemany(_PUT, [(*key, text) for key, text in changes.rows.items()])
        connection.executemany(_DELETE, changes.gone)
        connection.execute("DELETE FROM journal WHERE seq <= ?", (changes.journal_seq,))


def _append(connection: sqlite3.Connection, seq: int, text: str) -> None:
    connection.execute("INSERT OR REPLACE INTO journal (seq, body) VALUES (?, ?)", (seq, text))


def _replace(connection: sqlite3.Connection, rows: dict[Key, str], entries: list[Any]) -> None:
    """Make the database hold exactly `rows` and the journal `entries`, in one transaction."""
    with connection:
        connection.execute("BEGIN")
        connection.execute("DELETE FROM objects")
        connection.execute("DELETE FROM journal")
        connection.executemany(_PUT, [(*key, text) for key, text in rows.items()])
        connection.executemany(
            "INSERT INTO journal (seq, body) VALUES (?, ?)",
            [(int(entry["seq"]), _dumps(entry)) for entry in entries],
        )


def _back_up(connection: sqlite3.Connection, path: Path) -> None:
    """Copy the database, as it is, to `path`."""
    copy = sqlite3.connect(path)
    try:
        connection.backup(copy)
    finally:
        copy.close()


def _read_journal_file(path: Path) -> list[Any]:
    """The entries of a journal file of the format before the database (one JSON line each)."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            break  # a line cut short by a crash: nothing after it was written either
    return entries

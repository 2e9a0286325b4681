"""The stored state is never reset: an older format is migrated, anything unreadable is an error
that names the file and leaves it as it was (no engine: the file store over a temporary
directory, states made by the core on the fake executor). The JSON state file of the format
before the database (`StateStore.legacy_path`) is moved into the database on first load."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from jobprep_release.backends.docker.core import migrations, store
from jobprep_release.backends.docker.core.records import STATE_VERSION
from jobprep_release.backends.docker.core.store import StateStore
from jobprep_release.backends.errors import StateUnreadable
from jobprep_release.options import EXIT_STATUSES
from tests.core.harness import JOB, POOL, job_spec, pool_spec, running_core


async def _saved_state() -> Any:
    """The document a core saves with one pool and one job on it."""
    async with running_core() as core:
        await core.service.create_pool(pool_spec(1))
        await core.service.create_job(job_spec())
        await core.settle()
        await core.service.close()
        assert core.store.document is not None
        return json.loads(core.store.document)


def _store(tmp_path: Path, text: str) -> StateStore:
    """A file store whose directory holds `text` as a state file of the format before the
    database (one JSON document)."""
    kept = StateStore(tmp_path, "engine")
    kept.legacy_path.write_text(text)
    return kept


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "is not a state document"),
        ('{"pools": {}}', "has no format version"),
        (json.dumps({"version": STATE_VERSION + 1}), f"has format version {STATE_VERSION + 1}"),
        (json.dumps({"version": STATE_VERSION, "pools": {"p": {"spec": 3}}}), "this app can read"),
    ],
)
def test_a_state_that_cannot_be_read_is_an_error_naming_the_file_which_stays(
    tmp_path: Path, text: str, says: str
) -> None:
    kept = _store(tmp_path, text)
    with pytest.raises(StateUnreadable) as caught:
        kept.load_now()
    assert str(kept.legacy_path) in str(caught.value)
    assert says in str(caught.value)
    assert caught.value.exit_status == 9 and 9 in EXIT_STATUSES
    assert kept.legacy_path.read_text() == text  # not reset, not moved aside
    assert sorted(p.name for p in tmp_path.iterdir()) == [kept.legacy_path.name]


async def test_a_state_file_of_the_format_before_the_database_moves_into_it(
    tmp_path: Path,
) -> None:
    document = await _saved_state()
    original = json.dumps(document)
    kept = _store(tmp_path, original)
    kept.legacy_journal_path.write_text(json.dumps({"seq": 10**6, "tasks": [], "nodes": []}))
    state = kept.load_now()
    assert list(state.pools) == [POOL] and list(state.jobs) == [JOB]
    assert not kept.legacy_path.exists() and not kept.legacy_journal_path.exists()
    beside = tmp_path / f"{kept.legacy_path.stem}.v{STATE_VERSION}.json"
    assert beside.read_text() == original
    assert (tmp_path / f"{kept.legacy_path.stem}.v{STATE_VERSION}.journal").exists()
    again = StateStore(tmp_path, "engine")
    assert list(again.load_now().jobs) == [JOB]
    assert [entry["seq"] for entry in await again.journal()] == [10**6]
    again.release()
    kept.release()


async def test_a_database_that_is_not_one_is_an_error_naming_it_which_stays(
    tmp_path: Path,
) -> None:
    kept = StateStore(tmp_path, "engine")
    kept.path.write_bytes(b"{cut short")
    with pytest.raises(StateUnreadable) as caught:
        kept.load_now()
    assert str(kept.path) in str(caught.value) and caught.value.exit_status == 9
    assert kept.path.read_bytes() == b"{cut short"


async def test_a_database_row_that_is_not_json_is_an_error_naming_the_file(
    tmp_path: Path,
) -> None:
    kept = StateStore(tmp_path, "engine")
    kept.write_now(store.Changes({store.META: json.dumps({"version": STATE_VERSION})}))
    kept.write_now(store.Changes({("pool", "", "p"): "{cut"}))
    kept.release()
    with pytest.raises(StateUnreadable) as caught:
        StateStore(tmp_path, "engine").load_now()
    assert str(kept.path) in str(caught.value) and "pool row ('p')" in str(caught.value)


async def test_an_older_format_is_migrated_written_back_and_kept_beside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A next format version in which the pools moved from "pool_records" to "pools": the
    # document of the older version holds them under the old name, and its journal entries
    # are rewritten too.
    def pools_renamed(document: dict[str, Any], entries: list[Any]) -> None:
        document["pools"] = document.pop("pool_records")
        for entry in entries:
            entry["migrated"] = True

    newer = STATE_VERSION + 1
    monkeypatch.setattr(migrations, "STATE_VERSION", newer)
    monkeypatch.setattr(store, "STATE_VERSION", newer)
    monkeypatch.setitem(migrations.MIGRATIONS, STATE_VERSION, pools_renamed)
    document = await _saved_state()
    document["pool_records"] = document.pop("pools")
    original = json.dumps(document)
    kept = _store(tmp_path, original)
    kept.legacy_journal_path.write_text(json.dumps({"seq": 10**6, "tasks": [], "nodes": []}) + "\n")

    state = kept.load_now()

    assert list(state.pools) == [POOL] and list(state.jobs) == [JOB]
    rewritten = _rows(kept)
    assert json.loads(rewritten[store.META])["version"] == newer
    assert [key for kind, _, key in rewritten if kind == "pool"] == [POOL]
    backup = tmp_path / f"{kept.legacy_path.stem}.v{STATE_VERSION}.json"
    assert backup.read_text() == original
    (entry,) = await kept.journal()
    assert entry["migrated"] is True
    assert kept.load_now().pools.keys() == state.pools.keys()  # read again: no second migration
    kept.release()


async def test_a_database_of_an_older_format_is_migrated_and_kept_beside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database of this version holds a job; the next version renames a job field.
    kept = _store(tmp_path, json.dumps(await _saved_state()))
    kept.load_now()
    await kept.append({"seq": 10**6, "tasks": [], "nodes": []})
    kept.release()
    before = _rows(kept)

    def end_time_renamed(document: dict[str, Any], entries: list[Any]) -> None:
        for job in document["jobs"].values():
            job["ended"] = job.pop("end_time")
            job["end_time"] = None
        for entry in entries:
            entry["migrated"] = True

    monkeypatch.setattr(migrations, "STATE_VERSION", STATE_VERSION + 1)
    monkeypatch.setattr(store, "STATE_VERSION", STATE_VERSION + 1)
    monkeypatch.setitem(migrations.MIGRATIONS, STATE_VERSION, end_time_renamed)
    again = StateStore(tmp_path, "engine")
    assert list(again.load_now().jobs) == [JOB]
    after = _rows(again)
    assert json.loads(after[store.META])["version"] == STATE_VERSION + 1
    assert "ended" in json.loads(after[("job", "", JOB)])
    (entry,) = await again.journal()
    assert entry["migrated"] is True
    again.release()
    backup = StateStore(tmp_path, "engine")
    backup.path = tmp_path / f"{kept.path.stem}.v{STATE_VERSION}.sqlite"
    assert _rows(backup) == before


def test_an_older_format_without_a_migration_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations, "STATE_VERSION", STATE_VERSION + 1)
    text = json.dumps({"version": STATE_VERSION})
    kept = _store(tmp_path, text)
    with pytest.raises(StateUnreadable, match="cannot bring"):
        kept.load_now()
    assert kept.legacy_path.read_text() == text
    assert not kept.path.exists()


def _rows(kept: StateStore) -> dict[store.Key, str]:
    """The rows of `kept`'s database, read with sqlite3 itself."""
    with closing(sqlite3.connect(kept.path)) as database:
        found = database.execute("SELECT kind, parent, id, body FROM objects ORDER BY rowid")
        return {(kind, parent, key): body for kind, parent, key, body in found}


def test_an_empty_state_file_is_an_error_naming_it_which_stays(tmp_path: Path) -> None:
    # SQLite would read an empty file as an empty database: an account with no pool and no job.
    kept = StateStore(tmp_path, "engine")
    kept.path.write_bytes(b"")
    with pytest.raises(StateUnreadable) as caught:
        kept.load_now()
    assert str(kept.path) in str(caught.value) and "empty" in str(caught.value)
    assert caught.value.exit_status == 9
    assert kept.path.read_bytes() == b""


async def test_a_database_cut_short_while_made_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A crash after SQLite made the file and before its tables existed (standing for it: the
    # tables' step fails) leaves nothing where the state is read, so the next run starts an
    # empty account rather than stopping at an empty file.
    kept = StateStore(tmp_path, "engine")

    def cut(connection: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "_prepare", cut)
    with pytest.raises(StateUnreadable):
        await kept.append({"seq": 1})
    assert not kept.path.exists()
    assert _names(tmp_path) == []
    monkeypatch.undo()
    await kept.append({"seq": 2})
    assert [entry["seq"] for entry in await kept.journal()] == [2]
    kept.close()


def _names(directory: Path) -> list[str]:
    return [path.name for path in directory.iterdir()]


def test_no_state_file_is_an_empty_account(tmp_path: Path) -> None:
    state = StateStore(tmp_path, "engine").load_now()
    assert not state.pools and not state.jobs


def test_a_state_file_that_is_not_utf8_is_an_error_naming_the_file_which_stays(
    tmp_path: Path,
) -> None:
    kept = StateStore(tmp_path, "engine")
    kept.legacy_path.write_bytes(b"\xff\xfe")
    with pytest.raises(StateUnreadable) as caught:
        kept.load_now()
    assert str(kept.legacy_path) in str(caught.value) and "is not JSON" in str(caught.value)
    assert kept.legacy_path.read_bytes() == b"\xff\xfe"

"""The stored state is never reset: an older format is migrated, anything unreadable is an error
that names the file and leaves it as it was (no engine: the file store over a temporary
directory, states made by the core on the fake executor)."""

from __future__ import annotations

import json
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
    kept = StateStore(tmp_path, "engine")
    kept.path.write_text(text)
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
    assert str(kept.path) in str(caught.value)
    assert says in str(caught.value)
    assert caught.value.exit_status == 9 and 9 in EXIT_STATUSES
    assert kept.path.read_text() == text  # not reset, not moved aside
    assert sorted(p.name for p in tmp_path.iterdir()) == [kept.path.name]


async def test_a_state_of_this_version_reads_back_with_its_pool_and_job(tmp_path: Path) -> None:
    document = await _saved_state()
    kept = _store(tmp_path, json.dumps(document))
    state = kept.load_now()
    assert list(state.pools) == [POOL] and list(state.jobs) == [JOB]


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
    kept.journal_path.write_text(json.dumps({"seq": 10**6, "tasks": [], "nodes": []}) + "\n")

    state = kept.load_now()

    assert list(state.pools) == [POOL] and list(state.jobs) == [JOB]
    rewritten = json.loads(kept.path.read_text())
    assert rewritten["version"] == newer and list(rewritten["pools"]) == [POOL]
    assert "pool_records" not in rewritten
    backup = tmp_path / f"{kept.path.stem}.v{STATE_VERSION}.json"
    assert backup.read_text() == original
    (entry,) = [json.loads(line) for line in kept.journal_path.read_text().splitlines()]
    assert entry["migrated"] is True
    assert kept.load_now().pools.keys() == state.pools.keys()  # read again: no second migration


def test_an_older_format_without_a_migration_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations, "STATE_VERSION", STATE_VERSION + 1)
    text = json.dumps({"version": STATE_VERSION})
    kept = _store(tmp_path, text)
    with pytest.raises(StateUnreadable, match="cannot bring"):
        kept.load_now()
    assert kept.path.read_text() == text


def test_no_state_file_is_an_empty_account(tmp_path: Path) -> None:
    state = StateStore(tmp_path, "engine").load_now()
    assert not state.pools and not state.jobs

"""`serve` links a storage account (for ``autoStorageContainerName``) from its flags or the
variables Azure Storage clients read; an account URL needs its key."""

from __future__ import annotations

import pytest

from jobprep_release import serve
from jobprep_release.backends.docker.core.storage import LinkedStorage
from jobprep_release.backends.errors import UsageError

CONNECTION = (
    "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=c2VjcmV0;BlobEndpoint=http://h/a;"
)


def linked(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, **environ: str
) -> LinkedStorage | None:
    for name in (serve.STORAGE_CONNECTION_STRING, serve.STORAGE_ACCOUNT_URL, serve.STORAGE_KEY):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return serve._linked_storage(serve.build_parser().parse_args(argv))


def test_none_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert linked([], monkeypatch) is None


def test_connection_string_from_the_flag_or_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = LinkedStorage(connection_string=CONNECTION)
    assert linked(["--storage-connection-string", CONNECTION], monkeypatch) == expected
    environ = {serve.STORAGE_CONNECTION_STRING: CONNECTION}
    assert linked([], monkeypatch, **environ) == expected


def test_account_url_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["--storage-account-url", "http://h/a", "--storage-account-key", "c2VjcmV0"]
    expected = LinkedStorage(account_url="http://h/a", account_key="c2VjcmV0")
    assert linked(argv, monkeypatch) == expected
    with pytest.raises(UsageError, match="--storage-account-key"):
        linked(argv[:2], monkeypatch)

"""Resolving the azure backend's endpoint and credentials: flags, environment, settings file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.identity.aio import DefaultAzureCredential
from structlog.testing import capture_logs

from jobprep_release.backends.azure import AzureSettings, build_azure_backend, resolve_settings
from jobprep_release.backends.azure.credentials import make_credential
from jobprep_release.backends.base import PoolSpec
from jobprep_release.backends.errors import AuthenticationFailed, UsageError
from tests.azure.emulator import Emulator
from tests.azure.support import ACCOUNT, FAST, KEY

ENDPOINT = "https://sample.westeurope.batch.azure.com"
ENV = {
    "AZURE_BATCH_ENDPOINT": "https://env.westeurope.batch.azure.com",
    "AZURE_BATCH_ACCOUNT": "envaccount",
    "AZURE_BATCH_ACCESS_KEY": "ZW52a2V5",
}
SETTINGS = {
    "batchServiceUrl": "https://file.westeurope.batch.azure.com",
    "batchAccountName": "fileaccount",
    "batchAccountKey": "ZmlsZWtleQ==",
    "storageAccountName": "ignored",
}


def write_settings(directory: Path, document: object, mode: int = 0o600) -> Path:
    path = directory / "accountsettings.json"
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    path.chmod(mode)
    return path


def test_environment_gives_the_settings(tmp_path: Path) -> None:
    settings = resolve_settings(environ=ENV, cwd=tmp_path)
    assert settings == AzureSettings(
        endpoint="https://env.westeurope.batch.azure.com", account="envaccount", key="ZW52a2V5"
    )


def test_flags_win_over_environment_and_file(tmp_path: Path) -> None:
    write_settings(tmp_path, SETTINGS)
    settings = resolve_settings(
        endpoint=ENDPOINT, account="flagaccount", key="ZmxhZw==", environ=ENV, cwd=tmp_path
    )
    assert settings == AzureSettings(endpoint=ENDPOINT, account="flagaccount", key="ZmxhZw==")


def test_environment_wins_over_file_value_by_value(tmp_path: Path) -> None:
    path = write_settings(tmp_path, SETTINGS)
    environ = {"AZURE_BATCH_ACCOUNT": "envaccount"}
    settings = resolve_settings(settings_path=path, environ=environ)
    assert settings == AzureSettings(
        endpoint="https://file.westeurope.batch.azure.com",
        account="envaccount",
        key="ZmlsZWtleQ==",
    )


def test_settings_file_in_current_directory_is_used(tmp_path: Path) -> None:
    write_settings(tmp_path, SETTINGS)
    settings = resolve_settings(environ={}, cwd=tmp_path)
    assert (settings.endpoint, settings.account, settings.key) == (
        "https://file.westeurope.batch.azure.com",
        "fileaccount",
        "ZmlsZWtleQ==",
    )


def test_settings_file_names_match_without_case(tmp_path: Path) -> None:
    path = write_settings(
        tmp_path,
        {"BatchServiceUrl": ENDPOINT, "BATCHACCOUNTNAME": "a", "batchaccountkey": "a2V5"},
    )
    assert resolve_settings(settings_path=path, environ={}).account == "a"


def test_settings_file_that_is_not_json_is_a_usage_error(tmp_path: Path) -> None:
    path = write_settings(tmp_path, "{ not json")
    with pytest.raises(UsageError, match="is not JSON") as caught:
        resolve_settings(settings_path=path, environ={})
    assert str(path) in caught.value.message


def test_settings_file_given_but_missing_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        resolve_settings(settings_path=tmp_path / "nope.json", environ={})


def test_settings_file_with_wrong_types_is_a_usage_error(tmp_path: Path) -> None:
    path = write_settings(tmp_path, {"batchServiceUrl": 42})
    with pytest.raises(UsageError, match="batchServiceUrl must be a string"):
        resolve_settings(settings_path=path, environ={})


def test_missing_endpoint_names_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="AZURE_BATCH_ENDPOINT") as caught:
        resolve_settings(environ={}, cwd=tmp_path)
    assert "\n" not in caught.value.one_line()


@pytest.mark.parametrize(
    "endpoint",
    ["sample.westeurope.batch.azure.com", "ftp://x.batch.azure.com", "https://", "https://x/jobs"],
)
def test_malformed_endpoint_is_a_usage_error(tmp_path: Path, endpoint: str) -> None:
    with pytest.raises(UsageError, match="invalid Batch endpoint"):
        resolve_settings(endpoint=endpoint, environ={}, cwd=tmp_path)


def test_account_without_key_names_the_key_variable(tmp_path: Path) -> None:
    with pytest.raises(AuthenticationFailed, match="AZURE_BATCH_ACCESS_KEY"):
        resolve_settings(endpoint=ENDPOINT, account="a", environ={}, cwd=tmp_path)


def test_key_without_account_names_the_account_variable(tmp_path: Path) -> None:
    with pytest.raises(AuthenticationFailed, match="AZURE_BATCH_ACCOUNT") as caught:
        resolve_settings(endpoint=ENDPOINT, key="a2V5", environ={}, cwd=tmp_path)
    assert "a2V5" not in caught.value.one_line()


def test_endpoint_alone_signs_in_with_entra_id(tmp_path: Path) -> None:
    settings = resolve_settings(endpoint=ENDPOINT, environ={}, cwd=tmp_path)
    assert not settings.uses_shared_key


async def test_entra_id_credential_is_created_and_closed_by_the_backend(tmp_path: Path) -> None:
    backend = build_azure_backend(endpoint=ENDPOINT, environ={}, cwd=tmp_path)
    credential = vars(backend)["_credential"]
    assert isinstance(credential, DefaultAzureCredential)
    async with backend:
        pass  # entering and leaving must open and close client and credential cleanly


def test_entra_id_over_plain_http_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="https"):
        resolve_settings(endpoint="http://127.0.0.1:8080", environ={}, cwd=tmp_path)


def test_shared_key_settings_make_a_named_key_credential() -> None:
    credential, owned = make_credential(AzureSettings(ENDPOINT, "acc", "a2V5"))
    assert isinstance(credential, AzureNamedKeyCredential)
    assert credential.named_key == ("acc", "a2V5")
    assert not owned


def test_settings_repr_hides_the_key() -> None:
    assert "a2V5" not in repr(AzureSettings(ENDPOINT, "acc", "a2V5"))


def test_settings_file_readable_by_others_draws_a_warning(tmp_path: Path) -> None:
    path = write_settings(tmp_path, SETTINGS, mode=0o644)
    with capture_logs() as logs:
        resolve_settings(settings_path=path, environ={})
    [warning] = [entry for entry in logs if entry["log_level"] == "warning"]
    assert warning["path"] == str(path)
    assert SETTINGS["batchAccountKey"] not in str(warning)


def test_private_settings_file_draws_no_warning(tmp_path: Path) -> None:
    path = write_settings(tmp_path, SETTINGS, mode=0o600)
    with capture_logs() as logs:
        resolve_settings(settings_path=path, environ={})
    assert [entry for entry in logs if entry["log_level"] == "warning"] == []


async def test_built_backend_talks_to_the_service(emulator: Emulator, tmp_path: Path) -> None:
    environ = {
        "AZURE_BATCH_ENDPOINT": emulator.url,
        "AZURE_BATCH_ACCOUNT": ACCOUNT,
        "AZURE_BATCH_ACCESS_KEY": KEY,
    }
    async with build_azure_backend(environ=environ, cwd=tmp_path, **FAST) as backend:
        await backend.create_pool(PoolSpec(id="pool1"))
        assert (await backend.get_pool("pool1")).id == "pool1"

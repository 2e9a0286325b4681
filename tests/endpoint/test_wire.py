"""The endpoint's small parts on their own: durations, ``$filter``, paging, Shared Key forms."""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.batch._serialization import Serializer  # the SDK's own duration writer

from jobprep_release.backends.docker.rest.auth import SharedKey
from jobprep_release.backends.docker.rest.errors import RestError
from jobprep_release.backends.docker.rest.odata import Query, page, parse_filter
from jobprep_release.backends.schema.shapes import UNLIMITED, format_duration, parse_duration
from tests.endpoint.harness import KEY

TASKS = [
    {"id": "Task1", "state": "completed", "executionInfo": {"exitCode": 0}},
    {"id": "task2", "state": "completed", "executionInfo": {"exitCode": 3}},
    {"id": "other", "state": "running", "executionInfo": {}},
]


@pytest.mark.parametrize(
    "value",
    [
        timedelta(minutes=15),
        timedelta(days=7),
        timedelta(days=1, hours=2, minutes=3, seconds=4.5),
        timedelta(seconds=0.25),
        timedelta(0),
    ],
)
def test_durations_read_what_the_sdk_writes_and_round_trip(value: timedelta) -> None:
    assert parse_duration(Serializer.serialize_duration(value)) == value  # type: ignore[no-untyped-call]
    assert parse_duration(format_duration(value)) == value


def test_unlimited_and_malformed_durations() -> None:
    assert format_duration(None) == UNLIMITED == "P10675199DT2H48M5.4775807S"
    assert parse_duration(UNLIMITED) is None
    assert format_duration(timedelta(minutes=15)) == "PT15M"
    assert format_duration(timedelta(days=7)) == "P7D"
    for text in ("P", "PT", "15M", "P1Y", "PT-1S", "P1DT"):
        with pytest.raises(ValueError):
            parse_duration(text)


@pytest.mark.parametrize(
    ("expression", "ids"),
    [
        ("id eq 'task1'", ["Task1"]),
        ("state eq 'completed' and executionInfo/exitCode ne 0", ["task2"]),
        ("state eq 'running' or (id eq 'task2')", ["task2", "other"]),
        ("not (state eq 'completed')", ["other"]),
        ("startswith(id, 'task')", ["Task1", "task2"]),
        ("executionInfo/exitCode ge 1", ["task2"]),
        ("executionInfo/exitCode eq null", ["other"]),
        ("id eq 'it''s'", []),
    ],
)
def test_filters(expression: str, ids: list[str]) -> None:
    predicate = parse_filter(expression).predicate
    assert predicate is not None
    assert [task["id"] for task in TASKS if predicate(task)] == ids


@pytest.mark.parametrize("expression", ["id eq", "id 'x'", "(id eq 'x'", "id eq 'x' junk", "#"])
def test_bad_filters_are_refused_naming_the_parameter(expression: str) -> None:
    with pytest.raises(RestError) as refused:
        parse_filter(expression)
    assert refused.value.status == 400 and refused.value.code == "InvalidQueryParameterValue"
    assert ("QueryParameterName", "$filter") in refused.value.values


def test_pages_link_to_the_rest_with_the_same_query() -> None:
    params = {"api-version": "2025-06-01", "maxresults": "1", "$select": "id"}
    first = page(Query("/jobs/j/tasks", params), TASKS, "http://h")
    assert first["value"] == [{"id": "Task1"}]
    link = first["odata.nextLink"]
    assert link.startswith("http://h/jobs/j/tasks?") and "$skiptoken=1" in link
    assert "api-version=2025-06-01" in link and "$select=id" in link
    last = page(Query("/jobs/j/tasks", {**params, "$skiptoken": "2"}), TASKS, "http://h")
    assert last == {"value": [{"id": "other"}]}


def test_shared_key_accepts_the_forms_clients_sign() -> None:
    keys = SharedKey("acct", KEY)
    headers = {
        "ocp-date": "Tue, 25 Nov 2025 07:00:00 GMT",
        "Content-Type": "application/json",
        "Content-Length": "0",
    }
    forms = keys.strings_to_sign("POST", headers, "/jobs/a%20b?api-version=2025-06-01&$Filter=x")
    assert forms[0] == (
        "POST\n\n\n0\n\napplication/json\n\n\n\n\n\n\nocp-date:Tue, 25 Nov 2025 07:00:00 GMT\n"
        "/acct/jobs/a%20b\n$filter:x\napi-version:2025-06-01"
    )
    assert any(
        form.endswith("/acct/jobs/a%20b\n$Filter:x\napi-version:2025-06-01") for form in forms
    )
    assert any(form.endswith("/acct/jobs/a b\n$filter:x\napi-version:2025-06-01") for form in forms)
    absent = keys.strings_to_sign("DELETE", {"ocp-date": "x"}, "/pools/p")
    assert absent == ["DELETE\n" + "\n" * 11 + "ocp-date:x\n/acct/pools/p"]

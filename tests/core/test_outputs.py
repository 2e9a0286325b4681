"""Output file patterns as the REST reference's OutputFile.filePattern describes them (its own
examples), and the upload conditions (OutputFileUploadCondition)."""

from __future__ import annotations

import pytest

from jobprep_release.backends.base import OutputFile, OutputFileUploadCondition
from jobprep_release.backends.docker.core.outputs import due, matches, split_pattern

WD = "/mnt/batch/tasks/workitems/j/job-1/t/wd"


def match(pattern: str, path: str) -> bool:
    return matches(pattern.split("/"), path.split("/"))


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("abc*", "abc", True),  # "abc* would match abc or abcdef"
        ("abc*", "abcdef", True),
        ("*.gif", ".a.gif", False),  # "*.gif will not match .a.gif, but .*.gif will"
        (".*.gif", ".a.gif", True),
        ("[!abc]", "d", True),  # "[!abc] matches any character but a, b, or c"
        ("[!abc]", "a", False),
        ("[a-c]", "b", True),
        ("?", "x", True),
        ("abc[*]", "abc*", True),  # "abc[*] would match a file named abc*"
        ("abc[*]", "abcd", False),
        ("**/*.txt", "x.txt", True),  # "**/*.txt": any .txt not starting in '.', any depth
        ("**/*.txt", "a/b/x.txt", True),
        ("**/*.txt", "a/.x.txt", False),
        ("*", "a/b", False),  # "*" stays within one name
    ],
)
def test_patterns(pattern: str, path: str, expected: bool) -> None:
    assert match(pattern, path) is expected


def test_patterns_resolve_against_the_working_directory() -> None:
    assert split_pattern(WD, "out/*.txt") == ("workitems/j/job-1/t/wd/out", ["*.txt"])
    assert split_pattern(WD, "../std*.txt") == ("workitems/j/job-1/t", ["std*.txt"])
    assert split_pattern(WD, "result.bin") == ("workitems/j/job-1/t/wd/result.bin", [])
    assert split_pattern(WD, "/mnt/batch/tasks/shared/x") == ("shared/x", [])
    assert split_pattern(WD, "/etc/passwd") is None


@pytest.mark.parametrize(
    ("condition", "exit_code", "expected"),
    [
        (OutputFileUploadCondition.TASK_SUCCESS, 0, True),
        (OutputFileUploadCondition.TASK_SUCCESS, 1, False),
        (OutputFileUploadCondition.TASK_FAILURE, 0, False),
        (OutputFileUploadCondition.TASK_FAILURE, 1, True),
        (OutputFileUploadCondition.TASK_COMPLETION, 0, True),
        (OutputFileUploadCondition.TASK_COMPLETION, 1, True),
    ],
)
def test_upload_conditions(
    condition: OutputFileUploadCondition, exit_code: int, expected: bool
) -> None:
    assert due(OutputFile("x", "http://c", upload_condition=condition), exit_code) is expected

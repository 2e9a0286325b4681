"""Command line: parse flags, pick a backend by name, run the sample, map the outcome to an exit.

Backends are imported only when chosen, so `--help` and the docker path never load the Azure
SDK. Every error the project raises becomes one line on stderr and a documented exit status
(`EXIT_STATUSES`); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from jobprep_release import settings
from jobprep_release.backends.base import NodeFillType, check_id
from jobprep_release.backends.errors import InvalidRequest, UsageError, find_project_error
from jobprep_release.backends.models.value import Value
from jobprep_release.imports import without_collection
from jobprep_release.options import EXIT_STATUSES, Answer, SampleOptions

if TYPE_CHECKING:
    from jobprep_release.backends.base import BatchBackend

MAX_NODES = 64
MAX_TASKS = 10_000
STORAGE_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def duration(text: str) -> timedelta:
    """`90s`, `30m`, `1.5h`, `250ms`, or plain seconds."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 30m or 1h")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2] or "s"])


def _bounded(name: str, low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be between {low} and {high}")
        return value

    return parse


def _wait(name: str) -> Callable[[str], timedelta]:
    """A wait of the sample's: a duration over zero (a zero wait would time out at once and
    leave the pool and job behind)."""

    def parse(text: str) -> timedelta:
        value = duration(text)
        if value <= timedelta(0):
            raise argparse.ArgumentTypeError(f"{name} must be longer than 0 s")
        return value

    return parse


def _not_empty(name: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{name} must not be empty")
        return text

    return parse


_CONTAINER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")


def _container_name(text: str) -> str:
    """A blob container name as Azure Storage takes it: 3 to 63 lower-case letters, digits
    and single hyphens, starting and ending with a letter or digit."""
    if not _CONTAINER_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"invalid container name {text!r}: use 3 to 63 lower-case letters, digits and "
            "single hyphens, starting and ending with a letter or digit"
        )
    return text


# Docker's image reference grammar (github.com/distribution/reference, `reference.go`):
# [domain[:port]/]path[:tag][@digest], each path component lower-case letters and digits with
# `.`, `_`, `__` or dashes between them.
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REFERENCE = re.compile(
    rf"(?P<name>(?:(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?/)?"
    rf"{_PATH_PART}(?:/{_PATH_PART})*)"
    r"(?::\w[\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?",
    re.ASCII,
)
_IMAGE_NAME_LIMIT = 255


def check_docker_image(image: str) -> None:
    """Raise `UsageError` (status 2) when `image` is not a Docker image reference, naming the
    flag and the reason, before the engine is asked (whose own message names neither)."""
    match = _IMAGE_REFERENCE.fullmatch(image)
    if match and len(match["name"]) <= _IMAGE_NAME_LIMIT:
        return
    if match:
        why = f"its name is longer than {_IMAGE_NAME_LIMIT} characters"
    elif _IMAGE_REFERENCE.fullmatch(image.lower()):
        why = "the repository name must be lower case"
    else:
        why = "use [registry/]name[:tag][@digest], the name in lower-case letters and digits"
    raise UsageError(f"--image {image!r} is not a Docker image reference: {why}")


def _batch_id(kind: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        try:
            return check_id(kind, text)
        except InvalidRequest as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    return parse


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see --help)")


def _parser(prog: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    return _Parser(
        prog=prog,
        description=description,
        epilog=(epilog + "\n\n" if epilog else "") + settings.HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=("docker", "azure"),
        default="docker",
        help="where the sample runs (default: docker)",
    )


def _add_connections(parser: argparse.ArgumentParser) -> None:
    docker = parser.add_argument_group("docker backend")
    docker.add_argument("--docker-host", help="engine URL (default: $DOCKER_HOST or the socket)")
    docker.add_argument(
        "--state-dir",
        type=Path,
        help="where the backend keeps its state (default $XDG_STATE_HOME/jobprep_release)",
    )
    azure = parser.add_argument_group("azure backend")
    azure.add_argument("--endpoint", help="Batch account URL (or $AZURE_BATCH_ENDPOINT)")
    azure.add_argument("--account", help="Batch account name (or $AZURE_BATCH_ACCOUNT)")
    azure.add_argument(
        "--key", help="account key (or $AZURE_BATCH_ACCESS_KEY; else Microsoft Entra ID)"
    )
    azure.add_argument(
        "--settings", type=Path, help="the C# sample's accountsettings.json (read when present)"
    )


def _add_output(parser: argparse.ArgumentParser) -> None:
    output = parser.add_argument_group("output")
    output.add_argument("--log-format", choices=("console", "json"), default="console")
    output.add_argument("-v", "--verbose", action="count", default=0, help="more log lines")
    output.add_argument("-q", "--quiet", action="count", default=0, help="fewer log lines")
    output.add_argument("--debug", action="store_true", help="show tracebacks")
    output.add_argument(settings.CONFIG_FLAG, type=Path, help="a settings file (TOML)")


RUN_EXAMPLES = """examples:
  python -m jobprep_release                 # the sample on the local Docker engine
  python -m jobprep_release --yes --json    # ... deleting everything, a JSON report on stdout
  python -m jobprep_release --nodes 3 --slots 2 --fill-type spread --task-retries 2
  AZURE_BATCH_ENDPOINT=https://acct.westeurope.batch.azure.com AZURE_BATCH_ACCOUNT=acct \\
    AZURE_BATCH_ACCESS_KEY=... python -m jobprep_release --backend azure
  python -m jobprep_release --backend azure --endpoint http://127.0.0.1:8089 \\
    --account localbatch --key KEY         # against `python -m jobprep_release serve`
                                            # (its default account; KEY: the key it printed)
  python -m jobprep_release --stage-container common --logs-container joblogs --azurite
                                            # staged data and uploaded logs, on Azurite

other commands:
  python -m jobprep_release status    the job's preparation and release tasks, per node
  python -m jobprep_release cleanup   remove everything the docker backend created
  python -m jobprep_release serve     a local Azure Batch endpoint backed by Docker"""


def build_parser() -> argparse.ArgumentParser:
    epilog = (
        RUN_EXAMPLES
        + "\n\nexit statuses:\n"
        + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_STATUSES.items())
    )
    parser = _parser(
        "python -m jobprep_release",
        "Azure Batch's JobPrepRelease sample, on a local Docker engine or on Azure.",
        epilog,
    )
    _add_backend(parser)
    sample = parser.add_argument_group("the sample")
    defaults = SampleOptions()
    sample.add_argument("--pool-id", type=_batch_id("pool"), default=defaults.pool_id)
    sample.add_argument("--job-id", type=_batch_id("job"), default=defaults.job_id)
    sample.add_argument(
        "--nodes",
        type=_bounded("--nodes", 1, MAX_NODES),
        default=defaults.node_count,
        help=f"dedicated nodes in the pool (default {defaults.node_count})",
    )
    sample.add_argument(
        "--tasks",
        type=_bounded("--tasks", 1, MAX_TASKS),
        default=defaults.task_count,
        help=f"tasks to run (default {defaults.task_count})",
    )
    sample.add_argument(
        "--vm-size",
        type=_not_empty("--vm-size"),
        default=defaults.vm_size,
        help="(default %(default)s)",
    )
    sample.add_argument(
        "--image",
        type=_not_empty("--image"),
        help="node image: a Docker image (default debian:bookworm-slim) or, on azure, an image "
        "URN publisher:offer:sku:version (default canonical:ubuntu-24_04-lts:server:latest)",
    )
    sample.add_argument("--node-agent-sku", help="azure: the node agent SKU for --image")
    sample.add_argument(
        "--slots", type=_bounded("--slots", 1, 256), default=1, help="task slots per node (1)"
    )
    sample.add_argument(
        "--fill-type", choices=[t.value for t in NodeFillType], default=NodeFillType.PACK.value
    )
    sample.add_argument(
        "--no-wait-for-success",
        dest="wait_for_success",
        action="store_false",
        help="let tasks start while the job preparation task runs (waitForSuccess=false)",
    )
    sample.add_argument(
        "--task-retries",
        type=_bounded("--task-retries", -1, 100),
        default=0,
        help="maxTaskRetryCount of each task (-1: unlimited; default 0)",
    )
    sample.add_argument(
        "--task-wall-clock", type=duration, help="maxWallClockTime of each task (default none)"
    )
    sample.add_argument(
        "--task-command",
        type=_not_empty("--task-command"),
        help="each task's command line, split into words and run without a shell as Batch "
        "does (default: the sample's, which appends the task's id to the node's shared file)",
    )
    sample.add_argument(
        "--task-timeout",
        type=_wait("--task-timeout"),
        default=defaults.task_timeout,
        help="(default 30m)",
    )
    sample.add_argument(
        "--job-timeout",
        type=_wait("--job-timeout"),
        default=defaults.job_timeout,
        help="(default 2m)",
    )
    storage = parser.add_argument_group(
        "Azure Storage: the article's other uses of preparation and release tasks"
    )
    storage.add_argument(
        "--stage-container",
        type=_container_name,
        metavar="NAME",
        help="(a) the job preparation task stages this blob container's blobs on each node "
        "(made, with a sample blob, when missing); each task reads them",
    )
    storage.add_argument(
        "--logs-container",
        type=_container_name,
        metavar="NAME",
        help="(b) each node's release task uploads the node's job log to this container "
        "before deleting it; the uploaded logs are listed at the end",
    )
    storage.add_argument(
        "--storage-connection-string",
        default=os.environ.get(STORAGE_CONNECTION_STRING),
        metavar="STRING",
        help=f"the storage account of both (default ${STORAGE_CONNECTION_STRING}); with the "
        "account key, which signs the SAS URLs the tasks get",
    )
    storage.add_argument(
        "--azurite",
        action="store_true",
        help="start Azurite (the storage emulator, installed with npm on first use) for the "
        "run, where the nodes reach it, and use it as the storage account",
    )
    answers = parser.add_mutually_exclusive_group()
    answers.add_argument("--yes", "-y", action="store_true", help="delete the job and pool")
    answers.add_argument("--keep", action="store_true", help="keep the job and pool")
    _add_connections(parser)
    _add_output(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (schema: jobprep_release/report.schema.json) on stdout at "
        "the end; the transcript goes to stderr. Needs --yes or --keep",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no live progress display on a terminal"
    )
    return parser


def build_status_parser() -> argparse.ArgumentParser:
    parser = _parser(
        "python -m jobprep_release status",
        "The job's preparation and release task settings and how they ran on each node, as "
        "the portal's job page shows them.",
        "example:\n  python -m jobprep_release status --job-id JobPrepReleaseSampleJob",
    )
    _add_backend(parser)
    parser.add_argument("--job-id", type=_batch_id("job"), default=SampleOptions().job_id)
    _add_connections(parser)
    _add_output(parser)
    return parser


def build_cleanup_parser() -> argparse.ArgumentParser:
    parser = _parser(
        "python -m jobprep_release cleanup",
        "Remove the containers and volumes the docker backend created with this state "
        "directory (labelled jobprep_release.pool and this state's jobprep_release.state), and "
        "its record of those pools and jobs. Nothing else is touched.",
        "example:\n  python -m jobprep_release cleanup --yes",
    )
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask first")
    parser.add_argument(
        "--pool-id", type=_batch_id("pool"), help="only this pool's containers and volumes"
    )
    parser.add_argument(
        "--all",
        action="store_true",
        dest="every_state",
        help="also those of other state directories (or of a lost one): every container and "
        "volume labelled jobprep_release.pool, even while another run uses them",
    )
    docker = parser.add_argument_group("docker backend")
    docker.add_argument("--docker-host", help="engine URL (default: $DOCKER_HOST or the socket)")
    docker.add_argument("--state-dir", type=Path, help="the backend's state directory")
    _add_output(parser)
    return parser


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Invocation(Value):
    """Parsed flags, ready to run."""

    args: argparse.Namespace
    options: SampleOptions
    answer: Answer


def parse(argv: Sequence[str], debug: _Debug | None = None) -> Invocation:
    """The run command's flags, with the environment's and the settings file's values."""
    args = _parse_with_settings(build_parser(), argv, debug)
    options = SampleOptions(
        pool_id=args.pool_id,
        job_id=args.job_id,
        node_count=args.nodes,
        task_count=args.tasks,
        vm_size=args.vm_size,
        image=args.image,
        node_agent_sku_id=args.node_agent_sku,
        task_slots_per_node=args.slots,
        node_fill_type=NodeFillType(args.fill_type),
        wait_for_success=args.wait_for_success,
        task_retries=args.task_retries,
        task_wall_clock=args.task_wall_clock,
        task_command=args.task_command,
        task_timeout=args.task_timeout,
        job_timeout=args.job_timeout,
        report=args.json,
        stage_container=args.stage_container,
        logs_container=args.logs_container,
        storage_connection_string=args.storage_connection_string,
        azurite=args.azurite,
    )
    if args.backend == "docker" and args.image is not None:
        check_docker_image(args.image)
    _check_storage(args, options)
    answer = Answer.YES if args.yes else Answer.NO if args.keep else Answer.ASK
    if args.json and answer is Answer.ASK:
        raise UsageError("--json needs --yes or --keep: the prompts cannot be answered")
    return Invocation(args=args, options=options, answer=answer)


_LOOPBACK = ("127.", "localhost", "[::1]")


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].lower()


def _check_storage(args: argparse.Namespace, options: SampleOptions) -> None:
    if options.azurite and not options.uses_storage:
        raise UsageError("--azurite is for --stage-container or --logs-container: give one")
    if options.azurite and args.backend == "azure":
        endpoint = args.endpoint or os.environ.get("AZURE_BATCH_ENDPOINT") or ""
        if not _host(endpoint).startswith(_LOOPBACK):
            raise UsageError(
                "--azurite runs the emulator on this machine, which Azure's nodes cannot "
                "reach: give --storage-connection-string of a storage account instead"
            )
    if not options.uses_storage or options.azurite:
        return
    if not options.storage_connection_string:
        raise UsageError(
            "--stage-container and --logs-container need a storage account: give "
            f"--storage-connection-string (or ${STORAGE_CONNECTION_STRING}), or --azurite "
            "to start the storage emulator"
        )
    if "accountkey=" not in options.storage_connection_string.lower():
        raise UsageError(
            "the storage connection string has no AccountKey: the app signs the tasks' SAS "
            "URLs with the account key"
        )
    parts = dict(
        part.split("=", 1) for part in options.storage_connection_string.split(";") if "=" in part
    )
    blob_endpoint = {name.lower(): value for name, value in parts.items()}.get("blobendpoint", "")
    if options.logs_container and _host(blob_endpoint).startswith(_LOOPBACK):
        raise UsageError(
            f"the release tasks run on nodes, which cannot reach {blob_endpoint}: give an "
            "address the nodes reach (on docker, the engine's bridge gateway, such as "
            "172.17.0.1, with the emulator listening there), or --azurite"
        )


def make_backend(args: argparse.Namespace) -> BatchBackend:
    """The chosen backend, imported only now. The docker backend is shared between the
    processes using one engine (`jobprep_release.attach`)."""
    if args.backend == "docker":
        with without_collection():
            from jobprep_release.attach import shared_docker_backend
            from jobprep_release.backends.docker import DEFAULT_NODE_IMAGE, DockerSettings

        image = getattr(args, "image", None) or DEFAULT_NODE_IMAGE
        settings = DockerSettings(
            image=image, state_dir=args.state_dir, docker_host=args.docker_host
        )
        # Holds the engine's state, or attaches to the process that holds it.
        return shared_docker_backend(settings)
    from jobprep_release import logs
    from jobprep_release.backends.azure import build_azure_backend

    logs.register_secret(args.key or os.environ.get("AZURE_BATCH_ACCESS_KEY"))
    return build_azure_backend(
        endpoint=args.endpoint,
        account=args.account,
        key=args.key,
        settings_path=args.settings,
        environ=os.environ,
    )


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


COMMANDS = ("status", "cleanup", "serve")


def _configure_logs(args: argparse.Namespace) -> None:
    level = logging.INFO + 10 * (args.quiet - args.verbose)
    with without_collection():  # structlog, and rich with it
        from jobprep_release import logs

    logs.configure(level=max(level, logging.DEBUG), fmt=args.log_format)


@dataclass(slots=True)
class _Debug:
    """Whether an error shows its traceback. Until the flags are parsed (an error in the
    settings themselves) it is `--debug` or ``JOBPREP_RELEASE_DEBUG``; after, the parsed value,
    which a settings file's ``debug = true`` can also set."""

    on: bool


def _parse_with_settings(
    parser: argparse.ArgumentParser, argv: Sequence[str], debug: _Debug | None = None
) -> argparse.Namespace:
    settings.apply(parser, argv, os.environ)
    args = parser.parse_args(argv)
    if debug is not None:
        debug.on = args.debug
    _configure_logs(args)
    return args


def _dispatch(command: str, words: list[str], debug: _Debug) -> int:
    # The app's machinery is imported only once the flags parsed: `--help` needs none of it.
    if command == "status":
        args = _parse_with_settings(build_status_parser(), words, debug)
        return _run_async(lambda app: app.show_status(make_backend(args), args.job_id))
    if command == "cleanup":
        args = _parse_with_settings(build_cleanup_parser(), words, debug)
        answer = Answer.YES if args.yes else Answer.ASK
        return _run_async(
            lambda app: app.clean_up(
                args.docker_host,
                args.state_dir,
                args.pool_id,
                answer,
                every_state=args.every_state,
            )
        )
    invocation = parse(words, debug)
    try:
        return _run_async(lambda app: app.run(invocation, make_backend(invocation.args)))
    except Exception as exc:
        if invocation.args.json and not isinstance(_first_leaf(exc), BrokenPipeError):
            # The flags parsed, so a script reading stdout gets its one document, failed
            # (with --debug, the traceback follows and the exit status is Python's, 1).
            from jobprep_release import report

            status, line = _describe(exc)
            status = 1 if debug.on else status
            document = report.failed(invocation.args.backend, invocation.options, status, line)
            print(report.render(document), flush=True)
        raise


def _run_async(command: Callable[[ModuleType], Awaitable[int]]) -> int:
    """Run `command(jobprep_release.app)` in an event loop; return its exit status."""
    with without_collection():
        import anyio

        from jobprep_release import app

    async def run() -> int:
        return await command(app)

    return anyio.run(run)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(argv if argv is not None else sys.argv[1:])
    command = words[0] if words and words[0] in COMMANDS else "run"
    if command != "run":
        words = words[1:]
    if command == "serve":
        from jobprep_release.serve import main as serve

        return serve(words)
    debug = _Debug(
        on="--debug" in words or settings.is_true(os.environ.get(settings.env_name("debug")))
    )
    try:
        return _dispatch(command, words, debug)
    except SystemExit as exc:
        return int(exc.code or 0)
    except Exception as exc:
        if debug.on:
            raise
        status, line = _describe(exc)
        print(f"error: {line}", file=sys.stderr)
        return status


def _describe(exc: Exception) -> tuple[int, str]:
    """The exit status of an error and its one line (without ``error: ``)."""
    error = find_project_error(exc)
    if error is None:
        cause = _first_leaf(exc)
        return 1, (
            f"unexpected {type(cause).__name__}: {cause} (run again with --debug for the "
            "traceback, and please report it)"
        )
    return error.exit_status, error.one_line()

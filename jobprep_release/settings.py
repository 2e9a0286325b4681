"""Where settings come from: flags, then the environment, then a settings file.

Every flag `--some-flag` can also be given as the variable ``JOBPREP_RELEASE_SOME_FLAG`` or as
``some_flag = ...`` in ``jobprep_release.toml`` (in the current directory, or the file named by
``--config`` / ``JOBPREP_RELEASE_CONFIG``). A flag wins over the environment, which wins over
the file. Values from the environment and the file go through the same checks as flags.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jobprep_release.backends.errors import UsageError

ENV_PREFIX = "JOBPREP_RELEASE_"
DEFAULT_FILE = Path("jobprep_release.toml")
CONFIG_FLAG = "--config"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_SKIPPED = {"help", "config"}


def env_name(dest: str) -> str:
    return ENV_PREFIX + dest.upper()


def is_true(text: str | None) -> bool:
    """Whether a variable's value means true (`1`, `true`, `yes`, `on`, in any case)."""
    return text is not None and text.strip().lower() in _TRUE


def _settings_file(argv: Sequence[str], environ: Mapping[str, str]) -> Path | None:
    for index, word in enumerate(argv):
        if word == CONFIG_FLAG and index + 1 < len(argv):
            return Path(argv[index + 1])
        if word.startswith(CONFIG_FLAG + "="):
            return Path(word.split("=", 1)[1])
    if environ.get(env_name("config")):
        return Path(environ[env_name("config")])
    return DEFAULT_FILE if DEFAULT_FILE.is_file() else None


def _read_file(path: Path) -> dict[str, Any]:
    import tomllib  # here: only a run with a settings file needs it

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise UsageError(f"settings file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"settings file {path} is not valid TOML: {exc}") from None


def _as_default(action: argparse.Action, value: Any, source: str) -> Any:
    """`value` as argparse would take it from the command line (strings go through `type`)."""
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        text = str(value).strip().lower()
        if text not in _TRUE | _FALSE:
            raise UsageError(f"{source}: {value!r} is not true or false")
        chosen = text in _TRUE
        return chosen if isinstance(action, argparse._StoreTrueAction) else not chosen
    if isinstance(action, argparse._CountAction):
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"{source}: {value!r} is not a number") from None
    text = str(value)
    if action.choices is not None and text not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise UsageError(f"{source}: {text!r} is not one of {choices}")
    if callable(action.type):
        # Converted here, not by argparse, so that a bad value names where it came from (argparse
        # would name the flag, which the user did not give).
        try:
            return action.type(text)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"{source}: {exc}") from None
        except (TypeError, ValueError):
            raise UsageError(
                f"{source}: {text!r} is not a valid {action.option_strings[0]}"
            ) from None
    return text


def apply(parser: argparse.ArgumentParser, argv: Sequence[str], environ: Mapping[str, str]) -> None:
    """Set the parser's defaults from the settings file and the environment."""
    actions = {
        action.dest: action
        for action in parser._actions
        if action.option_strings and action.dest not in _SKIPPED
    }
    defaults: dict[str, Any] = {}
    path = _settings_file(argv, environ)
    if path is not None:
        for key, value in _read_file(path).items():
            dest = key.replace("-", "_")
            if dest not in actions:
                raise UsageError(f"settings file {path}: unknown setting {key!r}")
            defaults[dest] = _as_default(actions[dest], value, f"{path}: {key}")
    for dest, action in actions.items():
        name = env_name(dest)
        if name in environ:
            defaults[dest] = _as_default(action, environ[name], name)
    parser.set_defaults(**defaults)


HELP = (
    "settings: every flag can also be set in the environment as JOBPREP_RELEASE_<FLAG> "
    "(JOBPREP_RELEASE_NODES=4) or in jobprep_release.toml (nodes = 4; or --config FILE); "
    "flags win over the environment, which wins over the file."
)

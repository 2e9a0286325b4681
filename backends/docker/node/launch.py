"""How a node's agent starts one process the core asked for: `start_fields` for the Perl agent
(what every Debian node runs), else the bash below for the bash agent (an image without Perl).

The script makes the task directory and working directory (owned by the task user unless
elevated), then execs the program through `setsid` (a session and process group of its own),
`env -i` (exactly the process's variables), `setpriv` (the non-admin user, or the pool's user
account named) and, for a wall clock, `timeout` (which kills the task's whole process group
on expiry). The program is looked up in the process's PATH first, so one that cannot be
started (missing, a shell builtin, a directory, not executable) is reported as such rather than
as a bare exit 127.
"""

from __future__ import annotations

import shlex

from jobprep_release.backends.docker.core.environment import SYSTEM_PATH, TASK_USER
from jobprep_release.backends.docker.core.executor import NOT_FOUND, ProcessSpec


def launch_script(spec: ProcessSpec, *, agent_mark: str) -> str:
    """The bash the agent runs as root to start `spec`.

    `agent_mark` is a file the script writes `NOT_FOUND` to when the program does not exist,
    which the agent reports as the exit's reason.
    """
    q = shlex.quote
    # One process makes the directories (owned by the task's user unless elevated); the task's
    # stdout and stderr files are opened by this script and handed to the task as its output.
    user = spec.user or TASK_USER
    owner = "" if spec.elevated else f"-o {q(user)} -g {q(user)} "
    lines = [
        f"d={q(spec.task_dir)}",
        f"w={q(spec.working_dir)}",
        f"o={q(spec.stdout_path)}",
        f"e={q(spec.stderr_path)}",
        f'install -d {owner}"$d" "$w" || exit 125',
        'cd "$w" || exit 125',
    ]
    if spec.user is not None:
        # A pool's user account owns its task's files, the resource files placed before too.
        lines.append(f'chown -R {q(user)}: "$w" || exit 125')
    program = spec.argv[0]
    # The service starts the first word as a program (no shell): a shell builtin (`cd`), a
    # missing name, a directory or a file without execute permission cannot be started, and
    # is reported as such (CommandProgramNotFound) rather than as an exit code from a tool
    # of ours failing to exec it. A name without a slash is looked up in the process's PATH
    # (an empty entry: the working directory); one with a slash is taken as it is.
    lines += [
        f"p={q(program)}",
        f"s={q(spec.environment.get('PATH', SYSTEM_PATH))}",
        "case $p in */*) f=$p ;; *) f=; IFS=:; for x in $s; do x=${x:-.}/$p; "
        '[ -f "$x" ] && [ -x "$x" ] && { f=$x; break; }; done; unset IFS ;; esac',
        f'[ -n "$f" ] && [ -f "$f" ] && [ -x "$f" ] || {{ echo {NOT_FOUND} >{q(agent_mark)}; '
        'printf \'%s: program not found\\n\' "$p" >"$e"; exit 127; }',
    ]
    # setsid: the task leads a session and process group of its own, which the agent's `kill`
    # and timeout's wall clock end as a whole.
    words = ["exec", "setsid", "env", "-i"]
    words += [f"{name}={value}" for name, value in spec.environment.items()]
    if not spec.elevated:
        words += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]
    if spec.wall_clock is not None:
        seconds = max(spec.wall_clock.total_seconds(), 0.001)
        words += ["timeout", "-s", "KILL", f"{seconds:.3f}"]
    words += spec.argv
    lines.append(" ".join(q(word) for word in words) + ' >"$o" 2>"$e"')
    return "\n".join(lines) + "\n"


def start_fields(spec: ProcessSpec) -> list[str]:
    """What the Perl agent's `start` needs to start `spec` (`agent.AGENT_PERL`, which does what
    `launch_script` does, in its own forked process): the task and working directories, the
    stdout and stderr paths, the user (empty: root, elevated), whether the user's account owns
    the working directory's files (a pool's user account), the PATH the program is looked up
    in, the wall clock in seconds (empty: none), the number of variables, the variables
    (``NAME=value``), then the program and its arguments."""
    user = "" if spec.elevated else spec.user or TASK_USER
    wall_clock = ""
    if spec.wall_clock is not None:
        wall_clock = f"{max(spec.wall_clock.total_seconds(), 0.001):.3f}"
    variables = [f"{name}={value}" for name, value in spec.environment.items()]
    return [
        spec.task_dir,
        spec.working_dir,
        spec.stdout_path,
        spec.stderr_path,
        user,
        "1" if spec.user is not None else "",
        spec.environment.get("PATH", SYSTEM_PATH),
        wall_clock,
        str(len(variables)),
        *variables,
        *spec.argv,
    ]


def remove_tree_script(path: str) -> str:
    return f"rm -rf -- {shlex.quote(path)}\n"

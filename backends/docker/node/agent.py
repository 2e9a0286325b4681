"""The node agent: a process in each node container that starts task processes locally.

Azure Batch runs an agent on every node; so does this backend. A `docker exec` costs tens of
milliseconds, so instead the container's main process is `AGENT_SCRIPT` (bash preparing the
node, then the Perl agent `AGENT_PERL`), fed commands on its attached stdin and answering on
stdout, one line each::

    app -> agent   start <key> <n>\\n<n bytes>   start a task (`launch.start_fields`, joined by
                                              NUL bytes): the agent forks, makes its
                                              directories, and execs the program in a session
                                              of its own as its user with exactly its
                                              variables; unless <key> was run already: then
                                              answer as to `query`, starting nothing
                   run <key> <n>\\n<n bytes>     run a bash script as root (the same, for a
                                              script: chores, and the bash agent's launches)
                   kill <key>                 SIGKILL the run's whole process group
                   query <key>                ask how <key> is doing
                   hello                      ask for the boot number
                   read <key> <root> <path>   a small file's bytes (`read_command`; the two
                                              paths hex-encoded; Perl agent only)
    agent -> app   hello <boot> [start read]  (``start``, ``read``: the agent takes them)
                   started <key> <epoch>
                   exited <key> <code> <start epoch> <end epoch> <why, or ->
                   running <key>              run on this boot, not yet ended
                   unknown <key>              run on an earlier boot and never ended: lost
                   absent <key>               never run here (the app never got to send it)
                   file <key> ok <n> <hex>    `read`'s answer: the file's n bytes, hex-encoded
                   file <key> absent          no such file (a part of the path is missing)
                   file <key> other           a symbolic link on the way, not a regular file,
                                              over `AGENT_READ_LIMIT` or unreadable: the app
                                              reads it through the engine's archive instead

Every exit is also written to ``/mnt/batch/agent/<key>.exit`` on the node's volume before it is
announced, so an app that was not listening (it crashed, or was restarted) learns it with
`query`. A run is recorded (``<key>.run``, the boot it was read in) before the agent reads its
next command, so a `query` right after a `run` says ``running``, never ``absent``, and a second
`run` of the same key (an app that crashed not knowing whether its first was sent, and sends it
again) starts nothing: a launch happens at most once per key, whatever instant the app dies
at. Its pid (for `kill`) is kept as it is forked (the bash agent keeps it in ``<key>.pid``). A
wall clock given to `start` is kept by the agent, which kills the task's process group when it
has passed. The boot number grows by one each time the container starts: a reboot.

Why Perl: the node image is a plain Debian (no compiler, no helper of ours), and the bash agent
forked three processes per task (two subshells and ``install``) and exec'd ``setsid``, ``env``
and ``setpriv`` before the program, about twice the node's CPU per task of the bench's floor
(`bench/mechanism.py`). The Perl agent forks once and does the rest with system calls before
its one ``exec``; it also writes the lines of one pass together, and holds a ``started`` line
(at most 20 ms) until a line that goes at once, a short task's ``exited`` most often, so a short
task costs one attach frame (for the engine to relay and the app to read), not two. On an
image without Perl the bash loop stays the agent, and the app sends it `run`.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from jobprep_release.backends.docker.node.engine import Engine
from jobprep_release.backends.errors import BackendUnavailable, NotFound

AGENT_DIR = "/mnt/batch/agent"
FRAME_HEADER = struct.Struct(">BxxxL")
AGENT_READ_LIMIT = 64 * 1024
"""Bytes of the largest file the agent's `read` sends (twice as many, hex, in one line, which
the app reads whole); a larger file is read through the engine's archive, streamed."""

AGENT_PERL = r"""
use strict;
my $A = "/mnt/batch/agent";
my ($boot, $arch) = @ARGV;
# System call numbers (gettimeofday, setsid): the POSIX module would triple the heap every fork
# copies.
my ($gtod, $setsid) = @{ {x86_64 => [96, 112], aarch64 => [169, 157]}->{$arch} || [] };
require POSIX unless defined $setsid;
my (%running, %deadline, %pid_of, %account);
my ($in, $out) = ("", "");
pipe(my $sr, my $sw) or die "pipe: $!";
fcntl($_, 4, 2048) for $sr, $sw;  # F_SETFL, O_NONBLOCK
$SIG{CHLD} = sub { syswrite($sw, "c") };
$SIG{TERM} = $SIG{INT} = sub { exit 0 };
binmode STDIN;
binmode STDOUT;
sub now {
  if (defined $gtod) {
    my $t = "\0" x 16;
    if (syscall($gtod, $t, 0) == 0) {
      my ($s, $u) = unpack("q q", $t);
      return sprintf("%d.%06d", $s, $u);
    }
  }
  return time() . ".000000";
}
sub put {
  my ($path, $text) = @_;
  open(my $f, ">", $path) or return 0;
  print $f $text;
  return close($f);
}
sub first_line {
  my ($path) = @_;
  open(my $f, "<", $path) or return undef;
  my $line = <$f>;
  close($f);
  return undef unless defined $line;
  chomp $line;
  return $line;
}
sub say_ { $out .= join(" ", @_) . "\n" }
# A `started` line waits (at most $HOLD seconds) for a line that must go at once, an exit most
# often, and goes with it: one write, one attach frame, for what would be two.
my ($held, $held_since, $HOLD) = ("", 0, 0.02);
sub say_started {
  $held_since = now() unless length $held;
  $held .= "started $_[0] $_[1]\n";
}
sub flush_out {
  $out = $held . $out;
  $held = "";
  while (length $out) {
    my $n = syswrite(STDOUT, $out);
    if (!defined $n) { next if $! == 4; exit 0 }  # EINTR
    substr($out, 0, $n) = "";
  }
}
sub query {
  my ($key) = @_;
  if (-s "$A/$key.exit") {
    say_("exited", $key, first_line("$A/$key.exit") // "");
  } elsif (-e "$A/$key.run") {
    my $b = first_line("$A/$key.run") // "";
    say_($b eq $boot ? "running" : "unknown", $key);
  } else {
    say_("absent", $key);
  }
}
sub launch {
  my ($key, $child, $wall) = @_;
  put("$A/$key.run", "$boot\n");
  my $start = now();
  my $pid = fork();
  if (!defined $pid) {
    my $end = now();
    put("$A/$key.exit", "126 $start $end -\n");
    say_started($key, $start);
    say_("exited", $key, 126, $start, $end, "-");
    return;
  }
  if ($pid == 0) {
    $SIG{$_} = "DEFAULT" for qw(CHLD TERM INT);
    close($sr);
    close($sw);
    open(STDIN, "<", "/dev/null");
    eval { $child->() };
    exit(126);
  }
  say_started($key, $start);
  $running{$pid} = [$key, $start];
  $pid_of{$key} = $pid;
  $deadline{$pid} = $start + $wall if $wall ne "";
}
sub run_script {
  my ($script) = @_;
  open(STDOUT, ">", "/dev/null");
  open(STDERR, ">", "/dev/null");
  exec { "/bin/bash" } "bash", "-c", $script;
  exit(127);
}
# A user's uid, gid and groups (its own and those listing it, as initgroups), looked up in the
# agent, not in each task's process, and again when /etc/passwd or /etc/group changed.
my $accounts_seen = "";
sub look_up {
  my ($user) = @_;
  my $seen = join(" ", map { join(",", (stat $_)[7, 9]) } "/etc/passwd", "/etc/group");
  %account = () if $seen ne $accounts_seen;
  $accounts_seen = $seen;
  return if $user eq "" || exists $account{$user};
  my @pw = getpwnam($user);
  $account{$user} = undef;
  return unless @pw;
  my @groups = ($pw[3]);
  setgrent();
  while (my @gr = getgrent()) {
    push @groups, $gr[2] if grep { $_ eq $user } split(/ /, $gr[3]);
  }
  endgrent();
  $account{$user} = [$pw[2], $pw[3], @groups];
}
sub make_dirs {
  for my $dir (@_) {
    next if mkdir($dir, 0755) || -d $dir;
    my $path = "";
    for my $part (split(m{/}, $dir)) {
      $path .= "$part/";
      next if $part eq "" || -d $path;
      mkdir($path, 0755) or -d $path or return 0;
    }
  }
  return 1;
}
sub start_task {
  my ($key, $d, $w, $o, $e, $user, $chown, $path, @rest) = @_;
  my $count = shift @rest;
  exit(125) unless defined $path && defined $count && @rest > $count;  # a payload cut short
  my @env = splice(@rest, 0, $count);
  my @argv = @rest;
  my ($uid, $gid, @groups);
  if ($user ne "") {
    my $found = $account{$user} or exit(125);
    ($uid, $gid, @groups) = @$found;
  }
  make_dirs($d, $w) or exit(125);
  if ($user ne "") { chown($uid, $gid, $d, $w) == 2 or exit(125) }
  chmod(0755, $d, $w);
  chdir($w) or exit(125);
  if ($chown ne "") { system("chown", "-R", "$user:", $w) == 0 or exit(125) }
  my $p = $argv[0];
  my $f;
  if (index($p, "/") >= 0) {
    $f = $p;
  } else {
    for my $x (split(/:/, $path, -1)) {
      my $c = ($x eq "" ? "." : $x) . "/$p";
      if (-f $c && -x _) { $f = $c; last }
    }
  }
  unless (defined $f && -f $f && -x _) {
    put("$A/$key.why", "notfound\n");
    put($e, "$p: program not found\n");
    exit(127);
  }
  open(STDOUT, ">", $o) or exit(1);
  open(STDERR, ">", $e) or exit(1);
  defined $setsid ? syscall($setsid) : POSIX::setsid();
  if ($user ne "") {
    $) = join(" ", $gid, @groups);
    $( = $gid;
    ($<, $>) = ($uid, $uid);
    exit(126) unless $< == $uid && $> == $uid;
  }
  %ENV = map { split(/=/, $_, 2) } @env;
  exec { $f } @argv;
  print STDERR "$p: $!\n";
  exit($! == 2 ? 127 : 126);  # ENOENT
}
sub reap {
  while ((my $pid = waitpid(-1, 1)) > 0) {
    my $status = $?;
    my $ran = delete $running{$pid} or next;
    delete $deadline{$pid};
    my ($key, $start) = @$ran;
    delete $pid_of{$key};
    my $code = ($status & 127) ? 128 + ($status & 127) : $status >> 8;
    my $end = now();
    my $why = "-";
    if ($code == 127 && -s "$A/$key.why") {
      my $line = first_line("$A/$key.why") // "";
      ($why) = split(" ", $line);
      $why //= "-";
    }
    put("$A/$key.exit", "$code $start $end $why\n");
    say_("exited", $key, $code, $start, $end, $why);
  }
}
sub expire {
  my $now = now();
  for my $pid (keys %deadline) {
    next if $deadline{$pid} > $now;
    delete $deadline{$pid};
    kill("KILL", -$pid) or kill("KILL", $pid);
  }
}
# `read`: a regular file below a root, none of its parts a symbolic link (the app resolves
# links, and reads what the agent will not, through the engine), whole if small. The file
# opened is the one at that path (its /proc/self/fd link): a part swapped for a link between
# the checks and the open (by a task) is declined, not followed out of the root.
my $READ_LIMIT = #READ_LIMIT#;
sub read_file {
  my ($key, $root, $relative) = ($_[0], map { pack("H*", $_ // "") } @_[1, 2]);
  my $path = $root;
  for my $part (split(m{/}, $relative, -1)) {
    $path .= "/$part";
    return say_("file", $key, "absent") unless lstat($path);
    return say_("file", $key, "other") if -l _;
  }
  return say_("file", $key, "other") unless -f _ && -s _ <= $READ_LIMIT;
  open(my $f, "<", $path) or return say_("file", $key, "other");
  my $opened = readlink("/proc/self/fd/" . fileno($f));
  unless (defined $opened && $opened eq $path && -f $f) {
    close($f);
    return say_("file", $key, "other");
  }
  binmode $f;
  my ($data, $n) = ("", 1);
  $n = sysread($f, $data, 65536, length $data) while $n && length $data <= $READ_LIMIT;
  close($f);
  return say_("file", $key, "other") unless defined $n && length $data <= $READ_LIMIT;
  say_("file", $key, "ok", length $data, unpack("H*", $data));
}
sub command {
  my $nl = index($in, "\n");
  return 0 if $nl < 0;
  my ($verb, $key, $size) = split(/ /, substr($in, 0, $nl), 3);
  $verb //= "";
  $key //= "";
  if ($verb eq "run" || $verb eq "start") {
    $size = int($size // 0);
    return 0 if length($in) < $nl + 1 + $size;
    my $payload = substr($in, $nl + 1, $size);
    substr($in, 0, $nl + 1 + $size) = "";
    if (-e "$A/$key.run") {
      query($key);
    } elsif ($verb eq "run") {
      launch($key, sub { run_script($payload) }, "");
    } else {
      my @fields = split(/\0/, $payload, -1);
      my $wall = splice(@fields, 7, 1);
      look_up($fields[4] // "");
      launch($key, sub { start_task($key, @fields) }, $wall);
    }
    return 1;
  }
  substr($in, 0, $nl + 1) = "";
  if ($verb eq "kill") {
    my $p = $pid_of{$key};
    kill("KILL", -$p) or kill("KILL", $p) if $p;
  } elsif ($verb eq "query") {
    query($key);
  } elsif ($verb eq "hello") {
    say_("hello", $boot, "start", "read");
  } elsif ($verb eq "read") {
    read_file($key, split(/ /, $size // "", 2));
  }
  return 1;
}
say_("hello", $boot, "start", "read");
flush_out();
while (1) {
  1 while command();
  reap();
  expire() if %deadline;
  flush_out() if length $out || (length $held && now() - $held_since >= $HOLD);
  my $timeout;
  if (%deadline) {
    my ($next) = sort { $a <=> $b } values %deadline;
    $timeout = $next - now();
    $timeout = 0 if $timeout < 0;
  }
  if (length $held) {
    my $left = $held_since + $HOLD - now();
    $left = 0 if $left < 0;
    $timeout = $left if !defined $timeout || $left < $timeout;
  }
  my $rin = "";
  vec($rin, fileno(STDIN), 1) = 1;
  vec($rin, fileno($sr), 1) = 1;
  my $ready = select(my $rout = $rin, undef, undef, $timeout);
  next if $ready <= 0;
  sysread($sr, my $drain, 4096) if vec($rout, fileno($sr), 1);
  if (vec($rout, fileno(STDIN), 1)) {
    my $n = sysread(STDIN, $in, 65536, length $in);
    exit(0) if defined $n && $n == 0;
  }
}
"""
"""The agent proper (see the module's docstring), in the Perl every Debian image has
(``perl-base`` is essential): one process per node that forks each task and execs its program
itself, with no shell, ``install``, ``setsid``, ``env`` or ``setpriv`` in between."""

_AGENT_BASH = r"""
export LC_ALL=C
A=/mnt/batch/agent
T=/mnt/batch/tasks
trap 'exit 0' TERM INT
mkdir -p "$A" "$T/shared" "$T/startup" "$T/workitems" "$T/fsmounts"
if ! grep -q '^_azbatch:' /etc/passwd; then
  echo '_azbatch:x:1000:1000::/mnt/batch/tasks:/bin/bash' >>/etc/passwd
  echo '_azbatch:x:1000:' >>/etc/group
fi
chown _azbatch:_azbatch "$T/shared" "$T/startup"
chmod 0775 "$T" "$T/shared" "$T/startup" "$T/workitems"
#POOL_USERS#
boot=$(( $(cat "$A/boot" 2>/dev/null || echo 0) + 1 ))
echo "$boot" >"$A/boot"
read -r -d '' P <<'PERL'
#AGENT_PERL#
PERL
command -v perl >/dev/null 2>&1 && exec perl -e "$P" -- "$boot" "$HOSTTYPE"
echo "hello $boot"
run() {
  local key=$1 script=$2
  echo "$boot" >"$A/$key.run"
  (
    start=$EPOCHREALTIME
    ( eval "$script" ) </dev/null >/dev/null 2>&1 &
    pid=$!
    echo "$boot $pid" >"$A/$key.pid"
    echo "started $key $start"
    wait "$pid"
    code=$?
    end=$EPOCHREALTIME
    why=-
    [ -s "$A/$key.why" ] && read -r why <"$A/$key.why"
    echo "$code $start $end $why" >"$A/$key.exit"
    echo "exited $key $code $start $end $why"
  ) &
}
query() {
  local key=$1 b
  if [ -s "$A/$key.exit" ]; then echo "exited $key $(<"$A/$key.exit")"
  elif [ -e "$A/$key.run" ]; then
    read -r b <"$A/$key.run"
    if [ "$b" = "$boot" ]; then echo "running $key"; else echo "unknown $key"; fi
  else echo "absent $key"; fi
}
while IFS=' ' read -r verb key size; do
  case "$verb" in
    run)
      IFS= read -r -N "$size" script
      if [ -e "$A/$key.run" ]; then query "$key"; else run "$key" "$script"; fi ;;
    kill)
      if [ -s "$A/$key.pid" ]; then
        read -r b p <"$A/$key.pid"
        [ "$b" = "$boot" ] && { kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; }
      fi ;;
    query) query "$key" ;;
    hello) echo "hello $boot" ;;
  esac
done
"""
AGENT_SCRIPT = _AGENT_BASH.replace(
    "#AGENT_PERL#\n", AGENT_PERL.replace("#READ_LIMIT#", str(AGENT_READ_LIMIT), 1), 1
)
"""The node container's main process (``bash -c``): it prepares the node (directories, the task
user, the pool's accounts, the boot number), then execs `AGENT_PERL`; on an image without Perl
it stays the agent itself, a bash loop that starts each `run` in a subshell (no `start`)."""


def agent_script(pool_users: str = "") -> str:
    """`AGENT_SCRIPT` with `pool_users` (bash creating the pool's user accounts, quiet on
    stdout) run after the task user exists and before the agent says hello, so its uid is
    never taken and no process starts before the accounts exist."""
    return AGENT_SCRIPT.replace("#POOL_USERS#\n", pool_users, 1)


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """One line from an agent: `verb` and its words."""

    verb: str
    key: str
    words: tuple[str, ...]


class AgentLink:
    """The attached stdin/stdout of one node's agent, read and written without a thread.

    The attached socket is put in non-blocking mode and waited on with the event loop's own
    readiness (`anyio.wait_readable`), so a linked node costs no worker thread however long it
    stays quiet: a pool of any size leaves anyio's thread pool free. The link is full duplex, so
    one reader and any number of (serialised) writers may use it at once.

    The engine multiplexes an attach without a TTY into frames: an 8-byte header (stream type,
    three zero bytes, payload size as a big-endian 32-bit count), then the payload (Docker
    Engine API, "Attach to a container": "Stream format").
    """

    def __init__(self, sock: Any) -> None:
        self._io = sock
        raw = getattr(sock, "_sock", sock)
        self._socket: socket.socket = raw
        self._socket.setblocking(False)
        self._frames = bytearray()
        """Bytes read from the socket not yet unframed (at most one partial frame)."""
        self._pending = bytearray()
        """Agent output unframed but not yet ending in a newline."""
        self._write_lock = anyio.Lock()
        self.closed = False

    @classmethod
    async def attach(cls, engine: Engine, container_id: str) -> AgentLink:
        """Attach to the container's stdin and stdout (a docker-py call, in the engine's
        threads); the project's errors as `Engine.call` raises them (`BackendUnavailable` when
        the engine cannot be reached, `NotFound` when the container is gone)."""
        params = {"stdin": 1, "stdout": 1, "stream": 1}
        sock = await engine.call(
            engine.api.attach_socket,
            container_id,
            params=params,
            what="attach to a node's agent",
        )
        return cls(sock)

    async def send(self, payload: bytes) -> None:
        """Write `payload` whole; `BackendUnavailable` when the link is lost."""
        async with self._write_lock:
            view = memoryview(payload)
            try:
                while view:
                    try:
                        sent = self._socket.send(view)
                    except (BlockingIOError, ssl.SSLWantWriteError):
                        await anyio.wait_writable(self._socket)
                        continue
                    view = view[sent:]
            except (OSError, ValueError, anyio.ClosedResourceError) as exc:
                raise BackendUnavailable(f"lost the link to a node agent: {exc}") from exc

    async def receive(self) -> list[AgentEvent]:
        """The next complete lines, waiting for at least one; [] when the link has closed."""
        while b"\n" not in self._pending:
            if self.closed or not await self._read():
                self.closed = True
                return []
        end = self._pending.rindex(b"\n")
        complete = bytes(self._pending[:end])
        del self._pending[: end + 1]
        events = []
        for line in complete.decode(errors="replace").splitlines():
            words = line.split()
            if len(words) >= 2:
                events.append(AgentEvent(words[0], words[1], tuple(words[2:])))
            elif words:
                events.append(AgentEvent(words[0], "", ()))
        return events

    async def _read(self) -> bool:
        """Read what the socket has (waiting until it has something) and unframe it; False
        at the end of the stream or when the link was closed."""
        while True:
            try:
                chunk = self._socket.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError):
                try:
                    await anyio.wait_readable(self._socket)
                except (OSError, ValueError, anyio.ClosedResourceError):
                    return False
                continue
            except (OSError, ValueError):
                return False
            if not chunk:
                return False
            self._unframe(chunk)
            return True

    def _unframe(self, chunk: bytes) -> None:
        frames = self._frames
        frames += chunk
        while len(frames) >= FRAME_HEADER.size:
            _stream, size = FRAME_HEADER.unpack_from(frames)
            end = FRAME_HEADER.size + size
            if len(frames) < end:
                break
            self._pending += frames[FRAME_HEADER.size : end]
            del frames[:end]

    def close(self) -> None:
        """Close the socket; a `receive` waiting on it returns [] and a `send` raises."""
        if self.closed and self._socket.fileno() < 0:
            return
        self.closed = True
        if self._socket.fileno() >= 0:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
            # Wakes a task waiting for the socket, which would otherwise wait on a closed fd.
            with contextlib.suppress(RuntimeError):
                anyio.notify_closing(self._socket)
        self._socket.close()
        close_io: Callable[[], None] | None = getattr(self._io, "close", None)
        if close_io is not None:
            close_io()


def run_command(key: str, script: str) -> bytes:
    """The `run` command line for a script (the agent reads exactly its byte count)."""
    body = script.encode()
    return f"run {key} {len(body)}\n".encode() + body


def start_command(key: str, fields: Sequence[str]) -> bytes:
    """The `start` command line for a task (`launch.start_fields`): its fields joined by NUL
    bytes, which no argument or variable can hold (a NUL in one is dropped, as `execve` would
    end the string there)."""
    body = "\0".join(field.replace("\0", "") for field in fields).encode()
    return f"start {key} {len(body)}\n".encode() + body


def simple_command(verb: str, key: str = "") -> bytes:
    return f"{verb} {key}\n".encode()


def read_command(key: str, root: str, relative: str) -> bytes:
    """The `read` command line: the file at `relative` (``/``-separated) under `root`, both
    hex-encoded so that any name fits in one line of words."""
    return f"read {key} {root.encode().hex()} {relative.encode().hex()}\n".encode()


def file_answer(event: AgentEvent, relative: str) -> bytes | None:
    """What a ``file`` line answers to `read` of `relative`: the file's bytes, or None for a
    file the agent does not send (read it through the engine; a line whose byte count does not
    match its content too); `NotFound` (``FileNotFound``, as `Engine.confined_path` says it)
    when there is no such file."""
    status, *rest = event.words or ("other",)
    if status == "absent":
        raise NotFound(f"{relative}: no such file", code="FileNotFound")
    if status != "ok" or not rest:
        return None
    try:
        data = bytes.fromhex(rest[1]) if len(rest) > 1 else b""
        size = int(rest[0])
    except ValueError:
        return None
    return data if len(data) == size else None

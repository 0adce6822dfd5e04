"""What every target kind provides (see the package's docstring)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from typing import IO, Any, Protocol

from backups.engine.records import Snapshot, StreamRecord, WriteStats
from backups.engine.repository import Repository

# What a target holds, comparably: table (or file) name → its row count (or size and SHA-256).
Inventory = dict[str, Any]
Progress = Callable[[WriteStats], None]


class TargetError(Exception):
    """The target could not be read or written (unreachable, a tool failed, bad input)."""


class Target(Protocol):
    kind: str

    def backup(
        self, repository: Repository, stats: WriteStats, progress: Progress | None = None
    ) -> tuple[list[StreamRecord], dict[str, Any]]: ...

    def restore(self, repository: Repository, snapshot: Snapshot) -> None: ...

    def inventory(self) -> Inventory: ...

    def describe(self) -> str: ...


def tool_version(command: list[str]) -> str:
    """A tool's own version line (``pg_dump --version``), for the manifest."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        raise TargetError(f"{command[0]} is not available: {exc}") from None
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else ""


F_SETPIPE_SZ = 1031  # Linux's fcntl to resize a pipe
PIPE_BYTES = 1024 * 1024


def widen_pipe(pipe: Any) -> None:
    """A 1 MiB pipe (Linux; 64 KiB by default): the dump tool keeps writing while we hash and
    chunk, rather than wait for every 64 KiB to be taken."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, OSError):
        pass  # another system, or a limit below 1 MiB: the default pipe works, a bit slower


class ToolProcess:
    """A dump or restore tool run as a child process, its stderr collected on a thread (a
    chatty tool must not block on a full pipe), its failure turned into a TargetError that
    says what the tool said."""

    def __init__(self, command: list[str], *, env: dict[str, str], reads: bool) -> None:
        self.command = command
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE if not reads else subprocess.DEVNULL,
                stdout=subprocess.PIPE if reads else subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            raise TargetError(f"cannot run {command[0]}: {exc}") from None
        if reads:
            widen_pipe(self.process.stdout)
        self._stderr: list[bytes] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if len(self._stderr) < 200:
                self._stderr.append(line)

    @property
    def stdout(self) -> IO[bytes]:
        assert self.process.stdout is not None
        return self.process.stdout

    @property
    def stdin(self) -> IO[bytes]:
        assert self.process.stdin is not None
        return self.process.stdin

    def finish(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        code = self.process.wait()
        self._reader.join(10)
        if code != 0:
            said = b"".join(self._stderr).decode(errors="replace").strip()[-2000:]
            raise TargetError(f"{self.command[0]} failed (exit code {code}): {said}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def dump_into(
    repository: Repository,
    name: str,
    command: list[str],
    env: dict[str, str],
    stats: WriteStats,
    progress: Progress | None,
) -> StreamRecord:
    """A dump tool's output stored as the stream ``name``; the tool's failure is the run's."""
    dump = ToolProcess(command, env=env, reads=True)
    try:
        stream = repository.write_stream(
            name, dump.stdout, stats, progress=progress, whole_digest=False
        )
        dump.finish()
    except BaseException:
        dump.kill()
        raise
    return stream


def restore_through(
    repository: Repository, stream: StreamRecord, command: list[str], env: dict[str, str]
) -> None:
    """The stream fed to a restore tool's input; the tool's failure says what went wrong."""
    restore = ToolProcess(command, env=env, reads=False)
    try:
        for data in repository.read_stream(stream):
            restore.stdin.write(data)
        restore.finish()
    except BrokenPipeError:
        restore.finish()  # the tool stopped reading: its own error says why
        raise TargetError(f"{command[0]} stopped reading") from None
    except BaseException:
        restore.kill()
        raise


def stream_named(snapshot: Snapshot, name: str, what: str) -> StreamRecord:
    stream = next((s for s in snapshot.streams if s.name == name), None)
    if stream is None:
        raise TargetError(f"snapshot {snapshot.id} holds no {what}")
    return stream

"""Restore with several processes: the kernel work of creating files, on every CPU.

Restoring many small files from a local repository is mostly system calls (creating,
writing, renaming each file); one Python process keeps one CPU busy, and more threads in it
only add interpreter-lock hand-overs. A :class:`RestoreTeam` forks helper processes before
the restore starts reading: each process walks the whole snapshot tree but writes only the
files, symlinks and special files of its runs of entries (runs of :data:`RUN` in the order
of the walk, handed out in turn), and every process creates the directories it needs. The
first process (the one that called :func:`pannier.engine.restore.run_restore`) waits for
the helpers, then makes the hard links and applies the metadata of every directory,
deepest first, so no helper changes a directory after its times are set.

A helper sends its summary back through a pipe and its running counts through shared
memory, so the progress line counts the work of all processes. A helper that fails or is
interrupted removes its temporary files like any restore and exits; the first process
then reports it. Stopping the first process (Ctrl-C, SIGTERM) stops the helpers.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import signal
import struct
from collections.abc import Callable
from typing import Any, NoReturn

import msgpack

from ..errors import RepositoryError
from .progress import Progress

__all__ = ["RestoreTeam"]

_SLOT = struct.Struct("<qq")  # files done, bytes done
#: Entries in a row (in walk order) that one process writes before the next takes over.
RUN = 128


class RestoreTeam:
    """The processes of one restore, seen from one of them.

    :ivar part: this process's number (0 for the process that waits for the others).
    :ivar size: the number of processes.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.part = 0
        self._counters = mmap.mmap(-1, _SLOT.size * size)
        self._children: dict[int, tuple[int, int]] = {}  # part -> (pid, read fd)
        self._write_fd = -1
        self._seen = 0

    @classmethod
    def fork(cls, size: int) -> RestoreTeam:
        """Fork ``size - 1`` helpers; return the team as seen from the calling process
        (``part`` 0) or from a helper (``part`` 1 and up), which must end in
        :meth:`run_helper`."""
        team = cls(size)
        for part in range(1, size):
            read_fd, write_fd = os.pipe()
            try:
                pid = os.fork()
            except OSError:  # no more processes: stop the helpers already started
                os.close(read_fd)
                os.close(write_fd)
                team.stop()
                raise
            if pid == 0:  # the helper
                # stopped by the first process (or a service manager): clean up, then end
                signal.signal(signal.SIGTERM, _interrupt)
                os.close(read_fd)
                for _pid, fd in team._children.values():
                    os.close(fd)
                team._children = {}
                team.part, team._write_fd = part, write_fd
                return team
            os.close(write_fd)
            team._children[part] = (pid, read_fd)
        return team

    def owns_next(self) -> bool:
        """Whether the next entry (not a directory, in the order of the walk every
        process makes) is written by this process: runs of :data:`RUN` entries go to
        the processes in turn, so a large directory is shared too."""
        self._seen += 1
        return ((self._seen - 1) // RUN) % self.size == self.part

    def progress(self, stream: Any) -> Progress:
        """The progress of a helper: it draws nothing and reports no error itself (the
        first process reports its errors); its counts go to shared memory."""
        return _HelperProgress(self._counters, self.part, stream)

    def others_done(self) -> tuple[int, int]:
        """Files and bytes the helpers have done so far."""
        files = nbytes = 0
        for part in range(1, self.size):
            f, b = _SLOT.unpack_from(self._counters, part * _SLOT.size)
            files += f
            nbytes += b
        return files, nbytes

    def run_helper(self, work: Callable[[], dict[str, Any]]) -> NoReturn:
        """Run a helper's ``work`` (which returns its summary as a dict), send the
        summary, and end the process without returning: nothing of the caller's stack
        (its locks, its open repository) is run or released twice."""
        code = 0
        try:
            message: dict[str, Any] = {"summary": work()}
        except KeyboardInterrupt:
            message, code = {"error": "interrupted"}, 130
        except BaseException as e:  # reported by the first process
            message, code = {"error": f"{type(e).__name__}: {e}"}, 1
        try:
            data = msgpack.packb(message, use_bin_type=True, default=str)
            view = memoryview(data)
            while view:
                view = view[os.write(self._write_fd, view) :]
        finally:
            os._exit(code)

    def wait(self, progress: Progress) -> list[dict[str, Any]]:
        """Wait for every helper (reporting progress meanwhile) and return their
        summaries; RepositoryError naming the first helper that failed."""
        received: dict[int, list[bytes]] = {part: [] for part in self._children}
        while self._children:
            by_fd = {fd: part for part, (_pid, fd) in self._children.items()}
            timeout = progress.interval if progress.wanted else None
            ready, _, _ = select.select(list(by_fd), [], [], timeout)
            for fd in ready:
                part = by_fd[fd]
                chunk = os.read(fd, 1 << 16)
                if chunk:
                    received[part].append(chunk)
                    continue
                pid, _ = self._children.pop(part)
                os.close(fd)
                os.waitpid(pid, 0)
            progress.add()  # reports when due, with the helpers' counts
        summaries = []
        for part in sorted(received):
            try:
                message = msgpack.unpackb(b"".join(received[part]), raw=False)
            except ValueError:
                message = {}
            if not isinstance(message, dict) or "summary" not in message:
                error = message.get("error") if isinstance(message, dict) else None
                raise RepositoryError(
                    f"restore process {part + 1} of {self.size} failed: "
                    f"{error or 'it ended without a summary'}"
                )
            summaries.append(message["summary"])
        return summaries

    def stop(self) -> None:
        """Stop the helpers still running (after a failure of this process) and reap
        them; they remove their temporary files on the way out."""
        for pid, fd in self._children.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            os.close(fd)
        self._children = {}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class _HelperProgress(Progress):
    """A helper's progress: counts into its slot of the shared counters."""

    def __init__(self, counters: mmap.mmap, part: int, stream: Any) -> None:
        super().__init__("restore", stream=stream, quiet=True)
        self._counters = counters
        self._offset = part * _SLOT.size

    def add(self, files: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self.files += files
            self.bytes += nbytes
            _SLOT.pack_into(self._counters, self._offset, self.files, self.bytes)

    def report(self) -> None:
        """Helpers do not report; the first process does."""

    def file_error(self, path: str, error: str) -> None:
        """Counted only: the first process reports the helper's errors from its summary."""
        self.errors += 1

"""Progress reporting for backup and restore: a terminal line, JSON status lines, hooks.

A :class:`Progress` receives counters from the engine (files and bytes done, and totals
when known) and reports them, at most every :attr:`Progress.interval` seconds:

* on a terminal, as one line redrawn in place: files, bytes, rate and, when the total is
  known, percent and ETA; nothing at all when the stream is not a terminal (a pipe, a file);
* with ``json_stream`` set, as one JSON object per line: ``{"message_type": "status", ...}``;
* always, through the ``pannier_backup_progress`` / ``pannier_restore_progress`` hooks.

The engine also reports unreadable files through :meth:`Progress.file_error`, which calls
the ``pannier_file_error`` hook and prints a warning line.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from ..terminal import escape_text

__all__ = ["Progress", "call_hook", "format_bytes", "format_duration"]


def call_hook(name: str, **kwargs: Any) -> None:
    """Call the hook ``name`` with ``kwargs``; a failing implementation never stops the
    engine (the hook manager records it and warns once)."""
    try:
        from ..hooks import call_hook as _call
    except ImportError:  # the hook machinery is optional for the engine
        return
    _call(name, **kwargs)


def format_bytes(n: float) -> str:
    """``1536`` -> ``"1.500 KiB"`` (binary units, as restic prints them)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3f} {unit}"
        n /= 1024
    return f"{n:.3f} TiB"  # pragma: no cover


def format_duration(seconds: float) -> str:
    """``3725`` -> ``"1:02:05"``; ``65`` -> ``"1:05"``."""
    s = max(0, int(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Counters of one backup or restore, and their reporting.

    :param action: ``"backup"`` or ``"restore"`` (names the hooks called).
    :param stream: where the terminal line goes (stderr); drawn only if it is a TTY.
    :param json_stream: where JSON status lines go, or None.
    :param quiet: draw no terminal line.
    """

    interval = 0.5

    def __init__(
        self,
        action: str,
        *,
        stream: IO[str] | None = None,
        json_stream: IO[str] | None = None,
        quiet: bool = False,
    ) -> None:
        self.action = action
        self.stream = stream if stream is not None else sys.stderr
        self.tty = not quiet and bool(getattr(self.stream, "isatty", lambda: False)())
        self.json_stream = json_stream
        self.files = 0
        self.bytes = 0
        self.errors = 0
        self.total_files: int | None = None
        self.total_bytes: int | None = None
        self.started = time.monotonic()
        self._last = 0.0
        self._drawn = False
        self._lock = threading.Lock()
        self._out_lock = threading.RLock()
        #: Counts done elsewhere (other restore processes), added to the reported ones.
        self.others: Callable[[], tuple[int, int]] | None = None

    @property
    def wanted(self) -> bool:
        """True when someone looks at the progress (a terminal or JSON lines), so that
        computing totals is worth it."""
        return self.tty or self.json_stream is not None

    def set_total(self, files: int, nbytes: int) -> None:
        """Record the totals (from a counting pass); enables percent and ETA."""
        self.total_files, self.total_bytes = files, nbytes

    def add(self, files: int = 0, nbytes: int = 0) -> None:
        """Count ``files`` more files and ``nbytes`` more bytes done; report if due.
        Thread-safe (restore workers call it)."""
        with self._lock:
            self.files += files
            self.bytes += nbytes
            now = time.monotonic()
            due = now - self._last >= self.interval
            if due:
                self._last = now
        if due:
            self.report()

    def snapshot(self) -> dict[str, Any]:
        """The counters as a dict (what status lines and hooks get)."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        files, nbytes = self.others() if self.others is not None else (0, 0)
        files += self.files
        nbytes += self.bytes
        rate = nbytes / elapsed
        out: dict[str, Any] = {
            "action": self.action,
            "files_done": files,
            "bytes_done": nbytes,
            "seconds_elapsed": round(elapsed, 3),
            "bytes_per_second": round(rate),
            "errors": self.errors,
        }
        if self.total_bytes is not None and self.total_files is not None:
            out["total_files"] = self.total_files
            out["total_bytes"] = self.total_bytes
            done = min(nbytes / self.total_bytes, 1.0) if self.total_bytes else 1.0
            out["percent_done"] = round(done * 100, 1)
            if rate > 0 and self.total_bytes >= nbytes:
                out["seconds_remaining"] = round((self.total_bytes - nbytes) / rate)
        return out

    def report(self) -> None:
        """Report the counters now (terminal line, JSON status line, progress hook)."""
        state = self.snapshot()
        call_hook(f"pannier_{self.action}_progress", progress=state)
        with self._out_lock:  # worker threads report too: one line at a time
            if self.json_stream is not None:
                line = json.dumps({"message_type": "status", **state}, sort_keys=True)
                print(line, file=self.json_stream, flush=True)
            if self.tty:
                self._draw(state)

    def _draw(self, state: dict[str, Any]) -> None:
        text = (
            f"[{format_duration(state['seconds_elapsed'])}] {state['files_done']} files, "
            f"{format_bytes(state['bytes_done'])}, "
            f"{format_bytes(state['bytes_per_second'])}/s"
        )
        if "percent_done" in state:
            text += f", {state['percent_done']:.1f}% of {format_bytes(state['total_bytes'])}"
        if "seconds_remaining" in state:
            text += f", ETA {format_duration(state['seconds_remaining'])}"
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()
        self._drawn = True

    def file_error(self, path: str, error: str) -> None:
        """Report a file that could not be read or written; the operation goes on."""
        self.errors += 1
        call_hook("pannier_file_error", path=path, error=error)
        with self._out_lock:
            self.clear()
            print(f"pannier: warning: {escape_text(f'{path}: {error}')}", file=self.stream)
            if self.json_stream is not None:
                line = json.dumps({"message_type": "error", "path": path, "error": error})
                print(line, file=self.json_stream, flush=True)

    def clear(self) -> None:
        """Erase the terminal line (before printing something else)."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    def finish(self) -> None:
        """Report a last time and erase the terminal line."""
        if self.json_stream is not None or self.tty:
            self.report()
        self.clear()

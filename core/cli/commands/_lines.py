"""Printing lines that hold file names, which need not be valid UTF-8.

Snapshot paths are decoded with ``surrogateescape``; printed raw they could fail on a
strict UTF-8 stream or drive the terminal. :class:`LineWriter` escapes what is not
printable (:mod:`pannier.terminal`) and writes the lines, buffered, to the binary buffer
under stdout (or to stdout itself when it has none).
"""

from __future__ import annotations

from types import TracebackType

from ...terminal import escape_text
from ..context import CLIContext

__all__ = ["LineWriter"]


class LineWriter:
    """Write result lines with raw file-name bytes to the command's stdout.

    Use as a context manager; lines are buffered and flushed at the end.
    """

    def __init__(self, ctx: CLIContext) -> None:
        self._ctx = ctx
        self._buffer = getattr(ctx.stdout, "buffer", None)

    def __enter__(self) -> LineWriter:
        self._ctx.stdout.flush()  # what was printed as text comes first
        return self

    def line(self, text: str) -> None:
        """Write ``text`` and a newline, with characters that are not printable escaped
        (:func:`pannier.terminal.escape_text`)."""
        text = escape_text(text)
        if self._buffer is None:
            raw = text.encode("utf-8", "surrogateescape")
            self._ctx.out(raw.decode("utf-8", "backslashreplace"))
        else:
            self._buffer.write(text.encode("utf-8", "surrogateescape") + b"\n")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._buffer is not None:
            self._buffer.flush()

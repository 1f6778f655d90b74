"""What a command gets besides its arguments: output helpers and the plugin set-up."""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Any

from ..terminal import escape_text

__all__ = ["CLIContext"]


class CLIContext:
    """Output channels and options shared by every command.

    :ivar json: the user asked for JSON on stdout.
    :ivar disabled_plugins: names from ``--disable-plugin``.
    :ivar tty: stderr is a terminal (progress lines are shown only then).
    """

    def __init__(
        self,
        *,
        json_output: bool = False,
        verbose: int = 0,
        quiet: bool = False,
        disabled_plugins: tuple[str, ...] = (),
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ) -> None:
        self.json = json_output
        self.verbose = verbose
        self.quiet = quiet
        self.disabled_plugins = disabled_plugins
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.tty = bool(getattr(self.stderr, "isatty", lambda: False)())
        self._closers: list[Any] = []

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CLIContext:
        return cls(
            json_output=bool(args.json),
            verbose=int(args.verbose),
            quiet=bool(args.quiet),
            disabled_plugins=tuple(args.disable_plugin or ()),
        )

    def out(self, text: str = "") -> None:
        """Write a result line to stdout (characters that are not printable escaped:
        :mod:`pannier.terminal`)."""
        print(escape_text(text, keep_newlines=True), file=self.stdout)

    def out_json(self, obj: Any) -> None:
        """Write one JSON document (one line) to stdout."""
        print(json.dumps(obj, sort_keys=True, default=str), file=self.stdout, flush=True)

    def info(self, text: str) -> None:
        """Write a note to stderr unless ``--quiet``."""
        if not self.quiet:
            print(escape_text(text, keep_newlines=True), file=self.stderr)

    def warn(self, text: str) -> None:
        """Write a warning line to stderr."""
        print(f"pannier: warning: {escape_text(text)}", file=self.stderr)

    def error(self, text: str) -> None:
        """Write an error line to stderr."""
        print(f"pannier: error: {escape_text(text)}", file=self.stderr)

    def on_close(self, closer: Any) -> None:
        """Call ``closer()`` when the command ends."""
        self._closers.append(closer)

    def close(self) -> None:
        while self._closers:
            try:
                self._closers.pop()()
            except Exception as e:  # closing must not mask the result
                self.warn(f"while closing: {e}")

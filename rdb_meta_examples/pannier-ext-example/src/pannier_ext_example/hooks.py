"""The ``ext-example`` hook plugin: one command, and a note when a backup ends."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pannier import hookimpl

from . import __version__


@hookimpl
def pannier_register_commands(subparsers: Any, parents: list[Any]) -> None:
    """Add ``pannier ext-example``, which prints a greeting and the extension's version."""
    parser = subparsers.add_parser(
        "ext-example", parents=parents, help="say hello from pannier-ext-example"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace, ctx: Any) -> int:
    message = f"hello from pannier-ext-example {__version__}"
    if getattr(ctx, "json", False):
        ctx.out_json({"message": message})
    else:
        ctx.out(message)
    return 0


@hookimpl
def pannier_backup_end(summary: dict[str, Any]) -> None:
    """Note on stderr (stdout may carry JSON) that a backup ended."""
    print(
        f"pannier-ext-example: backup ended ({summary.get('snapshot_id', '?')})",
        file=sys.stderr,
    )

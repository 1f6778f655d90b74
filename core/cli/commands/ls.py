"""``pannier ls SNAPSHOT [PATH]``: list the entries of a snapshot."""

from __future__ import annotations

import argparse
import datetime
import os
import stat
from typing import Any

from ...errors import EXIT_OK, ConfigError
from ...terminal import escape_name
from ..context import CLIContext
from ..repo_options import add_repo_options, open_repository
from ._lines import LineWriter
from .snapshots import add_filter_options

_KIND_NAMES = {
    "f": "file",
    "d": "dir",
    "l": "symlink",
    "h": "hardlink",
    "p": "fifo",
    "c": "chardev",
    "b": "blockdev",
}


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``ls`` command."""
    p = subparsers.add_parser(
        "ls",
        parents=parents,
        help="list the files of a snapshot",
        description="List every entry of SNAPSHOT below PATH (default: everything), one "
        "path per line; -l adds mode, owner, size and time; --json prints one JSON object "
        "per entry. Characters that are not printable are shown escaped (\\xHH for a "
        "control character or a byte that is not UTF-8, \\uHHHH for others) and a "
        "backslash is doubled.",
    )
    add_repo_options(p)
    p.add_argument("snapshot", metavar="SNAPSHOT", help="snapshot id, prefix, or 'latest'")
    p.add_argument("path", nargs="?", default="/", metavar="PATH", help="a path in the snapshot")
    p.add_argument("-l", "--long", action="store_true", help="long listing")
    add_filter_options(p)
    p.set_defaults(func=run)


def entry_json(entry: Any) -> dict[str, Any]:
    """One tree entry as ``ls --json`` prints it."""
    out: dict[str, Any] = {
        "path": entry.path,
        "type": _KIND_NAMES.get(entry.kind, entry.kind),
        "mode": stat.S_IMODE(entry.mode),
        "uid": entry.uid,
        "gid": entry.gid,
        "size": entry.size,
        "mtime_ns": entry.mtime_ns,
    }
    if entry.kind == "l":
        out["link_target"] = os.fsdecode(bytes(entry.data or b""))
    elif entry.kind == "h":
        from ...source import index_to_path

        out["link_target"] = index_to_path(tuple(entry.data))
    return out


def run(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Print the listing."""
    from ...engine.snapshots import load_tree, resolve_snapshot
    from ...source import path_to_index

    prefix = path_to_index(args.path)
    repo = open_repository(args, ctx, lock="shared")
    snap = resolve_snapshot(
        repo,
        args.snapshot,
        hosts=args.host,
        tags=args.tag,
        paths=args.path_filter,
        warn=ctx.warn,
    )
    found = False
    with LineWriter(ctx) as out:
        for entry in load_tree(repo, snap):
            if entry.index[: len(prefix)] != prefix:
                if found and entry.index > prefix:
                    break
                continue
            found = True
            if ctx.json:
                ctx.out_json({"message_type": "node", **entry_json(entry)})
            elif args.long:
                mode = stat.filemode(entry.mode)
                when = datetime.datetime.fromtimestamp(entry.mtime_ns / 1e9).strftime(
                    "%Y-%m-%d %H:%M:%S"
                )
                path = escape_name(entry.path)
                line = f"{mode} {entry.uid:>5} {entry.gid:>5} {entry.size:>12} {when} {path}"
                if entry.kind == "l":
                    line += f" -> {escape_name(os.fsdecode(bytes(entry.data or b'')))}"
                out.line(line)
            else:
                out.line(escape_name(entry.path))
    if not found:
        raise ConfigError(f"no {args.path!r} in snapshot {snap.short_id}")
    return EXIT_OK

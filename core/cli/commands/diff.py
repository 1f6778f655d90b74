"""``pannier diff SNAP1 SNAP2``: what changed between two snapshots."""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import EXIT_OK
from ...terminal import escape_name
from ..context import CLIContext
from ..repo_options import add_repo_options, open_repository
from ._lines import LineWriter


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``diff`` command."""
    p = subparsers.add_parser(
        "diff",
        parents=parents,
        help="show what changed between two snapshots",
        description="List entries added (+), removed (-), changed in content (M), in type "
        "(T) or only in metadata (U: mode, owner, mtime, xattrs, ACLs) from SNAP1 to SNAP2, "
        "then a count of each. Names are shown escaped like in 'pannier ls'.",
    )
    add_repo_options(p)
    p.add_argument("first", metavar="SNAP1", help="snapshot id, prefix, or 'latest'")
    p.add_argument("second", metavar="SNAP2", help="snapshot id, prefix, or 'latest'")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Print one line per change and the counts (or JSON lines)."""
    from ...engine.diff import diff_snapshots
    from ...engine.progress import format_bytes
    from ...engine.snapshots import resolve_snapshot

    repo = open_repository(args, ctx, lock="shared")
    a = resolve_snapshot(repo, args.first)
    b = resolve_snapshot(repo, args.second)
    counts = {"+": 0, "-": 0, "M": 0, "T": 0, "U": 0}
    added = removed = 0
    with LineWriter(ctx) as out:
        for change in diff_snapshots(repo, a, b):
            counts[change.kind] += 1
            if change.new is not None and change.kind in "+MT" and change.new.kind == "f":
                added += change.new.size
            if change.old is not None and change.kind in "-MT" and change.old.kind == "f":
                removed += change.old.size
            if ctx.json:
                ctx.out_json(
                    {"message_type": "change", "modifier": change.kind, "path": change.path}
                )
            else:
                out.line(f"{change.kind}    {escape_name(change.path)}")
    summary = {
        "added": counts["+"],
        "removed": counts["-"],
        "modified": counts["M"],
        "type_changed": counts["T"],
        "metadata_changed": counts["U"],
        "bytes_added": added,
        "bytes_removed": removed,
    }
    if ctx.json:
        ctx.out_json({"message_type": "summary", "first": a.id, "second": b.id, **summary})
    else:
        ctx.out("")
        ctx.out(
            f"{summary['added']} added, {summary['removed']} removed, {summary['modified']} "
            f"modified, {summary['type_changed']} changed type, {summary['metadata_changed']} "
            f"changed metadata; files' content: +{format_bytes(added)} -{format_bytes(removed)}"
        )
    return EXIT_OK

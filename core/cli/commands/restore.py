"""``pannier restore SNAPSHOT --target DIR``: restore a snapshot into a directory."""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import EXIT_FAILURE, EXIT_OK
from ..context import CLIContext
from ..repo_options import add_repo_options, open_repository
from .snapshots import add_filter_options


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``restore`` command."""
    p = subparsers.add_parser(
        "restore",
        parents=parents,
        help="restore a snapshot into a directory",
        description="Restore SNAPSHOT (an id, a unique prefix of one, or 'latest') into "
        "the directory --target. Each file is written to a temporary name and renamed; "
        "over an existing tree (--overwrite) only what differs is written. Files that "
        "cannot be restored are reported and the exit code is 1; the others restore.",
    )
    add_repo_options(p)
    p.add_argument("snapshot", metavar="SNAPSHOT", help="snapshot id, prefix, or 'latest'")
    p.add_argument("-t", "--target", required=True, metavar="DIR", help="directory to restore into")
    p.add_argument(
        "-i",
        "--include",
        action="append",
        default=[],
        metavar="PATH",
        help="restore only PATH (a path in the snapshot) and what is below it (repeatable)",
    )
    p.add_argument(
        "-e",
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="do not restore entries matching the glob PATTERN (a name, or a snapshot path "
        "when it has a '/'), nor what is below them (repeatable)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="restore into a non-empty target, replacing files that differ",
    )
    p.add_argument(
        "--processes",
        type=_positive,
        metavar="N",
        help="processes writing files at once into an empty target (default: one per CPU, "
        "at most 4, from a local repository; 1 otherwise)",
    )
    add_filter_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Restore and print a summary."""
    from ...engine.progress import Progress, format_bytes
    from ...engine.restore import RestoreOptions, check_target, run_restore
    from ...engine.snapshots import resolve_snapshot

    check_target(args.target, args.overwrite)
    repo = open_repository(args, ctx, lock="shared")
    snap = resolve_snapshot(
        repo,
        args.snapshot,
        hosts=args.host,
        tags=args.tag,
        paths=args.path_filter,
        warn=ctx.warn,
    )
    progress = Progress(
        "restore", stream=ctx.stderr, json_stream=ctx.stdout if ctx.json else None, quiet=ctx.quiet
    )
    opts = RestoreOptions(
        include=list(args.include),
        exclude=list(args.exclude),
        overwrite=args.overwrite,
        processes=args.processes,
    )
    summary = run_restore(repo, snap, args.target, opts, progress=progress)
    if ctx.json:
        ctx.out_json({"message_type": "summary", **summary.as_dict()})
    elif not ctx.quiet:
        s = summary
        ctx.out(
            f"restored snapshot {snap.short_id} to {args.target}: {s.files_restored} files "
            f"written ({format_bytes(s.bytes_written)}), {s.files_unchanged} unchanged, "
            f"{s.dirs} dirs, {s.links} hard links, {s.others} other entries in {s.seconds:.1f}s"
        )
    for name in summary.missing_meta_streams:
        ctx.warn(f"metadata stream {name} not applied: no plugin for it is installed")
    for name in summary.unsupported_meta_streams:
        ctx.warn(f"metadata stream {name} not applied: the target filesystem does not support it")
    if summary.errors:
        ctx.error(f"{len(summary.errors)} entries could not be restored")
        return EXIT_FAILURE
    return EXIT_OK


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value

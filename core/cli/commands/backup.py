"""``pannier backup SRC...``: back up sources into the repository as a new snapshot."""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import EXIT_OK, EXIT_PARTIAL, ConfigError
from ..context import CLIContext
from ..repo_options import add_repo_options, open_repository


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``backup`` command."""
    p = subparsers.add_parser(
        "backup",
        parents=parents,
        help="back up files, a database or a command's output as a new snapshot",
        description="Back up SRC (directories or files by default; a SQLite database with "
        "--source sqlite; a command's output with --source command) into the repository. "
        "Files unchanged since the parent snapshot (same size, mtime, ctime and inode) "
        "are not read again. Exit code 3: the snapshot was saved but some files could "
        "not be read.",
    )
    add_repo_options(p)
    p.add_argument("sources", nargs="+", metavar="SRC", help="what to back up")
    p.add_argument(
        "--source",
        default="filesystem",
        metavar="KIND",
        help="the source plugin: filesystem (default), sqlite, command, or any installed",
    )
    p.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="tag the snapshot (repeatable)"
    )
    p.add_argument(
        "--host", default=None, metavar="NAME", help="host name to record (default: this machine)"
    )
    p.add_argument(
        "--parent",
        default=None,
        metavar="SNAPSHOT",
        help="compare with this snapshot (default: the latest of the same host and paths)",
    )
    p.add_argument("--force", action="store_true", help="read every file (no parent snapshot)")
    p.add_argument(
        "-n",
        "--dry-run",
        action="store_true",
        help="only say what would be read and stored: read no content, write nothing",
    )
    p.add_argument(
        "-e",
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="exclude names or paths matching the glob PATTERN (repeatable)",
    )
    p.add_argument(
        "--exclude-file",
        action="append",
        default=[],
        metavar="FILE",
        help="read exclude patterns from FILE, one per line (repeatable)",
    )
    p.add_argument(
        "--exclude-if-present",
        action="append",
        default=[],
        metavar="NAME",
        help="exclude directories that contain a file NAME (repeatable)",
    )
    p.add_argument(
        "-x",
        "--one-file-system",
        action="store_true",
        help="do not cross filesystem boundaries",
    )
    p.add_argument(
        "--reread-probability",
        type=float,
        default=0.001,
        metavar="P",
        help="chance that an unchanged file is read anyway (default 0.001; 0 never, 1 always)",
    )
    p.add_argument(
        "--filename",
        default=None,
        metavar="NAME",
        help="name of the stored file for the sqlite and command sources",
    )
    p.add_argument(
        "--source-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option for the source plugin (repeatable)",
    )
    p.set_defaults(func=run)


def _source_options(args: argparse.Namespace) -> dict[str, Any]:
    extra: dict[str, str] = {}
    for item in args.source_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--source-option {item!r} is not KEY=VALUE")
        extra[key] = value
    return {
        "exclude": list(args.exclude),
        "exclude_file": list(args.exclude_file),
        "exclude_if_present": list(args.exclude_if_present),
        "one_file_system": bool(args.one_file_system),
        "filename": args.filename,
        "source_options": extra,
    }


def run(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Run the backup; print the summary (or one JSON summary line)."""
    from ...engine.backup import BackupOptions, run_backup
    from ...engine.entries import ScanAhead
    from ...engine.progress import Progress, format_bytes
    from ...plugin import PluginKind
    from ...registry import get_plugin_manager

    if not 0.0 <= args.reread_probability <= 1.0:
        raise ConfigError("--reread-probability must be between 0 and 1")
    source_class = get_plugin_manager().get(PluginKind.SOURCE, args.source)
    options = _source_options(args)
    if args.source != "filesystem" and len(args.sources) > 1:
        raise ConfigError(f"the {args.source} source takes one SRC, not {len(args.sources)}")
    sources = [source_class(spec, options) for spec in args.sources]
    # the walk of a directory overlaps the key derivation and the index loading
    ahead = ScanAhead(sources) if ScanAhead.wanted(sources) else None
    try:
        repo = open_repository(args, ctx, lock="shared")
    except BaseException:
        if ahead is not None:
            ahead.close()
        raise
    progress = Progress(
        "backup", stream=ctx.stderr, json_stream=ctx.stdout if ctx.json else None, quiet=ctx.quiet
    )
    opts = BackupOptions(
        tags=list(args.tag),
        hostname=args.host,
        parent="" if args.force else args.parent,
        reread_probability=args.reread_probability,
        dry_run=args.dry_run,
    )
    try:
        summary = run_backup(repo, sources, opts, progress=progress, scan_ahead=ahead)
    finally:
        for s in sources:
            s.close()
    if ctx.json:
        ctx.out_json({"message_type": "summary", **summary.as_dict()})
    elif not ctx.quiet:
        s = summary
        ctx.out(
            f"Files: {s.files_new} new, {s.files_changed} changed, {s.files_unchanged} unchanged"
        )
        ctx.out(f"Dirs: {s.dirs}, other entries: {s.others}")
        if s.files_reread:
            ctx.out(
                f"Re-read unchanged files: {s.files_reread} ({s.files_reread_changed} had changed)"
            )
        if args.dry_run:
            ctx.out(f"Would read {format_bytes(s.bytes_read)} of {format_bytes(s.total_bytes)}")
        else:
            ctx.out(
                f"Added to the repository: {format_bytes(s.bytes_added)} "
                f"(read {format_bytes(s.bytes_read)} of {format_bytes(s.total_bytes)})"
            )
        ctx.out(f"processed {s.total_files} files in {s.seconds:.1f}s")
        if s.snapshot_id is None:
            ctx.out("dry run: nothing was read or stored, no snapshot was written")
        else:
            ctx.out(f"snapshot {s.snapshot_id[:8]} saved")
    if summary.warnings:
        ctx.warn(f"{len(summary.warnings)} files could not be read; the snapshot lacks them")
        return EXIT_PARTIAL
    return EXIT_OK

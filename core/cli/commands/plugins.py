"""``pannier plugins``: list every plugin with its origin, status and error.

By default every enabled plugin is imported and checked, so a broken one shows as
``failed`` with a one-line reason; ``--no-load`` lists what discovery found without
importing anything. The exit status is 0 even when plugins failed, except in strict mode
(``--strict-plugins`` or ``PANNIER_STRICT_PLUGINS=1``), where any failure exits 1.
"""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import EXIT_FAILURE, EXIT_OK
from ...plugin import PluginKind
from ..context import CLIContext

__all__ = ["register", "run"]

_COLUMNS = ("NAME", "KIND", "ORIGIN", "DISTRIBUTION", "FILE", "STATUS", "ERROR")


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``plugins`` sub-command."""
    parser = subparsers.add_parser(
        "plugins",
        parents=parents,
        help="list plugins: name, kind, origin, distribution, file, status, error",
        description=(
            "List every plugin found (backends, metadata plugins, sources, hooks) with "
            "where it comes from and whether it loads. Exit status 0 even when some "
            "plugin failed, unless --strict-plugins is given. PANNIER_LOAD_PLUGINS "
            "(built-ins plus the names listed; empty: built-ins only), "
            "PANNIER_DISABLE_PLUGINS and PANNIER_TRACE_PLUGINS=1 control and trace "
            "loading; see docs/plugins.md."
        ),
    )
    parser.add_argument(
        "--kind",
        choices=[k.value for k in PluginKind],
        help="list only plugins of this kind",
    )
    parser.add_argument(
        "--no-load",
        action="store_true",
        help="do not import plugins: list what discovery found (status 'available')",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: CLIContext) -> int:
    """List the plugins; return 1 in strict mode when any failed, else 0."""
    from ...registry import get_plugin_manager

    manager = get_plugin_manager()
    for name in ctx.disabled_plugins:
        manager.disable(name)
    kinds = [PluginKind(args.kind)] if args.kind else list(PluginKind)
    if not args.no_load:
        # Never load strictly here: the listing shows every failure, and strict mode only
        # turns them into the exit status at the end.
        strict, manager.strict = manager.strict, False
        try:
            if PluginKind.HOOK not in kinds:
                manager.hooks  # noqa: B018 - registration hooks may add plugins of any kind
            for kind in kinds:
                manager.load_all(kind, strict=False)
            if PluginKind.META in kinds:
                from ...meta_manager import check_meta_plugins

                check_meta_plugins(manager)  # a second main plugin, a prefix used twice
        finally:
            manager.strict = strict
    records = [r for kind in kinds for r in manager.records(kind)]
    if ctx.json:
        ctx.out_json([_as_json(manager, r) for r in records])
    else:
        _print_table(ctx, records)
    failed = [r for r in records if r.status == "failed"]
    if failed and (manager.strict or getattr(args, "strict_plugins", False)):
        names = ", ".join(f"{r.kind.value}:{r.name}" for r in failed)
        ctx.error(f"{len(failed)} plugin(s) failed to load (strict mode): {names}")
        return EXIT_FAILURE
    return EXIT_OK


def _as_json(manager: Any, record: Any) -> dict[str, Any]:
    data: dict[str, Any] = record.as_dict()
    data["hooks"] = None
    if record.kind is PluginKind.HOOK and record.status == "loaded":
        from ...hooks import implemented_hooks

        data["hooks"] = implemented_hooks(manager.hooks, record.name)
    return data


def _print_table(ctx: CLIContext, records: list[Any]) -> None:
    rows = [_COLUMNS]
    for r in records:
        origin = r.origin
        dist = " ".join(p for p in (origin.distribution, origin.version) if p) or "-"
        channel = "built-in" if r.builtin else origin.channel
        note = (r.reason if r.status in ("shadowed", "disabled") else r.error) or ""
        rows.append((r.name, r.kind.value, channel, dist, origin.file or "-", r.status, note))
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        ctx.out("  ".join([*cells, row[-1]]).rstrip())
    if len(rows) == 1:
        ctx.info("no plugins found")

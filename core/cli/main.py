"""Parse the command line, set up plugins, run one command, map errors to exit codes.

A command module in ``pannier.cli.commands`` defines::

    def register(subparsers, parents) -> None
        # add one or more sub-commands with subparsers.add_parser(..., parents=parents)
        # and set_defaults(func=run) where run(args, ctx) -> int

Results go to stdout, errors to stderr as one line ``pannier: error: ...``; ``--json``
asks commands for machine-readable output.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from ..errors import EXIT_FAILURE, EXIT_USAGE, PannierError
from .context import CLIContext

__all__ = ["build_parser", "main"]


def _global_options(*, for_command: bool = False) -> argparse.ArgumentParser:
    # A command's copy leaves an option unset unless given after the command name, so
    # `pannier --json plugins` keeps the --json given before it.
    def default(value: object) -> object:
        return argparse.SUPPRESS if for_command else value

    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("global options")
    g.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print machine-readable JSON to stdout",
    )
    g.add_argument(
        "--strict-plugins",
        action="store_true",
        default=default(None),
        help="fail when any plugin fails to load (also PANNIER_STRICT_PLUGINS=1)",
    )
    g.add_argument(
        "--disable-plugin",
        action="append",
        default=default([]),
        metavar="NAME",
        help="do not load the plugin NAME (repeatable)",
    )
    g.add_argument("-v", "--verbose", action="count", default=default(0), help="say more")
    g.add_argument(
        "-q", "--quiet", action="store_true", default=default(False), help="say only errors"
    )
    return common


def _command_modules() -> list[str]:
    from . import commands

    return sorted(
        m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command module's sub-commands."""
    from .. import __version__

    common = _global_options()
    parser = argparse.ArgumentParser(
        prog="pannier",
        description="Deduplicating, compressing, encrypting backups on any storage.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"pannier {__version__}")
    # restic style: the repository may also come before the command (`pannier -r URL ls`).
    # Their own dests, so that a sub-command's defaults cannot overwrite them.
    parser.add_argument(
        "-r", "--repo", dest="global_repo", metavar="URL", help="repository URL (any command)"
    )
    parser.add_argument(
        "--password-file",
        dest="global_password_file",
        metavar="FILE",
        help="read the repository password from FILE (any command)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _global_options(for_command=True)
    for name in _command_modules():
        module = importlib.import_module(f"pannier.cli.commands.{name}")
        module.register(subparsers, [common])
    try:
        from ..hooks import get_hook_manager

        get_hook_manager().hook.pannier_register_commands(subparsers=subparsers, parents=[common])
    except ImportError:  # pragma: no cover - hooks module absent in a partial install
        pass
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
    except PannierError as e:
        print(f"pannier: error: {e}", file=sys.stderr)
        return e.exit_code
    except SystemExit as e:  # argparse: --help, --version, usage errors
        return int(e.code or 0) if isinstance(e.code, int) else EXIT_USAGE
    for name in ("repo", "password_file"):
        given = getattr(args, f"global_{name}", None)
        if given and not getattr(args, name, None):
            setattr(args, name, given)
    if args.strict_plugins:
        os.environ["PANNIER_STRICT_PLUGINS"] = "1"
    from ..registry import get_plugin_manager

    plugin_manager = get_plugin_manager()  # built by build_parser before the options were known
    plugin_manager.strict = plugin_manager.strict or bool(args.strict_plugins)
    for name in args.disable_plugin or ():
        plugin_manager.disable(name)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    ctx = CLIContext.from_args(args)
    try:
        return int(args.func(args, ctx))
    except PannierError as e:
        ctx.error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        ctx.error("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_FAILURE
    finally:
        ctx.close()

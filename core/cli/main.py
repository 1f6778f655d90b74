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
import signal
import sys
import threading
from collections.abc import Sequence

from ..errors import EXIT_FAILURE, EXIT_USAGE, PannierError
from ..terminal import escape_text
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


# Global options that take a value: skipped when looking for the command name.
_OPTIONS_WITH_VALUE = frozenset({"-r", "--repo", "--password-file", "--disable-plugin"})


def _command_named(args: Sequence[str], modules: Sequence[str]) -> str | None:
    """The command module the arguments ask for, if the first positional argument names
    one; None otherwise (no command, --help, or a command added by a hook)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--":
            return None
        elif arg.startswith("-"):
            skip = arg in _OPTIONS_WITH_VALUE
        else:
            return arg if arg in modules else None
    return None


def build_parser(args: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser. Given the arguments, it holds only the sub-command they name
    when a built-in command module provides it (start-up then imports nothing else);
    otherwise every command module's sub-commands and those added by hooks."""
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
    modules = _command_modules()
    wanted = _command_named(args, modules) if args is not None else None
    for name in [wanted] if wanted else modules:
        module = importlib.import_module(f"pannier.cli.commands.{name}")
        module.register(subparsers, [common])
    if wanted:
        return parser
    try:
        from ..hooks import get_hook_manager

        get_hook_manager().hook.pannier_register_commands(subparsers=subparsers, parents=[common])
    except ImportError:  # pragma: no cover - hooks module absent in a partial install
        pass
    return parser


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM, so that a terminated
    command cleans up as an interrupted one does (locks released, temporary files
    removed, nothing half-written left under a real name)."""


def _raise_terminated(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the clean-up
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(args_list)
        args = parser.parse_args(args_list)
    except PannierError as e:
        print(f"pannier: error: {escape_text(str(e))}", file=sys.stderr)
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
    previous_handler = None
    if threading.current_thread() is threading.main_thread():
        previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return int(args.func(args, ctx))
    except PannierError as e:
        ctx.error(str(e))
        return e.exit_code
    except Terminated:
        ctx.error("terminated")
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        ctx.error("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_FAILURE
    finally:
        ctx.close()
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)

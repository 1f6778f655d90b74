"""The hooks pannier calls: the reference for hook-plugin authors.

A hook plugin is a module (or any object) whose functions are marked with
:data:`pannier.hookimpl` and named after the hooks below; it is published in the
``pannier.hooks`` entry-point group of its distribution::

    # pyproject.toml
    [project.entry-points."pannier.hooks"]
    notify = "pannier_notify"

    # pannier_notify.py
    from pannier import hookimpl

    @hookimpl
    def pannier_backup_end(summary):
        print("backup done:", summary["snapshot_id"])

An implementation may accept any subset of a hook's keyword arguments, in any order.
Every hook here is called for all implementations and their return values are ignored
unless the hook says otherwise. An implementation that raises is recorded on its plugin
(``pannier plugins`` shows it), warned about once, and skipped; the other implementations
still run, and the backup or restore goes on. Set ``PANNIER_TRACE_PLUGINS=1`` to see every
hook call on stderr.

The dictionaries passed to the progress and lifecycle hooks are plain JSON-ready data
(strings, numbers, lists, dicts); the keys documented are always present, and more may be
added in later versions of the same plugin API.
"""

from __future__ import annotations

from typing import Any

import pluggy

__all__ = [
    "PROJECT_NAME",
    "hookspec",
    "pannier_backup_end",
    "pannier_backup_progress",
    "pannier_backup_start",
    "pannier_file_error",
    "pannier_register_commands",
    "pannier_register_plugins",
    "pannier_restore_end",
    "pannier_restore_progress",
    "pannier_restore_start",
    "pannier_snapshot_saved",
]

#: The pluggy project name of pannier's hooks.
PROJECT_NAME = "pannier"

#: The marker of a hook specification (used only in this module).
hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def pannier_register_commands(subparsers: Any, parents: list[Any]) -> None:
    """Add sub-commands to the ``pannier`` command line.

    Called once when the command line is built, before the arguments are parsed.

    :param subparsers: the :mod:`argparse` sub-parsers action; add a command with
        ``p = subparsers.add_parser(NAME, parents=parents, help=...)`` and
        ``p.set_defaults(func=run)``, where ``run(args, ctx) -> int`` returns the exit code.
    :param parents: the parent parsers carrying pannier's global options (``--json``,
        ``-v``...); pass them on so the command accepts them.
    """


@hookspec
def pannier_register_plugins(register: Any) -> None:
    """Register plugin classes from code, above every discovered plugin.

    Called once per implementation, the first time plugins other than hooks are asked
    for. ``register(kind, name, cls)`` adds ``cls`` (a class of the
    :class:`~pannier.PluginKind` ``kind``) as the plugin ``name``; it shadows a discovered
    plugin of the same kind and name. A class that breaks its kind's contract is recorded
    as a failed plugin and not added.

    :param register: the registration callback ``register(kind, name, cls) -> None``.
    """


@hookspec
def pannier_backup_start(info: dict[str, Any]) -> None:
    """A backup begins.

    :param info: ``repository`` (the redacted repository URL), ``sources`` (list of the
        source descriptions backed up), ``tags`` (list of strings), ``host``, ``time``
        (ISO 8601, UTC).
    """


@hookspec
def pannier_backup_progress(progress: dict[str, Any]) -> None:
    """A backup made progress; called at most a few times a second.

    :param progress: ``files_done``, ``bytes_done``, ``bytes_added`` (new data after
        deduplication), ``current`` (path being read, or None), ``elapsed`` (seconds);
        ``files_total``/``bytes_total`` when known, else None.
    """


@hookspec
def pannier_backup_end(summary: dict[str, Any]) -> None:
    """A backup ended, successfully or not.

    :param summary: ``snapshot_id`` (None when no snapshot was saved), ``files_new``,
        ``files_changed``, ``files_unchanged``, ``bytes_added``, ``errors`` (number of
        files that could not be read), ``elapsed`` (seconds), ``status`` (``"ok"``,
        ``"partial"`` or ``"failed"``).
    """


@hookspec
def pannier_restore_start(info: dict[str, Any]) -> None:
    """A restore begins.

    :param info: ``repository`` (redacted URL), ``snapshot_id``, ``target`` (the restore
        directory), ``include`` (list of path patterns, empty for everything).
    """


@hookspec
def pannier_restore_progress(progress: dict[str, Any]) -> None:
    """A restore made progress; called at most a few times a second.

    :param progress: ``files_done``, ``bytes_done``, ``current`` (path being written, or
        None), ``elapsed`` (seconds); ``files_total``/``bytes_total`` when known.
    """


@hookspec
def pannier_restore_end(summary: dict[str, Any]) -> None:
    """A restore ended, successfully or not.

    :param summary: ``snapshot_id``, ``files_restored``, ``bytes_restored``, ``errors``
        (number of files not restored), ``elapsed`` (seconds), ``status`` (``"ok"``,
        ``"partial"`` or ``"failed"``).
    """


@hookspec
def pannier_file_error(path: str, error: str) -> None:
    """A file could not be backed up or restored; the operation goes on without it.

    :param path: the file's path (relative to the source or restore target).
    :param error: one line saying what went wrong.
    """


@hookspec
def pannier_snapshot_saved(snapshot_id: str, summary: dict[str, Any]) -> None:
    """A snapshot was written to the repository and is complete (its object exists).

    :param snapshot_id: the new snapshot's id (hex).
    :param summary: the same keys as :func:`pannier_backup_end`'s ``summary``.
    """

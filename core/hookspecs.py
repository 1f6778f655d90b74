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
(strings, numbers, lists, dicts, None); later versions of the same plugin API may add
keys, never remove the ones documented, so read them with ``.get``.
"""

from __future__ import annotations

import re
from typing import Any

import pluggy

__all__ = [
    "HOOK_NAMES",
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
    "reference",
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
    :class:`~pannier.PluginKind` ``kind``) as the plugin ``name``, with this hook plugin's
    distribution as its origin; it shadows a discovered plugin of the same kind and name.
    A class that breaks its kind's contract is not added: the refusal is recorded as the
    hook plugin's error (``pannier plugins`` shows it) and warned about once.

    :param register: the registration callback ``register(kind, name, cls) -> None``.
    """


@hookspec
def pannier_backup_start(info: dict[str, Any]) -> None:
    """A backup begins.

    :param info: ``paths`` (the sources backed up, as the user named them), ``hostname``,
        ``tags`` (list of strings), ``parent`` (id of the snapshot compared against, or
        None).
    """


@hookspec
def pannier_backup_progress(progress: dict[str, Any]) -> None:
    """A backup made progress; called at most a few times a second.

    :param progress: ``action`` (``"backup"``), ``files_done``, ``bytes_done``,
        ``seconds_elapsed``, ``bytes_per_second``, ``errors``; once the totals are known
        also ``total_files``, ``total_bytes``, ``percent_done`` and, when it can be
        estimated, ``seconds_remaining``.
    """


@hookspec
def pannier_backup_end(summary: dict[str, Any]) -> None:
    """A backup ended, successfully or not.

    :param summary: ``snapshot_id`` (None when no snapshot was saved), ``parent``,
        ``files_new``, ``files_changed``, ``files_unchanged``, ``files_reread``,
        ``files_reread_changed``, ``dirs``, ``others``, ``total_files``, ``total_bytes``,
        ``bytes_read``, ``bytes_added`` (new data after deduplication), ``seconds``,
        ``warnings`` (one ``"path: reason"`` string per file that could not be read).
    """


@hookspec
def pannier_restore_start(info: dict[str, Any]) -> None:
    """A restore begins.

    :param info: ``snapshot`` (the id of the snapshot restored), ``target`` (the restore
        directory).
    """


@hookspec
def pannier_restore_progress(progress: dict[str, Any]) -> None:
    """A restore made progress; called at most a few times a second.

    :param progress: the same keys as for :func:`pannier_backup_progress`, with
        ``action`` ``"restore"``.
    """


@hookspec
def pannier_restore_end(summary: dict[str, Any]) -> None:
    """A restore ended, successfully or not.

    :param summary: ``snapshot_id``, ``target``, ``files_restored``, ``files_unchanged``,
        ``dirs``, ``links``, ``others``, ``bytes_written``, ``metadata_changed``,
        ``seconds``, ``errors`` (one line per file not restored), ``missing_meta_streams``
        (metadata streams whose plugin is absent: kept, not applied).
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


#: Every hook, in the order of this reference.
HOOK_NAMES = (
    "pannier_register_commands",
    "pannier_register_plugins",
    "pannier_backup_start",
    "pannier_backup_progress",
    "pannier_backup_end",
    "pannier_restore_start",
    "pannier_restore_progress",
    "pannier_restore_end",
    "pannier_file_error",
    "pannier_snapshot_saved",
)

_ROLE = re.compile(r":\w+:`~?([^`]+)`")
_PARAM = re.compile(r"^:param (\w+): ?(.*)$")


def reference() -> str:
    """The hooks reference in Markdown, generated from the docstrings of this module.

    ``docs/plugins.md`` holds this text between its ``hooks-reference`` markers, and a test
    checks that it is identical; regenerate it with ``python -m pannier.hookspecs``.
    """
    import inspect

    sections = []
    for name in HOOK_NAMES:
        function = globals()[name]
        arguments = ", ".join(inspect.signature(function).parameters)
        text: list[str] = []
        params: list[list[str]] = []
        for line in (inspect.getdoc(function) or "").splitlines():
            match = _PARAM.match(line)
            if match:
                params.append([match.group(1), match.group(2)])
            elif params and line.startswith(" "):
                params[-1][1] += " " + line.strip()
            else:
                text.append(line)
        section = [f"### `{name}({arguments})`", "", _markdown("\n".join(text).strip())]
        if params:
            section.append("")
            section.extend(f"- `{p}`: {_markdown(d)}" for p, d in params)
        sections.append("\n".join(section))
    return "\n\n".join(sections) + "\n"


def _markdown(text: str) -> str:
    text = _ROLE.sub(lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    return text.replace("``", "`")


if __name__ == "__main__":
    print(reference(), end="")

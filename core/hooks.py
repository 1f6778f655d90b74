"""Hooks: pluggy hook implementations from the ``pannier.hooks`` entry-point group.

Hook plugins are found and loaded by the :class:`~pannier.registry.PluginManager` like any
other plugin (kind :attr:`~pannier.PluginKind.HOOK`, entry-point group ``pannier.hooks``)
and registered with a :class:`pluggy.PluginManager` whose specifications are
:mod:`pannier.hookspecs` (the reference of every hook and its arguments).

Isolation: every hook implementation runs guarded. One that raises is recorded on its
plugin's record (``error``; ``pannier plugins`` shows it), warned about once on the
``pannier.hooks`` logger, and skipped: the other implementations still run and the caller
never sees the exception. A hook plugin that fails to import, or implements a hook that
does not exist or with arguments the hook does not have, is recorded as failed and left
out. ``PANNIER_TRACE_PLUGINS=1`` writes every hook call and its arguments to stderr
(pluggy's tracing).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import PluginContractError, PluginError
from .plugin import PluginKind
from .plugin_loader import plugin_error

if TYPE_CHECKING:
    from .registry import PluginManager, PluginRecord

__all__ = [
    "build_hook_manager",
    "call_hook",
    "get_hook_manager",
    "hookimpl",
    "implemented_hooks",
    "register_hook_plugin",
]

#: Marks a function of a hook plugin as the implementation of the hook of the same name::
#:
#:     from pannier import hookimpl
#:
#:     @hookimpl
#:     def pannier_backup_end(summary): ...
hookimpl = pluggy.HookimplMarker(hookspecs.PROJECT_NAME)

_log = logging.getLogger("pannier.hooks")


def get_hook_manager() -> pluggy.PluginManager:
    """The pluggy manager of the process-wide plugin set (built on first use).

    It has every hook of :mod:`pannier.hookspecs` and every enabled hook plugin of
    :func:`pannier.registry.get_plugin_manager` registered. In strict mode a hook plugin
    that fails to load raises its :class:`~pannier.PluginError`.
    """
    from .registry import get_plugin_manager

    return get_plugin_manager().hooks


def call_hook(name: str, **kwargs: Any) -> list[Any]:
    """Call the hook ``name`` with ``kwargs`` on every implementation; return their results.

    Never raises because of an implementation: one that fails is recorded, warned about
    once and skipped. An unknown hook name raises :class:`ValueError` (a bug in the
    caller, not in a plugin).
    """
    manager = get_hook_manager()
    caller = getattr(manager.hook, name, None)
    if caller is None or not name.startswith("pannier_"):
        raise ValueError(f"no pannier hook named {name!r}")
    result = caller(**kwargs)
    return list(result) if isinstance(result, list) else [result]


def build_hook_manager(plugins: PluginManager) -> pluggy.PluginManager:
    """A new pluggy manager with pannier's hook specs and ``plugins``' enabled hook plugins.

    Each hook plugin is imported (``plugins.load_all(PluginKind.HOOK)``); one that fails
    is recorded as failed and skipped (raised in strict mode).
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    if os.environ.get("PANNIER_TRACE_PLUGINS", "").strip().lower() in ("1", "true", "yes", "on"):
        manager.trace.root.setwriter(_trace_writer)
        manager.enable_tracing()
    plugins.load_all(PluginKind.HOOK)
    for record in plugins.records(PluginKind.HOOK):
        if record.status == "loaded":
            register_hook_plugin(manager, plugins, record)
    return manager


def register_hook_plugin(
    manager: pluggy.PluginManager, plugins: PluginManager, record: PluginRecord
) -> bool:
    """Register the loaded hook plugin of ``record`` with ``manager``, guarded.

    Returns False, and records the plugin as failed, when pluggy refuses it or it
    implements a hook that does not exist.
    """
    plugin = record.plugin_class
    if manager.has_plugin(record.name) or manager.is_registered(plugin):
        return True
    try:
        manager.register(plugin, name=record.name)
    except (pluggy.PluginValidationError, ValueError) as e:
        plugins._plugin_failed(
            record,
            plugin_error(
                PluginContractError,
                record.kind,
                record.name,
                record.origin,
                " ".join(str(e).split()),
            ),
        )
        return False
    unknown = sorted(
        caller.name
        for caller in manager.get_hookcallers(plugin) or []
        if caller.spec is None
        and any(not impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is plugin)
    )
    if unknown:
        manager.unregister(plugin)
        reason = f"implements unknown hook(s): {', '.join(unknown)}"
        plugins._plugin_failed(
            record,
            plugin_error(PluginContractError, record.kind, record.name, record.origin, reason),
        )
        return False
    for caller in manager.get_hookcallers(plugin) or []:
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and not (impl.wrapper or impl.hookwrapper):
                guarded = _guard(impl.function, caller.name, plugins, record)
                setattr(impl, "function", guarded)  # noqa: B010 - pluggy marks it Final
    return True


def implemented_hooks(manager: pluggy.PluginManager, name: str) -> list[str]:
    """The names of the hooks the registered hook plugin ``name`` implements (sorted)."""
    plugin = manager.get_plugin(name)
    if plugin is None:
        return []
    return sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])


def call_registration_hooks(plugins: PluginManager) -> None:
    """Call every ``pannier_register_plugins`` implementation with its own ``register``.

    Each implementation gets a callback that registers into ``plugins`` with the hook
    plugin's distribution as the origin; a class refused by its contract is recorded on
    the hook plugin and not added.
    """
    manager = plugins.hooks
    caller = manager.hook.pannier_register_plugins
    for impl in caller.get_hookimpls():
        record = plugins.record(PluginKind.HOOK, impl.plugin_name)
        register = _registration_callback(plugins, record)
        arguments = {"register": register}
        if plugins._tracing():
            print(
                f"pannier: plugins: calling {impl.plugin_name}.pannier_register_plugins",
                file=sys.stderr,
            )
        impl.function(*[arguments[name] for name in impl.argnames])


def _registration_callback(
    plugins: PluginManager, record: PluginRecord | None
) -> Callable[[PluginKind, str, Any], None]:
    distribution = record.origin.distribution if record is not None else None
    version = record.origin.version if record is not None else None

    def register(kind: PluginKind, name: str, cls: Any) -> None:
        try:
            plugins.register(
                PluginKind(kind), name, cls, distribution=distribution, version=version
            )
        except (PluginError, ValueError) as e:
            if record is None:
                raise
            if plugins._hook_failed(record, "pannier_register_plugins", e):
                _warn(record, "pannier_register_plugins", e)

    return register


def _guard(
    function: Callable[..., Any], hook_name: str, plugins: PluginManager, record: PluginRecord
) -> Callable[..., Any]:
    @functools.wraps(function)
    def guarded(*args: Any) -> Any:
        try:
            return function(*args)
        except Exception as e:  # isolation is the point
            if plugins._hook_failed(record, hook_name, e):
                _warn(record, hook_name, e)
            return None

    return guarded


_TRACE_LINE = 200


def _trace_writer(text: str) -> None:
    """pluggy's trace lines on stderr, each cut to a readable length."""
    lines = [
        line if len(line) <= _TRACE_LINE else line[: _TRACE_LINE - 3] + "..."
        for line in text.splitlines()
    ]
    sys.stderr.write("".join(f"pannier: hooks: {line}\n" for line in lines))


def _warn(record: PluginRecord, hook_name: str, error: BaseException) -> None:
    from .plugin_loader import one_line

    _log.warning(
        "pannier: warning: hook plugin %r failed in %s: %s (skipped; further failures "
        "are recorded silently, see `pannier plugins`)",
        record.name,
        hook_name,
        one_line(error),
    )

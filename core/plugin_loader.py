"""Importing one discovered plugin, and the one-line errors when that fails.

:func:`import_plugin` turns a :class:`~pannier.discovery.DiscoveredPlugin` into what it
provides (its class, or for a hook its object), importing its module only then. Every
failure is a :class:`~pannier.PluginLoadError` whose message names the plugin, its origin
and the cause on one line (:func:`plugin_error`, :func:`one_line`).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import TypeVar

from .discovery import CHANNEL_NAMESPACE, CHANNEL_RDB_META, DiscoveredPlugin, PluginOrigin
from .errors import PluginError, PluginLoadError
from .plugin import PluginKind

__all__ = ["import_plugin", "one_line", "plugin_error"]


def import_plugin(plugin: DiscoveredPlugin) -> object:
    """Import ``plugin`` and return what it provides: its class, or for a hook its object.

    A module (every namespace and ``rdb_meta`` plugin, and an entry point that names a
    module) provides ``get_plugin_class()``'s result; a hook module provides the module.
    An entry point ``module:attr`` provides that attribute. Any failure raises
    :class:`~pannier.PluginLoadError` whose message names the plugin, its origin and the
    cause in one line; a module that failed to import is not left in ``sys.modules``.
    """
    module_name, _, attribute = plugin.target.partition(":")
    module_name = module_name.strip()
    attribute = attribute.split("[", 1)[0].strip()  # drop entry-point extras
    try:
        module = _import_module(module_name, plugin.origin)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        raise _load_error(plugin, f"import failed: {one_line(e)}") from e
    if attribute:
        obj: object = module
        for part in attribute.split("."):
            if not hasattr(obj, part):
                raise _load_error(plugin, f"module {module_name} has no attribute {attribute!r}")
            obj = getattr(obj, part)
        return obj
    if plugin.kind is PluginKind.HOOK:
        return module
    get_plugin_class = getattr(module, "get_plugin_class", None)
    if get_plugin_class is None:
        raise _load_error(plugin, f"module {module_name} has no get_plugin_class()")
    if not callable(get_plugin_class):
        raise _load_error(plugin, f"{module_name}.get_plugin_class is not callable")
    try:
        provided: object = get_plugin_class()
        return provided
    except Exception as e:
        raise _load_error(plugin, f"get_plugin_class() raised {one_line(e)}") from e


def _import_module(name: str, origin: PluginOrigin) -> ModuleType:
    """Import ``name``; a namespace or rdb_meta module not on the import path by its file."""
    module = sys.modules.get(name)
    by_file = origin.channel in (CHANNEL_NAMESPACE, CHANNEL_RDB_META) and origin.file
    if module is not None:
        loaded_from = getattr(module, "__file__", None)
        if by_file and loaded_from and not _same_file(loaded_from, str(origin.file)):
            raise ImportError(f"another module {name} is already imported, from {loaded_from}")
        return module
    if by_file and origin.file:
        spec = importlib.util.find_spec(name)
        if spec is None or not _same_file(spec.origin, origin.file):
            return _import_file(name, origin.file)
    return importlib.import_module(name)


def _import_file(name: str, file: str) -> ModuleType:
    is_package = os.path.basename(file) == "__init__.py"
    spec = importlib.util.spec_from_file_location(
        name,
        file,
        submodule_search_locations=[os.path.dirname(file)] if is_package else None,
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {name} from {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _same_file(a: str | None, b: str) -> bool:
    return a is not None and os.path.realpath(a) == os.path.realpath(b)


def _load_error(plugin: DiscoveredPlugin, cause: str) -> PluginLoadError:
    return plugin_error(PluginLoadError, plugin.kind, plugin.name, plugin.origin, cause)


_E = TypeVar("_E", bound=PluginError)


def plugin_error(
    error_class: type[_E], kind: PluginKind, name: str, origin: PluginOrigin, reason: str
) -> _E:
    """An ``error_class`` whose one-line message names the plugin, its origin and ``reason``.

    The bare reason is kept as the error's ``reason`` attribute (what ``pannier plugins``
    shows in its error column).
    """
    error = error_class(f"{kind.value} plugin {name!r} ({origin.describe()}): {reason}")
    setattr(error, "reason", reason)  # noqa: B010 - PannierError has no such field
    return error


def one_line(error: BaseException) -> str:
    """``ExceptionType: message`` on one line; a SyntaxError also names its file and line."""
    if isinstance(error, SyntaxError):
        where = os.path.basename(error.filename or "?")
        return f"SyntaxError: {error.msg} ({where}, line {error.lineno})"
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__

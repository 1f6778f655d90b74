"""What a loaded plugin must be, per kind: the checks run when a plugin is loaded.

Every plugin except a hook is a class that declares an ``int`` class attribute
``plugin_api_version`` among :data:`~pannier.SUPPORTED_PLUGIN_API_VERSIONS`; a missing or
unsupported version raises :class:`~pannier.PluginAPIVersionError` naming the plugin, the
version and the supported ones. Then, per kind:

* backend -- a subclass of :class:`pannier.Backend` with a non-empty ``schemes``
  (a tuple of URL scheme strings);
* meta -- callable class attributes ``get_name``, ``get_desc``, ``get_version``,
  ``get_prefix``, ``is_active``, ``is_main_meta``, ``join_iter``, ``write_object``,
  ``get_objects`` and ``close`` (rdiff-backup's metadata-plugin contract);
* source -- a callable ``scan`` (duck-typed against :class:`pannier.Source`);
* hook -- any object or module; pluggy validates its hook implementations when it is
  registered.

A broken contract raises :class:`~pannier.PluginContractError` whose one-line message names
the plugin, its origin and what is wrong.
"""

from __future__ import annotations

from .discovery import CHANNEL_ENTRY_POINT, PluginOrigin
from .errors import PluginAPIVersionError, PluginContractError
from .plugin import SUPPORTED_PLUGIN_API_VERSIONS, PluginKind
from .plugin_loader import plugin_error

__all__ = ["META_METHODS", "check_plugin"]

#: The callable class attributes every metadata plugin class has.
META_METHODS = (
    "get_name",
    "get_desc",
    "get_version",
    "get_prefix",
    "is_active",
    "is_main_meta",
    "join_iter",
    "write_object",
    "get_objects",
    "close",
)


def check_plugin(kind: PluginKind, name: str, plugin: object, origin: PluginOrigin) -> None:
    """Raise unless ``plugin`` (what ``get_plugin_class()`` returned) fits ``kind``'s contract.

    A non-class where a class is required is a :class:`~pannier.PluginContractError`; an
    unsupported ``plugin_api_version`` is a :class:`~pannier.PluginAPIVersionError`.
    """
    if kind is PluginKind.HOOK:
        return
    if not isinstance(plugin, type):
        names_attribute = origin.channel == CHANNEL_ENTRY_POINT and ":" in (origin.module or "")
        source = f"{origin.module} is" if names_attribute else "get_plugin_class() returned"
        reason = f"{source} {_describe(plugin)}, not a class"
        raise plugin_error(PluginContractError, kind, name, origin, reason)
    _check_api_version(kind, name, plugin, origin)
    problem = _PROBLEMS[kind](plugin)
    if problem:
        raise plugin_error(PluginContractError, kind, name, origin, problem)


def _check_api_version(kind: PluginKind, name: str, cls: type, origin: PluginOrigin) -> None:
    supported = ", ".join(str(v) for v in sorted(SUPPORTED_PLUGIN_API_VERSIONS))
    version = getattr(cls, "plugin_api_version", None)
    if version is None:
        reason = f"{cls.__qualname__} declares no plugin_api_version (supported: {supported})"
    elif not isinstance(version, int) or isinstance(version, bool):
        reason = f"plugin_api_version {version!r} is not an int (supported: {supported})"
    elif version not in SUPPORTED_PLUGIN_API_VERSIONS:
        reason = f"written for plugin API version {version}; this pannier supports {supported}"
    else:
        return
    raise plugin_error(PluginAPIVersionError, kind, name, origin, reason)


def _backend_problem(cls: type) -> str | None:
    from .backend import Backend

    if not issubclass(cls, Backend):
        return f"{cls.__qualname__} is not a subclass of pannier.Backend"
    schemes = getattr(cls, "schemes", None)
    if isinstance(schemes, str) or not schemes:
        return f"{cls.__qualname__}.schemes must be a non-empty tuple of URL schemes"
    bad = [s for s in schemes if not isinstance(s, str) or not s]
    if bad:
        return f"{cls.__qualname__}.schemes has invalid entries: {bad!r}"
    return None


def _meta_problem(cls: type) -> str | None:
    missing = [m for m in META_METHODS if not callable(getattr(cls, m, None))]
    if missing:
        return f"{cls.__qualname__} lacks the metadata-plugin methods: {', '.join(missing)}"
    return None


def _source_problem(cls: type) -> str | None:
    if not callable(getattr(cls, "scan", None)):
        return f"{cls.__qualname__} has no scan() method"
    return None


_PROBLEMS = {
    PluginKind.BACKEND: _backend_problem,
    PluginKind.META: _meta_problem,
    PluginKind.SOURCE: _source_problem,
}


def _describe(value: object) -> str:
    if value is None or isinstance(value, (str, bytes, int, float, bool, tuple, list, dict)):
        text = repr(value)
        if len(text) > 40:
            text = text[:37] + "..."
        return f"{type(value).__name__} {text}"
    if callable(value) and not isinstance(value, type):
        return f"the callable {getattr(value, '__qualname__', type(value).__name__)}"
    return f"an instance of {type(value).__qualname__}"

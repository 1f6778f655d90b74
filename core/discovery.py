"""Finding plugins without importing them: the three discovery channels.

A plugin is found through one of three *channels*, recorded as its :class:`PluginOrigin`:

``entry-point``
    An entry point in the group of its kind (``pannier.backends``, ``pannier.meta``,
    ``pannier.sources``, ``pannier.hooks``) declared by an installed distribution. The
    entry point's name is the plugin's name. It names a module that has
    ``get_plugin_class()``, or the plugin class (or, for hooks, any object) itself.
``rdb_meta``
    A top-level module ``rdb_meta_<name>`` (a ``.py`` file or a package directory) in any
    directory of the search path, with ``get_plugin_class()``; always a metadata plugin
    named ``<name>``.
``namespace``
    A module ``<name>`` in the namespace package of its kind
    (``pannier.plugins.backends``, ``pannier.plugins.meta``, ``pannier.plugins.sources``),
    with ``get_plugin_class()``. Every directory that contributes to the namespace
    package is scanned: pannier's own (the built-ins ship there) and the
    ``pannier/plugins/<kind>/`` directory of every search-path entry.

Modules whose name (for ``rdb_meta_*``, the part after the prefix) starts with ``_``
are ignored. Discovery lists directories and reads entry-point metadata only (see
:mod:`pannier.entry_point_index`); it imports no plugin.
:func:`pannier.plugin_loader.import_plugin` imports one found plugin when it is asked for.

The precedence of the channels, for plugins of one kind with the same name, is
:data:`CHANNEL_PRECEDENCE`: an explicit registration beats an entry point, which beats an
``rdb_meta_*`` module, which beats a namespace module. Within one channel the first found
in search-path order wins.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from collections.abc import Iterable, Sequence

import attrs

from .entry_point_index import read_entry_points
from .plugin import PluginKind

__all__ = [
    "CHANNEL_ENTRY_POINT",
    "CHANNEL_EXPLICIT",
    "CHANNEL_NAMESPACE",
    "CHANNEL_PRECEDENCE",
    "CHANNEL_RDB_META",
    "DiscoveredPlugin",
    "PluginOrigin",
    "builtin_directory",
    "discover",
    "discover_all",
    "namespace_directories",
]

#: A plugin registered by code with ``PluginManager.register`` (or a registration hook).
CHANNEL_EXPLICIT = "explicit"
#: A plugin declared as an entry point by an installed distribution.
CHANNEL_ENTRY_POINT = "entry-point"
#: A top-level ``rdb_meta_*`` module on the search path.
CHANNEL_RDB_META = "rdb_meta"
#: A module in a ``pannier.plugins.<kind>`` namespace package.
CHANNEL_NAMESPACE = "namespace"

#: The channels, strongest first: a plugin shadows every same-named one of a later channel.
CHANNEL_PRECEDENCE = (CHANNEL_EXPLICIT, CHANNEL_ENTRY_POINT, CHANNEL_RDB_META, CHANNEL_NAMESPACE)

#: The name of pannier's own distribution; its namespace modules are the built-ins.
PANNIER_DISTRIBUTION = "pannier"

_RDB_META_PREFIX = "rdb_meta_"


@attrs.frozen
class PluginOrigin:
    """Where a plugin comes from.

    :ivar channel: ``"entry-point"``, ``"namespace"``, ``"rdb_meta"`` or ``"explicit"``.
    :ivar module: the module imported to load it (for an entry point, its value
        ``module:attribute``).
    :ivar file: the module's file, when known without importing it.
    :ivar distribution: the distribution that ships it (``"pannier"`` for built-ins),
        when known.
    :ivar version: that distribution's version, when known.
    """

    channel: str
    module: str | None = None
    file: str | None = None
    distribution: str | None = None
    version: str | None = None

    @property
    def builtin(self) -> bool:
        """Whether this is a built-in: a namespace module shipped in pannier itself."""
        return self.channel == CHANNEL_NAMESPACE and self.distribution == PANNIER_DISTRIBUTION

    def describe(self) -> str:
        """A short human description, e.g. ``entry point of pannier-ext 1.0 (ext.meta:Plug)``."""
        if self.channel == CHANNEL_ENTRY_POINT:
            dist = " ".join(p for p in (self.distribution, self.version) if p)
            return f"entry point of {dist or 'an unknown distribution'} ({self.module})"
        if self.channel == CHANNEL_EXPLICIT:
            via = f" by {self.distribution}" if self.distribution else ""
            return f"registered{via} ({self.module})"
        where = self.file or self.module
        if self.builtin:
            return f"built-in module {self.module} ({where})"
        label = "namespace module" if self.channel == CHANNEL_NAMESPACE else "rdb_meta module"
        return f"{label} {self.module} ({where})"

    def as_dict(self) -> dict[str, str | bool | None]:
        """The origin as a JSON-ready mapping (``builtin`` included)."""
        return {
            "channel": self.channel,
            "module": self.module,
            "file": self.file,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
        }


@attrs.frozen
class DiscoveredPlugin:
    """A plugin found by a channel, not imported yet.

    :ivar kind: its :class:`~pannier.PluginKind`.
    :ivar name: its name (entry-point name or module name without ``rdb_meta_``).
    :ivar origin: where it was found.
    :ivar target: what :func:`~pannier.plugin_loader.import_plugin` imports: a module
        name, or ``module:attr``.
    """

    kind: PluginKind
    name: str
    origin: PluginOrigin
    target: str


# --- the channels ----------------------------------------------------------------------


def discover(
    kind: PluginKind,
    *,
    entry_points: bool = True,
    search_path: Sequence[str] | None = None,
) -> list[DiscoveredPlugin]:
    """Every plugin of ``kind`` found on ``search_path`` (default ``sys.path``), unimported.

    The list is in precedence order: entry points, then ``rdb_meta_*`` modules (metadata
    plugins only), then namespace modules; within a channel, search-path order. Several
    entries may share a name; the first one wins and the others are shadowed. With
    ``entry_points=False`` installed distributions are not consulted at all.
    """
    return discover_all(entry_points=entry_points, search_path=search_path, kinds=[kind])[kind]


def discover_all(
    *,
    entry_points: bool = True,
    search_path: Sequence[str] | None = None,
    kinds: Iterable[PluginKind] | None = None,
) -> dict[PluginKind, list[DiscoveredPlugin]]:
    """:func:`discover` for every kind (or ``kinds``) in one pass over the search path."""
    wanted = list(PluginKind) if kinds is None else list(kinds)
    directories = _search_directories(search_path)
    found: dict[PluginKind, list[DiscoveredPlugin]] = {kind: [] for kind in wanted}
    if entry_points:
        for plugin in _entry_point_plugins(search_path):
            if plugin.kind in found:
                found[plugin.kind].append(plugin)
    if PluginKind.META in found:
        found[PluginKind.META].extend(_rdb_meta_plugins(directories))
    for kind in wanted:
        found[kind].extend(_namespace_plugins(kind, directories, search_path is None))
    return found


def _entry_point_plugins(search_path: Sequence[str] | None) -> Iterable[DiscoveredPlugin]:
    kinds = {kind.entry_point_group: kind for kind in PluginKind}
    for ep in read_entry_points(search_path):
        kind = kinds.get(ep.group)
        if kind is None:
            continue
        origin = PluginOrigin(
            channel=CHANNEL_ENTRY_POINT,
            module=ep.value,
            file=ep.path,
            distribution=ep.distribution,
            version=ep.version,
        )
        yield DiscoveredPlugin(kind, ep.name, origin, ep.value)


def _rdb_meta_plugins(directories: list[str]) -> Iterable[DiscoveredPlugin]:
    for directory in directories:
        for module, file in _modules_in(directory, _RDB_META_PREFIX):
            if len(module) > len(_RDB_META_PREFIX) and module[len(_RDB_META_PREFIX)] != "_":
                origin = PluginOrigin(channel=CHANNEL_RDB_META, module=module, file=file)
                name = module[len(_RDB_META_PREFIX) :]
                yield DiscoveredPlugin(PluginKind.META, name, origin, module)


def _namespace_plugins(
    kind: PluginKind, directories: list[str], include_imported: bool
) -> Iterable[DiscoveredPlugin]:
    package = kind.namespace_package
    if package is None:
        return
    builtin = builtin_directory(kind)
    version = _pannier_version()
    for directory in _namespace_directories(kind, directories, include_imported):
        is_builtin = directory == builtin
        for module, file in _modules_in(directory):
            if module.startswith("_"):
                continue
            origin = PluginOrigin(
                channel=CHANNEL_NAMESPACE,
                module=f"{package}.{module}",
                file=file,
                distribution=PANNIER_DISTRIBUTION if is_builtin else None,
                version=version if is_builtin else None,
            )
            yield DiscoveredPlugin(kind, module, origin, f"{package}.{module}")


@functools.cache
def _plugins_package_directory() -> str | None:
    try:
        spec = importlib.util.find_spec("pannier.plugins")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return os.path.dirname(spec.origin)


def builtin_directory(kind: PluginKind) -> str | None:
    """The directory of pannier's own (built-in) plugins of ``kind``, or None.

    That is ``<pannier.plugins>/<kind>``; finding it imports nothing but ``pannier``.
    """
    package_directory = _plugins_package_directory()
    if kind.namespace_package is None or package_directory is None:
        return None
    return os.path.join(package_directory, kind.namespace_package.rsplit(".", 1)[1])


def namespace_directories(kind: PluginKind, search_path: Sequence[str] | None = None) -> list[str]:
    """Every directory that contributes modules to the namespace package of ``kind``.

    The built-in directory comes first, then ``<entry>/pannier/plugins/<kind>`` for every
    search-path entry that has one, then (with the default search path) any other
    directory the import system counts in the namespace package's ``__path__`` (its
    ``submodule_search_locations``).
    """
    return _namespace_directories(kind, _search_directories(search_path), search_path is None)


def _namespace_directories(
    kind: PluginKind, directories: list[str], include_imported: bool
) -> list[str]:
    if kind.namespace_package is None:
        return []
    sub = kind.namespace_package.rsplit(".", 1)[1]
    candidates: list[str] = []
    builtin = builtin_directory(kind)
    if builtin is not None:
        candidates.append(builtin)
    for entry in directories:
        candidates.append(os.path.join(entry, "pannier", "plugins", sub))
    if include_imported:
        candidates.extend(_import_system_locations(kind.namespace_package))
    result: list[str] = []
    seen: set[str] = set()
    for directory in candidates:
        if directory in seen or not os.path.isdir(directory):
            continue
        real = os.path.realpath(directory)
        if real not in seen:
            seen.update((real, directory))
            result.append(directory)
    return result


def _import_system_locations(package: str) -> list[str]:
    """The namespace package's ``submodule_search_locations`` as the import system sees
    them (this imports ``pannier.plugins``' tiny ``__init__``, never a plugin)."""
    module = sys.modules.get(package)
    if module is not None:
        return [str(p) for p in getattr(module, "__path__", ())]
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    return [str(p) for p in (spec.submodule_search_locations or ())] if spec else []


def _search_directories(search_path: Sequence[str] | None) -> list[str]:
    entries = sys.path if search_path is None else search_path
    result: list[str] = []
    for entry in entries:
        if isinstance(entry, str):
            absolute = os.path.abspath(entry or os.curdir)
            if absolute not in result:
                result.append(absolute)
    return result


def _modules_in(directory: str, prefix: str = "") -> list[tuple[str, str]]:
    """(module name, file) for every Python module or package in ``directory`` whose name
    starts with ``prefix``."""
    found: list[tuple[str, str]] = []
    try:
        names = sorted(n for n in os.listdir(directory) if n.startswith(prefix))
    except OSError:
        return found
    for filename in names:
        if filename.endswith(".py"):
            module = filename[:-3]
            path = os.path.join(directory, filename)
        elif "." not in filename and filename.isidentifier():
            path = os.path.join(directory, filename, "__init__.py")
            if not os.path.isfile(path):
                continue
            module = filename
        else:
            continue
        if module.isidentifier():
            found.append((module, path))
    return found


def _pannier_version() -> str | None:
    pannier = sys.modules.get("pannier")
    version = getattr(pannier, "__version__", None)
    return version if isinstance(version, str) else None

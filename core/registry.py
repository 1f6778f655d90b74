"""The plugin manager: every plugin found, its status, and loading one on demand.

:class:`PluginManager` joins what the discovery channels found (see
:mod:`pannier.discovery`) with explicit registrations into one :class:`PluginRecord` per
plugin, decides which of several same-named plugins wins, and imports a plugin only when
it is asked for:

* :meth:`~PluginManager.records` lists every plugin and imports none;
* :meth:`~PluginManager.get` imports just the plugin asked for and raises a clear error
  naming the plugin, its origin and the cause when it cannot;
* :meth:`~PluginManager.load_all` imports every enabled plugin of a kind; one that fails
  is recorded with its error and skipped, so one broken plugin never stops the others,
  unless strict mode is on.

Precedence for plugins of one kind with the same name (one written rule): an explicit
:meth:`~PluginManager.register` beats an entry point, which beats an ``rdb_meta_*`` module,
which beats a namespace module (where the built-ins ship); within a channel the first in
search-path order wins. Every loser is kept as a record with status ``"shadowed"`` and
``shadowed_by`` naming the winner's origin.

The process-wide manager, :func:`get_plugin_manager`, is configured by the environment:

``PANNIER_LOAD_PLUGINS``
    unset: every plugin; a comma-separated list: the built-ins plus the plugins named;
    empty: the built-ins only. The escape hatch for a broken third-party plugin.
``PANNIER_DISABLE_PLUGINS``
    comma-separated names (or ``kind:name``) never loaded; ``--disable-plugin`` adds to it.
``PANNIER_STRICT_PLUGINS=1``
    strict mode (``--strict-plugins``): a plugin that fails to load is an error.
``PANNIER_TRACE_PLUGINS=1``
    write each plugin load and each hook call to stderr.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from .discovery import (
    CHANNEL_EXPLICIT,
    CHANNEL_PRECEDENCE,
    DiscoveredPlugin,
    PluginOrigin,
    discover_all,
)
from .errors import PluginError, PluginNotFoundError
from .plugin import PluginKind
from .plugin_loader import import_plugin, one_line

if TYPE_CHECKING:
    import pluggy

__all__ = [
    "STATUS_AVAILABLE",
    "STATUS_DISABLED",
    "STATUS_FAILED",
    "STATUS_LOADED",
    "STATUS_SHADOWED",
    "PluginManager",
    "PluginOrigin",
    "PluginRecord",
    "get_plugin_manager",
    "reset_plugin_manager",
]

#: Found and enabled, not imported yet.
STATUS_AVAILABLE = "available"
#: Imported; its class passed the contract checks.
STATUS_LOADED = "loaded"
#: Import or contract check failed; ``error`` says why.
STATUS_FAILED = "failed"
#: Not loaded on purpose (``--disable-plugin``, ``PANNIER_LOAD_PLUGINS``); ``reason`` says which.
STATUS_DISABLED = "disabled"
#: A plugin of the same kind and name with higher precedence wins; see ``shadowed_by``.
STATUS_SHADOWED = "shadowed"

_CHANNEL_RANK = {channel: rank for rank, channel in enumerate(CHANNEL_PRECEDENCE)}


@attrs.define(eq=False)
class PluginRecord:
    """One plugin found or registered, with what happened to it.

    :ivar name: the plugin's name, unique per kind among enabled plugins.
    :ivar kind: its :class:`~pannier.PluginKind`.
    :ivar origin: where it comes from (:class:`PluginOrigin`).
    :ivar status: ``"available"``, ``"loaded"``, ``"failed"``, ``"disabled"`` or ``"shadowed"``.
    :ivar error: the one-line reason it failed (or, for a loaded hook plugin, the last hook
        call that raised), else None.
    :ivar shadowed_by: the origin of the same-named plugin that wins, when shadowed.
    :ivar plugin_class: the loaded class (for a hook plugin: the object), else None.
    :ivar reason: why it is disabled or shadowed, when it is.
    """

    name: str
    kind: PluginKind
    origin: PluginOrigin
    status: str = STATUS_AVAILABLE
    error: str | None = None
    shadowed_by: PluginOrigin | None = None
    plugin_class: Any = None
    reason: str | None = None
    target: str | None = attrs.field(default=None, repr=False)
    exception: PluginError | None = attrs.field(default=None, repr=False)

    @property
    def builtin(self) -> bool:
        """Whether this plugin ships with pannier (a namespace module of pannier itself)."""
        return self.origin.builtin

    @property
    def enabled(self) -> bool:
        """Whether this record is the one used for its name (not disabled, not shadowed)."""
        return self.status not in (STATUS_DISABLED, STATUS_SHADOWED)

    def as_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready mapping (what ``pannier plugins --json`` prints)."""
        return {
            "name": self.name,
            "kind": self.kind.value,
            "status": self.status,
            "error": self.error,
            "reason": self.reason,
            "builtin": self.builtin,
            "origin": self.origin.as_dict(),
            "shadowed_by": None if self.shadowed_by is None else self.shadowed_by.as_dict(),
        }


class PluginManager:
    """Discovers, filters, ranks and loads plugins of every kind.

    :param entry_points: consult installed distributions' entry points (tests pass False
        so the ambient environment cannot leak in).
    :param load_plugins: None for every plugin; otherwise the names (or ``kind:name``)
        allowed besides the built-ins (``[]`` = built-ins only). Explicitly registered
        plugins are always allowed.
    :param disabled: names (or ``kind:name``) never loaded, built-ins included.
    :param strict: raise on the first plugin that fails to load instead of skipping it.
    :param search_path: the directories searched instead of ``sys.path`` (entry points,
        ``rdb_meta_*`` modules, ``pannier/plugins/<kind>/`` directories); pannier's own
        built-in directory is always searched. Modules found there are loaded from their
        files; an entry point's module is imported by name, so it must be importable.

    Discovery runs on first use and imports nothing. Methods are safe to call from
    several threads.
    """

    def __init__(
        self,
        *,
        entry_points: bool = True,
        load_plugins: list[str] | None = None,
        disabled: Iterable[str] = (),
        strict: bool = False,
        search_path: list[str] | None = None,
    ) -> None:
        self.entry_points = entry_points
        self.load_plugins = None if load_plugins is None else list(load_plugins)
        self.strict = strict
        self.search_path = None if search_path is None else list(search_path)
        self._disabled: set[str] = set()
        for name in disabled:
            self._disabled.add(name.strip())
        self._lock = threading.RLock()
        self._discovered: dict[PluginKind, list[PluginRecord]] | None = None
        self._explicit: list[PluginRecord] = []
        self._hooks: pluggy.PluginManager | None = None
        self._registration_hooks_called = False
        self._warned: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return (
            f"PluginManager(entry_points={self.entry_points}, "
            f"load_plugins={self.load_plugins!r}, disabled={sorted(self._disabled)!r}, "
            f"strict={self.strict}, search_path={self.search_path!r})"
        )

    # --- listing -------------------------------------------------------------------------

    def records(self, kind: PluginKind | None = None) -> list[PluginRecord]:
        """Every plugin record of ``kind`` (or of every kind), without importing any plugin.

        Records are ordered by kind, then name, then precedence (the winner first).
        Plugins that hook implementations register appear once the hooks are loaded (any
        :meth:`get` or :meth:`load_all`).
        """
        with self._lock:
            kinds = list(PluginKind) if kind is None else [kind]
            result: list[PluginRecord] = []
            for k in kinds:
                result.extend(self._records_of(k))
            return result

    def names(self, kind: PluginKind) -> list[str]:
        """The names of the enabled plugins of ``kind`` (imports nothing)."""
        return sorted({r.name for r in self.records(kind) if r.enabled})

    def record(self, kind: PluginKind, name: str) -> PluginRecord | None:
        """The enabled record of ``kind`` named ``name``, or None (imports nothing)."""
        with self._lock:
            for record in self._records_of(kind):
                if record.name == name and record.enabled:
                    return record
            return None

    # --- loading -------------------------------------------------------------------------

    def get(self, kind: PluginKind, name: str) -> Any:
        """The class of the plugin ``name`` of ``kind`` (a hook plugin: its object).

        Imports that plugin only. Raises :class:`~pannier.PluginNotFoundError` when no
        enabled plugin has that name (the message lists the available names and the names
        that failed), :class:`~pannier.PluginLoadError` when it fails to import or to
        return its class, :class:`~pannier.PluginAPIVersionError` or
        :class:`~pannier.PluginContractError` when its class is refused; each message
        names the plugin, its origin and the cause.
        """
        self._call_registration_hooks(kind)
        with self._lock:
            record = self.record(kind, name)
            if record is None:
                raise self._not_found(kind, name)
            return self._load(record)

    def load_all(self, kind: PluginKind, *, strict: bool | None = None) -> dict[str, Any]:
        """Import every enabled plugin of ``kind``; return ``{name: class}`` of those loaded.

        A plugin that fails is recorded (status ``"failed"``, ``error``) and skipped. In
        strict mode (``strict``, default the manager's) the first failure is raised after
        every plugin of the kind was tried.
        """
        strict = self.strict if strict is None else strict
        self._call_registration_hooks(kind)
        loaded: dict[str, Any] = {}
        failures: list[PluginError] = []
        with self._lock:
            for record in self._records_of(kind):
                if not record.enabled:
                    continue
                try:
                    loaded[record.name] = self._load(record)
                except PluginError as e:
                    failures.append(e)
        if strict and failures:
            raise failures[0]
        return loaded

    def failed(self, kind: PluginKind | None = None) -> list[PluginRecord]:
        """The records whose plugin failed to load (imports nothing)."""
        return [r for r in self.records(kind) if r.status == STATUS_FAILED]

    # --- changing the set ----------------------------------------------------------------

    def register(
        self,
        kind: PluginKind,
        name: str,
        cls: Any,
        *,
        origin: str = CHANNEL_EXPLICIT,
        distribution: str | None = None,
        version: str | None = None,
    ) -> None:
        """Add ``cls`` as the plugin ``name`` of ``kind``, above every discovered plugin.

        ``cls`` is checked against the kind's contract at once and refused with
        :class:`~pannier.PluginContractError` or :class:`~pannier.PluginAPIVersionError`.
        A later registration of the same kind and name wins over an earlier one (which is
        then shadowed); registering the same class again changes nothing. ``origin`` is
        the channel recorded (``"explicit"`` unless a channel name is given);
        ``distribution``/``version`` say who registered it, when known.
        """
        from .plugin_contract import check_plugin

        channel = origin if origin in _CHANNEL_RANK else CHANNEL_EXPLICIT
        module = getattr(cls, "__module__", None) if kind is not PluginKind.HOOK else None
        if kind is PluginKind.HOOK:
            module = getattr(cls, "__name__", None) or type(cls).__module__
        file = getattr(sys.modules.get(module or ""), "__file__", None)
        plugin_origin = PluginOrigin(channel, module, file, distribution, version)
        check_plugin(kind, name, cls, plugin_origin)
        with self._lock:
            for existing in self._explicit:
                same = existing.kind is kind and existing.name == name
                if same and existing.enabled and existing.plugin_class is cls:
                    return
            record = PluginRecord(
                name=name, kind=kind, origin=plugin_origin, plugin_class=cls, status=STATUS_LOADED
            )
            self._explicit.insert(0, record)
            self._resolve()
            if kind is PluginKind.HOOK and self._hooks is not None:
                from .hooks import register_hook_plugin

                if self._hooks.has_plugin(name):  # the one it shadows stops receiving calls
                    self._hooks.unregister(name=name)
                register_hook_plugin(self._hooks, self, record)
            self._trace(f"registered {kind.value} plugin {name!r} ({plugin_origin.describe()})")

    def disable(self, name: str) -> None:
        """Never load the plugin ``name`` (of any kind; ``kind:name`` for one kind).

        A hook plugin already registered with the hook manager is unregistered.
        """
        with self._lock:
            self._disabled.add(name.strip())
            self._resolve()
            if self._hooks is not None:
                for record in self._records_of(PluginKind.HOOK):
                    if record.status == STATUS_DISABLED and self._hooks.has_plugin(record.name):
                        self._hooks.unregister(name=record.name)

    @property
    def disabled(self) -> frozenset[str]:
        """The names (or ``kind:name``) disabled so far."""
        return frozenset(self._disabled)

    # --- hooks ---------------------------------------------------------------------------

    @property
    def hooks(self) -> pluggy.PluginManager:
        """The pluggy manager of this plugin set, with every enabled hook plugin registered.

        Built on first use (see :mod:`pannier.hooks`); a hook plugin that fails to load
        or to register is recorded as failed and left out.
        """
        with self._lock:
            if self._hooks is None:
                from .hooks import build_hook_manager

                self._hooks = build_hook_manager(self)
            return self._hooks

    def _call_registration_hooks(self, kind: PluginKind) -> None:
        if kind is PluginKind.HOOK or self._registration_hooks_called:
            return
        with self._lock:  # re-entrant: the hooks' register() calls take it again
            if self._registration_hooks_called:
                return
            self._registration_hooks_called = True
            from .hooks import call_registration_hooks

            call_registration_hooks(self)

    def _hook_failed(self, record: PluginRecord, hook_name: str, error: BaseException) -> bool:
        """Record that ``record``'s ``hook_name`` raised; True the first time for that pair."""
        with self._lock:
            record.error = f"{hook_name} raised {one_line(error)}"
            self._trace(f"hook plugin {record.name!r}: {record.error}")
            key = (record.name, hook_name)
            if key in self._warned:
                return False
            self._warned.add(key)
            return True

    def _plugin_failed(self, record: PluginRecord, error: PluginError) -> None:
        """Mark ``record`` failed with ``error`` (a plugin refused after it was imported)."""
        with self._lock:
            record.plugin_class = None
            record.exception = error
            record.error = str(getattr(error, "reason", error))
            record.status = STATUS_FAILED
            self._trace(f"failed: {error}")

    def _tracing(self) -> bool:
        return _env_flag("PANNIER_TRACE_PLUGINS")

    # --- internals -----------------------------------------------------------------------

    def _records_of(self, kind: PluginKind) -> list[PluginRecord]:
        discovered = self._discover()
        records = [r for r in self._explicit if r.kind is kind] + discovered[kind]
        return sorted(records, key=lambda r: r.name)  # stable: precedence order kept

    def _discover(self) -> dict[PluginKind, list[PluginRecord]]:
        if self._discovered is None:
            started = time.perf_counter()
            found = discover_all(entry_points=self.entry_points, search_path=self.search_path)
            self._discovered = {kind: [_record_of(p) for p in found[kind]] for kind in PluginKind}
            if self._tracing():
                channels = Counter(p.origin.channel for plugins in found.values() for p in plugins)
                counts = ", ".join(f"{n} {channel}" for channel, n in sorted(channels.items()))
                elapsed = (time.perf_counter() - started) * 1e3
                self._trace(f"discovered {counts or 'nothing'} in {elapsed:.1f} ms")
            self._resolve()
        return self._discovered

    def _resolve(self) -> None:
        """Recompute every record's disabled/shadowed/loaded status from the rules."""
        if self._discovered is None:
            return
        for kind in PluginKind:
            winners: dict[str, PluginRecord] = {}
            records = [r for r in self._explicit if r.kind is kind] + self._discovered[kind]
            for record in records:
                record.shadowed_by = None
                reason = self._disabled_reason(record)
                if reason is not None:
                    record.status, record.reason = STATUS_DISABLED, reason
                    continue
                record.reason = None
                winner = winners.get(record.name)
                if winner is not None:
                    record.status, record.shadowed_by = STATUS_SHADOWED, winner.origin
                    record.reason = f"shadowed by {winner.origin.describe()}"
                    continue
                winners[record.name] = record
                if record.plugin_class is not None:
                    record.status = STATUS_LOADED
                elif record.exception is not None:
                    record.status = STATUS_FAILED
                else:
                    record.status = STATUS_AVAILABLE

    def _disabled_reason(self, record: PluginRecord) -> str | None:
        if record.name in self._disabled or f"{record.kind.value}:{record.name}" in self._disabled:
            return "disabled with --disable-plugin or PANNIER_DISABLE_PLUGINS"
        if (
            self.load_plugins is not None
            and not record.builtin
            and record.origin.channel != CHANNEL_EXPLICIT
            and record.name not in self.load_plugins
            and f"{record.kind.value}:{record.name}" not in self.load_plugins
        ):
            return "not listed in PANNIER_LOAD_PLUGINS"
        return None

    def _load(self, record: PluginRecord) -> Any:
        if record.plugin_class is not None:
            return record.plugin_class
        if record.exception is not None:
            raise record.exception
        from .plugin_contract import check_plugin

        assert record.target is not None  # every discovered record has one
        found = DiscoveredPlugin(record.kind, record.name, record.origin, record.target)
        try:
            plugin = import_plugin(found)
            check_plugin(record.kind, record.name, plugin, record.origin)
        except PluginError as e:
            record.exception = e
            record.error = str(getattr(e, "reason", e))
            record.status = STATUS_FAILED
            self._trace(f"failed: {e}")
            raise
        record.plugin_class = plugin
        record.status = STATUS_LOADED
        self._trace(
            f"loaded {record.kind.value} plugin {record.name!r} ({record.origin.describe()})"
        )
        return plugin

    def _not_found(self, kind: PluginKind, name: str) -> PluginNotFoundError:
        records = self._records_of(kind)
        available = sorted({r.name for r in records if r.enabled and r.status != STATUS_FAILED})
        failed = [r for r in records if r.status == STATUS_FAILED]
        disabled = [r for r in records if r.name == name and r.status == STATUS_DISABLED]
        if disabled:
            message = f"{kind.value} plugin {name!r} is {disabled[0].reason}"
        else:
            message = f"no {kind.value} plugin named {name!r}"
        message += f"; available: {', '.join(available) or 'none'}"
        if failed:
            message += "; failed to load: " + "; ".join(f"{r.name} ({r.error})" for r in failed)
        return PluginNotFoundError(message)

    def _trace(self, message: str) -> None:
        if self._tracing():
            print(f"pannier: plugins: {message}", file=sys.stderr)


def _record_of(plugin: DiscoveredPlugin) -> PluginRecord:
    return PluginRecord(
        name=plugin.name, kind=plugin.kind, origin=plugin.origin, target=plugin.target
    )


# --- the process-wide manager ----------------------------------------------------------

_default: PluginManager | None = None
_default_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide :class:`PluginManager`, built on first use from the environment.

    ``PANNIER_LOAD_PLUGINS`` (unset: all; ``""``: built-ins only; ``a,b``: built-ins plus
    ``a`` and ``b``), ``PANNIER_DISABLE_PLUGINS`` (comma list) and
    ``PANNIER_STRICT_PLUGINS=1`` are read once, when it is built.
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = PluginManager(
                load_plugins=_env_list("PANNIER_LOAD_PLUGINS"),
                disabled=_env_list("PANNIER_DISABLE_PLUGINS") or (),
                strict=_env_flag("PANNIER_STRICT_PLUGINS"),
            )
        return _default


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (and its hook manager); the next use rebuilds it."""
    global _default
    with _default_lock:
        _default = None


def _env_list(variable: str) -> list[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _env_flag(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in ("1", "true", "yes", "on")

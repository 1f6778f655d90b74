"""Which class serves a URL scheme, and the two ways to open a backend.

duplicity's registration API, fed by discovery:

* :func:`register_backend` and :func:`register_backend_prefix` register a class
  explicitly (a test, an application embedding pannier); an explicit registration wins
  over a discovered plugin of the same scheme.
* Otherwise the scheme is looked up among the backend plugins (entry points
  ``pannier.backends``, the namespace package ``pannier.plugins.backends``) through the
  plugin manager. A plugin's name is its module name; its class serves every scheme in
  its ``schemes``. A scheme no plugin is named after (``webdavs``) is found by loading
  every backend plugin.
* An unknown scheme raises :class:`~pannier.PluginNotFoundError` that lists the schemes
  available *and* every backend plugin that failed to load, with its error, so a missing
  SDK never hides behind "scheme not supported".

:func:`get_backend_object` returns the backend itself; :func:`get_backend` returns it inside
the host-owned wrapper stack (``pannier.wrappers``): logging, retry, connection limit,
bandwidth limit and validation after put.
"""

from __future__ import annotations

import threading
from typing import Any

from .backend import Backend
from .errors import (
    ConfigError,
    PannierError,
    PermanentBackendError,
    PluginAPIVersionError,
    PluginContractError,
    PluginNotFoundError,
)
from .plugin import SUPPORTED_PLUGIN_API_VERSIONS, PluginKind
from .url import BackendURL, parse_url, redact

__all__ = [
    "available_schemes",
    "failed_backends",
    "get_backend",
    "get_backend_class",
    "get_backend_object",
    "register_backend",
    "register_backend_prefix",
    "unregister_backend",
]

_lock = threading.Lock()
_explicit: dict[str, type[Backend]] = {}
_explicit_prefixes: dict[str, type[Backend]] = {}


def _check_class(cls: object, origin: str) -> type[Backend]:
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise PluginContractError(f"backend {origin}: {cls!r} is not a subclass of pannier.Backend")
    version = getattr(cls, "plugin_api_version", None)
    if version not in SUPPORTED_PLUGIN_API_VERSIONS:
        raise PluginAPIVersionError(
            f"backend {origin} ({cls.__module__}.{cls.__qualname__}) declares plugin API "
            f"version {version!r}; this pannier supports "
            f"{', '.join(str(v) for v in sorted(SUPPORTED_PLUGIN_API_VERSIONS))}"
        )
    return cls


def register_backend(scheme: str, cls: type[Backend]) -> None:
    """Serve URLs of ``scheme`` with ``cls`` (duplicity's ``register_backend``). Wins over a
    discovered plugin for the same scheme. Raises PluginContractError when ``cls`` is not
    a Backend, PluginAPIVersionError when its API version is not supported."""
    _check_class(cls, scheme)
    with _lock:
        _explicit[scheme.lower()] = cls


def register_backend_prefix(prefix: str, cls: type[Backend]) -> None:
    """Serve ``prefix+inner://`` URLs with ``cls`` (duplicity's
    ``register_backend_prefix``); the class opens its inner backend itself with
    :func:`get_backend_object` ``(url.inner)``."""
    _check_class(cls, f"{prefix}+")
    with _lock:
        _explicit_prefixes[prefix.lower()] = cls


def unregister_backend(scheme: str) -> None:
    """Forget an explicit registration of ``scheme`` (plain or prefix); for tests."""
    with _lock:
        _explicit.pop(scheme.lower(), None)
        _explicit_prefixes.pop(scheme.lower(), None)


# --- discovery through the plugin manager -----------------------------------------------


def _manager() -> Any:
    from .registry import get_plugin_manager

    return get_plugin_manager()


def _discovered() -> tuple[dict[str, type[Backend]], dict[str, type[Backend]], dict[str, str]]:
    """Load every enabled backend plugin: (schemes, prefixes, failures name -> error).

    In strict mode the manager raises the first plugin failure instead."""
    manager = _manager()
    loaded = manager.load_all(PluginKind.BACKEND)
    schemes: dict[str, type[Backend]] = {}
    prefixes: dict[str, type[Backend]] = {}
    for name, cls in sorted(loaded.items()):
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            continue
        target = prefixes if cls.is_prefix else schemes
        for scheme in cls.schemes or (name,):
            target.setdefault(scheme.lower(), cls)
    failures = {
        record.name: redact(str(record.error)) for record in manager.failed(PluginKind.BACKEND)
    }
    return schemes, prefixes, failures


def _by_name(scheme: str, prefix: bool) -> type[Backend] | None:
    """The plugin whose name is ``scheme``, imported alone; None when there is none or it
    does not serve ``scheme``. Its own load error propagates: it was asked for."""
    manager = _manager()
    if manager.record(PluginKind.BACKEND, scheme) is None:
        return None
    cls = _check_class(manager.get(PluginKind.BACKEND, scheme), scheme)
    if scheme in (s.lower() for s in cls.schemes) and cls.is_prefix == prefix:
        return cls
    return None


def get_backend_class(scheme: str, *, prefix: bool = False) -> type[Backend]:
    """The class serving ``scheme`` (a prefix such as ``faulty`` when ``prefix``).

    Raises PluginNotFoundError listing the schemes available and every backend plugin that
    failed to load (with its error); PluginLoadError when the plugin named ``scheme``
    itself fails to import."""
    scheme = scheme.lower()
    with _lock:
        cls = (_explicit_prefixes if prefix else _explicit).get(scheme)
    if cls is not None:
        return cls
    cls = _by_name(scheme, prefix)
    if cls is not None:
        return cls
    schemes, prefixes, failures = _discovered()
    found = (prefixes if prefix else schemes).get(scheme)
    if found is not None:
        return _check_class(found, scheme)
    written = f"{scheme}+" if prefix else f"{scheme}://"
    available = sorted({*(f"{s}://" for s in schemes), *(f"{p}+" for p in prefixes)})
    with _lock:
        available = sorted({*available, *(f"{s}://" for s in _explicit)})
        available = sorted({*available, *(f"{p}+" for p in _explicit_prefixes)})
    message = f"no backend serves {written} URLs; available: {', '.join(available) or 'none'}"
    for record in _manager().records(PluginKind.BACKEND):
        if record.name == scheme and record.status == "disabled":
            message += f"; the backend plugin {scheme!r} is {record.reason or 'disabled'}"
    if failures:
        failed = "; ".join(f"{name}: {error}" for name, error in sorted(failures.items()))
        message += f"; backend plugins that failed to load: {failed}"
    raise PluginNotFoundError(message)


def available_schemes() -> dict[str, str]:
    """``{scheme: description}`` of every backend that loads, prefix backends written as
    ``prefix+``; loads every backend plugin."""
    schemes, prefixes, _ = _discovered()
    with _lock:
        schemes.update(_explicit)
        prefixes.update(_explicit_prefixes)
    result = {s: cls.description or cls.__name__ for s, cls in schemes.items()}
    result.update({f"{p}+": cls.description or cls.__name__ for p, cls in prefixes.items()})
    return dict(sorted(result.items()))


def failed_backends() -> dict[str, str]:
    """``{plugin name: error}`` of every backend plugin that failed to load."""
    return _discovered()[2]


def _as_url(url: str | BackendURL) -> BackendURL:
    return url if isinstance(url, BackendURL) else parse_url(url)


def get_backend_object(url: str | BackendURL) -> Backend:
    """The backend for ``url``, without wrappers (duplicity's ``get_backend_object``).

    A prefix URL (``faulty+file:///x``) gets the prefix class, which opens its inner
    backend itself. Malformed URLs raise ConfigError, unknown schemes PluginNotFoundError;
    a constructor failing with anything but a PannierError becomes a
    PermanentBackendError naming the backend and the cause, secrets redacted."""
    u = _as_url(url)
    if u.prefixes:
        cls = get_backend_class(u.prefixes[0], prefix=True)
    else:
        cls = get_backend_class(u.scheme)
    try:
        return cls(u)  # type: ignore[call-arg]
    except PannierError:
        raise
    except Exception as e:
        raise PermanentBackendError(
            f"cannot open the {u.full_scheme} backend: {redact(str(e)) or type(e).__name__}",
            backend=u.redacted,
        ) from e


def get_backend(url: str | BackendURL, **wrapper_options: Any) -> Backend:
    """The backend for ``url`` inside the host-owned wrapper stack, outermost first:
    logging, retry, connection limit, bandwidth limit, validation after put.

    ``wrapper_options`` are options such as ``retries=5`` or ``bwlimit_up="1M"`` (see
    ``docs/backends/index.md``); an option in the URL query wins over the same keyword.
    The backend itself sees them as explicit options too. ``unwrap()`` on the result
    returns the backend object."""
    u = _as_url(url)
    if wrapper_options:
        u = u.with_options(wrapper_options)
    raw = get_backend_object(u)
    from .wrappers import wrap_backend

    try:
        return wrap_backend(raw, u)
    except ConfigError:
        raw.close()
        raise

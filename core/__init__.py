"""pannier: deduplicating, compressing, encrypting backups, built as a plugin framework.

This module is the whole public API. Plugin authors import from ``pannier`` only; every
name listed in ``__all__`` is stable within a plugin API version
(:data:`PLUGIN_API_VERSION`). Names are imported on first use, so ``import pannier`` is
cheap and listing plugins imports none of their dependencies.

The parts:

* plugins and discovery -- :class:`PluginKind`, :func:`get_plugin_manager`;
* metadata plugins (rdiff-backup's contract) -- :class:`MetaPlugin`,
  :func:`get_meta_manager`, :func:`get_meta_dict`, :func:`get_meta_list`;
* storage backends (duplicity's and Duplicati's contract) -- :class:`Backend`,
  :func:`register_backend`, :func:`register_backend_prefix`, :func:`get_backend`,
  :func:`get_backend_object`;
* sources -- :class:`Source`;
* hooks -- :data:`hookimpl`;
* errors -- :class:`PannierError` and its subclasses.
"""

from __future__ import annotations

import importlib
from pkgutil import extend_path
from typing import TYPE_CHECKING, Any

# Other distributions may add modules under pannier.plugins.* from their own sys.path entry.
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"

# name -> module that defines it; resolved lazily by __getattr__.
_EXPORTS: dict[str, str] = {
    # plugins
    "PLUGIN_API_VERSION": "pannier.plugin",
    "SUPPORTED_PLUGIN_API_VERSIONS": "pannier.plugin",
    "PluginKind": "pannier.plugin",
    # errors
    "PannierError": "pannier.errors",
    "ConfigError": "pannier.errors",
    "PluginError": "pannier.errors",
    "PluginNotFoundError": "pannier.errors",
    "PluginLoadError": "pannier.errors",
    "PluginContractError": "pannier.errors",
    "PluginAPIVersionError": "pannier.errors",
    "MetaStreamError": "pannier.errors",
    "BackendError": "pannier.errors",
    "TransientBackendError": "pannier.errors",
    "RateLimitedError": "pannier.errors",
    "PermanentBackendError": "pannier.errors",
    "FileMissingError": "pannier.errors",
    "FolderMissingError": "pannier.errors",
    "InvalidNameError": "pannier.errors",
    "RepositoryError": "pannier.errors",
    "RepositoryNotFoundError": "pannier.errors",
    "RepositoryFormatError": "pannier.errors",
    "WrongPasswordError": "pannier.errors",
    "CorruptObjectError": "pannier.errors",
    "LockedError": "pannier.errors",
    "UnsafePathError": "pannier.errors",
    "SourceError": "pannier.errors",
    "PartialBackupError": "pannier.errors",
    # backends
    "Backend": "pannier.backend",
    "BackendCapabilities": "pannier.backend",
    "ListEntry": "pannier.backend",
    "check_name": "pannier.backend",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from .backend import Backend, BackendCapabilities, ListEntry, check_name
    from .errors import (
        BackendError,
        ConfigError,
        CorruptObjectError,
        FileMissingError,
        FolderMissingError,
        InvalidNameError,
        LockedError,
        MetaStreamError,
        PannierError,
        PartialBackupError,
        PermanentBackendError,
        PluginAPIVersionError,
        PluginContractError,
        PluginError,
        PluginLoadError,
        PluginNotFoundError,
        RateLimitedError,
        RepositoryError,
        RepositoryFormatError,
        RepositoryNotFoundError,
        SourceError,
        TransientBackendError,
        UnsafePathError,
        WrongPasswordError,
    )
    from .plugin import PLUGIN_API_VERSION, SUPPORTED_PLUGIN_API_VERSIONS, PluginKind


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pannier' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    if isinstance(value, type) and value.__module__.startswith("pannier."):
        value.__module__ = "pannier"
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

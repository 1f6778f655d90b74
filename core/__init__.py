"""pannier: deduplicating, compressing, encrypting backups, built as a plugin framework.

This module is the whole public API. Plugin authors import from ``pannier`` only; every
name listed in ``__all__`` is stable within a plugin API version
(:data:`PLUGIN_API_VERSION`). Names are imported on first use, so ``import pannier`` is
cheap and listing plugins imports none of their dependencies.

The parts:

* plugins and discovery -- :class:`PluginKind`, :func:`get_plugin_manager`,
  :class:`PluginManager`, :class:`PluginRecord`, :class:`PluginOrigin`;
* hooks -- :data:`hookimpl`, :func:`get_hook_manager`, :func:`call_hook`
  (the hook specifications are in ``pannier.hookspecs``);
* metadata plugins (rdiff-backup's contract) -- :class:`MetaPlugin`, :class:`MetaRecord`,
  :func:`get_meta_manager`, :func:`get_meta_dict`, :func:`get_meta_list`;
* storage backends (duplicity's and Duplicati's contract) -- :class:`Backend`,
  :class:`BackendCapabilities`, :class:`BackendURL`, :func:`register_backend`,
  :func:`register_backend_prefix`, :func:`get_backend`, :func:`get_backend_object`;
* sources -- :class:`Source`, :class:`SourceEntry`;
* for plugin modules -- :func:`lazy_import` (an SDK imported on first use);
* for backends that talk HTTP -- :class:`UploadBody`, :func:`receive_body`,
  :func:`http_status_error`, :func:`http_network_error` and their kin (``pannier.http``);
* the repository -- :class:`Repository`, :class:`Snapshot`, :func:`check_repository`,
  :func:`prune_repository`; for commands a hook adds -- :func:`add_repo_options`,
  :func:`open_repository`;
* for printing names from a snapshot -- :func:`escape_name`, :func:`escape_text`
  (terminal controls and invalid UTF-8 escaped);
* errors -- :class:`PannierError` and its subclasses, one hierarchy.

Conformance suites for plugin authors are in ``pannier.testing``.
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
    "PLUGIN_API_VERSION": "pannier.plugin",
    "SUPPORTED_PLUGIN_API_VERSIONS": "pannier.plugin",
    "PluginKind": "pannier.plugin",
    "BackendError": "pannier.errors",
    "ConfigError": "pannier.errors",
    "CorruptObjectError": "pannier.errors",
    "FileMissingError": "pannier.errors",
    "FolderMissingError": "pannier.errors",
    "InvalidNameError": "pannier.errors",
    "LockedError": "pannier.errors",
    "MetaStreamError": "pannier.errors",
    "PannierError": "pannier.errors",
    "PartialBackupError": "pannier.errors",
    "PermanentBackendError": "pannier.errors",
    "PluginAPIVersionError": "pannier.errors",
    "PluginContractError": "pannier.errors",
    "PluginError": "pannier.errors",
    "PluginLoadError": "pannier.errors",
    "PluginNotFoundError": "pannier.errors",
    "RateLimitedError": "pannier.errors",
    "RepositoryError": "pannier.errors",
    "RepositoryFormatError": "pannier.errors",
    "RepositoryNotFoundError": "pannier.errors",
    "SourceError": "pannier.errors",
    "TransientBackendError": "pannier.errors",
    "UnsafePathError": "pannier.errors",
    "WrongPasswordError": "pannier.errors",
    "PluginManager": "pannier.registry",
    "PluginOrigin": "pannier.registry",
    "PluginRecord": "pannier.registry",
    "get_plugin_manager": "pannier.registry",
    "reset_plugin_manager": "pannier.registry",
    "hookimpl": "pannier.hooks",
    "lazy_import": "pannier.lazy_import",
    "UploadBody": "pannier.http",
    "escape_name": "pannier.terminal",
    "escape_text": "pannier.terminal",
    "bucket_and_prefix": "pannier.http",
    "http_network_error": "pannier.http",
    "http_status_error": "pannier.http",
    "network_detail": "pannier.http",
    "parse_retry_after": "pannier.http",
    "query_list_by_head": "pannier.http",
    "receive_body": "pannier.http",
    "CheckResult": "pannier.repo.check",
    "check_repository": "pannier.repo.check",
    "PruneResult": "pannier.repo.prune",
    "prune_repository": "pannier.repo.prune",
    "StreamHeader": "pannier.meta_stream",
    "copy_stream": "pannier.meta_stream",
    "add_repo_options": "pannier.cli.repo_options",
    "open_repository": "pannier.cli.repo_options",
    "get_hook_manager": "pannier.hooks",
    "call_hook": "pannier.hooks",
    "MetaPlugin": "pannier.meta",
    "MetaRecord": "pannier.meta",
    "FSAbilities": "pannier.meta",
    "Index": "pannier.meta",
    "index_path": "pannier.meta",
    "MetaStreamReader": "pannier.meta_stream",
    "MetaStreamWriter": "pannier.meta_stream",
    "MetaManager": "pannier.meta_manager",
    "MetaWriter": "pannier.meta_manager",
    "MetaJoin": "pannier.meta_manager",
    "get_meta_manager": "pannier.meta_manager",
    "get_meta_dict": "pannier.meta_manager",
    "get_meta_list": "pannier.meta_manager",
    "Backend": "pannier.backend",
    "BackendCapabilities": "pannier.backend",
    "ListEntry": "pannier.backend",
    "check_name": "pannier.backend",
    "BackendURL": "pannier.url",
    "parse_url": "pannier.url",
    "parse_bool": "pannier.url",
    "parse_size": "pannier.url",
    "redact": "pannier.url",
    "register_backend": "pannier.backend_registry",
    "register_backend_prefix": "pannier.backend_registry",
    "get_backend": "pannier.backend_registry",
    "get_backend_object": "pannier.backend_registry",
    "available_schemes": "pannier.backend_registry",
    "BackendWrapper": "pannier.wrappers",
    "Source": "pannier.source",
    "SourceEntry": "pannier.source",
    "open_noatime": "pannier.source",
    "index_to_path": "pannier.source",
    "path_to_index": "pannier.source",
    "Repository": "pannier.repo",
    "Snapshot": "pannier.repo",
}

__all__ = [
    "PLUGIN_API_VERSION",
    "SUPPORTED_PLUGIN_API_VERSIONS",
    "Backend",
    "BackendCapabilities",
    "BackendError",
    "BackendURL",
    "BackendWrapper",
    "CheckResult",
    "ConfigError",
    "CorruptObjectError",
    "FSAbilities",
    "FileMissingError",
    "FolderMissingError",
    "Index",
    "InvalidNameError",
    "ListEntry",
    "LockedError",
    "MetaJoin",
    "MetaManager",
    "MetaPlugin",
    "MetaRecord",
    "MetaStreamError",
    "MetaStreamReader",
    "MetaStreamWriter",
    "MetaWriter",
    "PannierError",
    "PartialBackupError",
    "PermanentBackendError",
    "PluginAPIVersionError",
    "PluginContractError",
    "PluginError",
    "PluginKind",
    "PluginLoadError",
    "PluginManager",
    "PluginNotFoundError",
    "PluginOrigin",
    "PluginRecord",
    "PruneResult",
    "RateLimitedError",
    "Repository",
    "RepositoryError",
    "RepositoryFormatError",
    "RepositoryNotFoundError",
    "Snapshot",
    "Source",
    "SourceEntry",
    "SourceError",
    "StreamHeader",
    "TransientBackendError",
    "UnsafePathError",
    "UploadBody",
    "WrongPasswordError",
    "__version__",
    "add_repo_options",
    "available_schemes",
    "bucket_and_prefix",
    "call_hook",
    "check_name",
    "check_repository",
    "copy_stream",
    "escape_name",
    "escape_text",
    "get_backend",
    "get_backend_object",
    "get_hook_manager",
    "get_meta_dict",
    "get_meta_list",
    "get_meta_manager",
    "get_plugin_manager",
    "hookimpl",
    "http_network_error",
    "http_status_error",
    "index_path",
    "index_to_path",
    "lazy_import",
    "network_detail",
    "open_noatime",
    "open_repository",
    "parse_bool",
    "parse_retry_after",
    "parse_size",
    "parse_url",
    "path_to_index",
    "prune_repository",
    "query_list_by_head",
    "receive_body",
    "redact",
    "register_backend",
    "register_backend_prefix",
    "reset_plugin_manager",
]

if TYPE_CHECKING:
    from .backend import (
        Backend as Backend,
        BackendCapabilities as BackendCapabilities,
        ListEntry as ListEntry,
        check_name as check_name,
    )
    from .backend_registry import (
        available_schemes as available_schemes,
        get_backend as get_backend,
        get_backend_object as get_backend_object,
        register_backend as register_backend,
        register_backend_prefix as register_backend_prefix,
    )
    from .cli.repo_options import (
        add_repo_options as add_repo_options,
        open_repository as open_repository,
    )
    from .errors import (
        BackendError as BackendError,
        ConfigError as ConfigError,
        CorruptObjectError as CorruptObjectError,
        FileMissingError as FileMissingError,
        FolderMissingError as FolderMissingError,
        InvalidNameError as InvalidNameError,
        LockedError as LockedError,
        MetaStreamError as MetaStreamError,
        PannierError as PannierError,
        PartialBackupError as PartialBackupError,
        PermanentBackendError as PermanentBackendError,
        PluginAPIVersionError as PluginAPIVersionError,
        PluginContractError as PluginContractError,
        PluginError as PluginError,
        PluginLoadError as PluginLoadError,
        PluginNotFoundError as PluginNotFoundError,
        RateLimitedError as RateLimitedError,
        RepositoryError as RepositoryError,
        RepositoryFormatError as RepositoryFormatError,
        RepositoryNotFoundError as RepositoryNotFoundError,
        SourceError as SourceError,
        TransientBackendError as TransientBackendError,
        UnsafePathError as UnsafePathError,
        WrongPasswordError as WrongPasswordError,
    )
    from .hooks import (
        call_hook as call_hook,
        get_hook_manager as get_hook_manager,
        hookimpl as hookimpl,
    )
    from .http import (
        UploadBody as UploadBody,
        bucket_and_prefix as bucket_and_prefix,
        http_network_error as http_network_error,
        http_status_error as http_status_error,
        network_detail as network_detail,
        parse_retry_after as parse_retry_after,
        query_list_by_head as query_list_by_head,
        receive_body as receive_body,
    )
    from .lazy_import import lazy_import as lazy_import
    from .meta import (
        FSAbilities as FSAbilities,
        Index as Index,
        MetaPlugin as MetaPlugin,
        MetaRecord as MetaRecord,
        index_path as index_path,
    )
    from .meta_manager import (
        MetaJoin as MetaJoin,
        MetaManager as MetaManager,
        MetaWriter as MetaWriter,
        get_meta_dict as get_meta_dict,
        get_meta_list as get_meta_list,
        get_meta_manager as get_meta_manager,
    )
    from .meta_stream import (
        MetaStreamReader as MetaStreamReader,
        MetaStreamWriter as MetaStreamWriter,
        StreamHeader as StreamHeader,
        copy_stream as copy_stream,
    )
    from .plugin import (
        PLUGIN_API_VERSION as PLUGIN_API_VERSION,
        SUPPORTED_PLUGIN_API_VERSIONS as SUPPORTED_PLUGIN_API_VERSIONS,
        PluginKind as PluginKind,
    )
    from .registry import (
        PluginManager as PluginManager,
        PluginOrigin as PluginOrigin,
        PluginRecord as PluginRecord,
        get_plugin_manager as get_plugin_manager,
        reset_plugin_manager as reset_plugin_manager,
    )
    from .repo import (
        Repository as Repository,
        Snapshot as Snapshot,
    )
    from .repo.check import CheckResult as CheckResult, check_repository as check_repository
    from .repo.prune import PruneResult as PruneResult, prune_repository as prune_repository
    from .source import (
        Source as Source,
        SourceEntry as SourceEntry,
        index_to_path as index_to_path,
        open_noatime as open_noatime,
        path_to_index as path_to_index,
    )
    from .terminal import escape_name as escape_name, escape_text as escape_text
    from .url import (
        BackendURL as BackendURL,
        parse_bool as parse_bool,
        parse_size as parse_size,
        parse_url as parse_url,
        redact as redact,
    )
    from .wrappers import (
        BackendWrapper as BackendWrapper,
    )


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

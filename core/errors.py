"""The one exception hierarchy of pannier.

Every error pannier raises on purpose derives from :class:`PannierError`. Each class says
when it is raised and carries the process exit code the command line uses for it, so a
script can tell a wrong password from a missing repository without parsing messages.

Messages are one line, name the thing that was wrong (a plugin, a URL with its password
redacted, a repository object, a file) and never contain a secret.

Exit codes (documented in ``docs/errors.md``):

====  ===========================================================
0     success
1     an operation failed (any :class:`PannierError` by default)
2     wrong usage or bad input on the command line
3     the backup finished but some source files could not be read
10    the repository does not exist
11    the repository is locked by another process
12    wrong password
====  ===========================================================
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ConfigError",
    "CorruptObjectError",
    "FileMissingError",
    "FolderMissingError",
    "InvalidNameError",
    "LockedError",
    "MetaStreamError",
    "PannierError",
    "PartialBackupError",
    "PermanentBackendError",
    "PluginAPIVersionError",
    "PluginContractError",
    "PluginError",
    "PluginLoadError",
    "PluginNotFoundError",
    "RateLimitedError",
    "RepositoryError",
    "RepositoryFormatError",
    "RepositoryNotFoundError",
    "SourceError",
    "TransientBackendError",
    "UnsafePathError",
    "WrongPasswordError",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_NO_REPOSITORY = 10
EXIT_LOCKED = 11
EXIT_WRONG_PASSWORD = 12


class PannierError(Exception):
    """Root of every error pannier raises on purpose.

    Raised when: never directly; catch it to handle any pannier failure.
    """

    exit_code: int = EXIT_FAILURE


class ConfigError(PannierError):
    """Raised when a URL, an option, an environment variable or a command-line argument is
    malformed or missing (a wrong URL, a missing password, an unknown enum value)."""

    exit_code = EXIT_USAGE


# --- plugins ---------------------------------------------------------------------------


class PluginError(PannierError):
    """Raised when a plugin cannot be used; the message names the plugin, its origin and
    the cause."""


class PluginNotFoundError(PluginError, ConfigError):
    """Raised when a plugin (a backend scheme, a meta plugin, a source) is asked for by a
    name no plugin provides; the message lists the names that exist and any plugin that
    failed to load."""

    exit_code = EXIT_USAGE


class PluginLoadError(PluginError):
    """Raised when the plugin asked for failed to import or to return its class."""


class PluginContractError(PluginError):
    """Raised when a plugin's class breaks its contract (wrong type, missing method,
    two main meta plugins)."""


class PluginAPIVersionError(PluginError):
    """Raised when a plugin declares a plugin API version this pannier does not support."""


# --- metadata streams ------------------------------------------------------------------


class MetaStreamError(PannierError):
    """Raised when a metadata stream is truncated, corrupt, or of an unknown format
    version; the message names the stream and the record number."""


# --- storage backends ------------------------------------------------------------------


class BackendError(PannierError):
    """Raised by a storage backend; the class says what the retry wrapper may do.

    A backend classifies its own errors by raising one of the subclasses; the host never
    inspects an SDK's exception types. A plain ``BackendError`` is treated as transient.

    :param message: one line, with any secret already redacted.
    :param backend: the backend's scheme or redacted URL, prefixed to the message.
    """

    retryable: bool = True

    def __init__(self, message: str, *, backend: str | None = None) -> None:
        self.backend = backend
        super().__init__(f"{backend}: {message}" if backend else message)


class TransientBackendError(BackendError):
    """Raised on an error that may pass if the operation is tried again (a timeout, a
    dropped connection, a 5xx answer)."""


class RateLimitedError(TransientBackendError):
    """Raised when the server asks the client to slow down; ``retry_after`` is the delay
    in seconds it asked for, or None."""

    def __init__(
        self, message: str, *, backend: str | None = None, retry_after: float | None = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, backend=backend)


class PermanentBackendError(BackendError):
    """Raised on an error that retrying cannot fix (bad credentials, permission denied,
    host key mismatch, a missing bucket that was not asked to be created)."""

    retryable = False


class FileMissingError(PermanentBackendError):
    """Raised when a remote name does not exist (get, query or ranged get of a missing
    name). Never retried."""


class FolderMissingError(PermanentBackendError):
    """Raised when the backend's folder, bucket or container does not exist; the host
    answers it with ``create_folder`` when asked to create it."""


class InvalidNameError(PermanentBackendError):
    """Raised when a remote name is too long or cannot be encoded for the backend."""


# --- repository ------------------------------------------------------------------------


class RepositoryError(PannierError):
    """Raised when a repository cannot be used as asked."""


class RepositoryNotFoundError(RepositoryError):
    """Raised when no repository exists at the URL given."""

    exit_code = EXIT_NO_REPOSITORY


class RepositoryFormatError(RepositoryError):
    """Raised when a repository, or one of its objects, has a format version this pannier
    cannot read (written by a newer pannier)."""


class WrongPasswordError(RepositoryError):
    """Raised when no key of the repository opens with the password given."""

    exit_code = EXIT_WRONG_PASSWORD


class CorruptObjectError(RepositoryError):
    """Raised when a repository object (pack, index, snapshot, metadata stream, key,
    config, lock) is missing, truncated, or fails its authentication or hash check; the
    message names the object."""

    def __init__(self, message: str, *, object_name: str | None = None) -> None:
        self.object_name = object_name
        super().__init__(message)


class LockedError(RepositoryError):
    """Raised when the repository is locked by a live process in a way that excludes the
    operation asked for; the message names the lock's owner."""

    exit_code = EXIT_LOCKED


class UnsafePathError(RepositoryError):
    """Raised when a path in a snapshot would lead outside the restore target (``..``,
    an absolute name, a symlink planted on the way)."""


# --- sources ---------------------------------------------------------------------------


class SourceError(PannierError):
    """Raised when a source cannot be read at all (a path that does not exist, a command
    that failed, a database that cannot be opened)."""


class PartialBackupError(PannierError):
    """Raised after a backup that completed, but could not read some source files; the
    snapshot exists and the exit code is 3."""

    exit_code = EXIT_PARTIAL

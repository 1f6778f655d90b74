"""The ``config`` object: what a repository is, and opening it with a password.

``config`` is ``"PANNIER\\n"`` then a msgpack map with the format ``version``, the
repository ``id`` and its ``encryption`` in clear, and the ``settings`` (compression level,
chunker parameters, pack size) sealed with the master key (authenticated and encrypted when
the repository is encrypted). See ``docs/format.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import msgpack

from ..backend import Backend
from ..errors import (
    ConfigError,
    CorruptObjectError,
    FileMissingError,
    FolderMissingError,
    PannierError,
    RepositoryFormatError,
    RepositoryNotFoundError,
    WrongPasswordError,
)
from . import format as fmt
from .crypto import Cipher, MasterKey, open_key_object

__all__ = [
    "decode_config_public",
    "encode_config",
    "new_settings",
    "open_with_password",
    "read_config",
]


def config_aad(repo_id: str) -> bytes:
    """The associated data binding the sealed settings to their repository."""
    return fmt.AAD_CONFIG + b":" + repo_id.encode()


def new_settings(compression_level: int) -> dict[str, Any]:
    """The settings of a new repository."""
    return {
        "compression": compression_level,
        "chunker": [fmt.CHUNK_MIN, fmt.CHUNK_AVG, fmt.CHUNK_MAX],
        "stream_chunker": [fmt.STREAM_CHUNK_MIN, fmt.STREAM_CHUNK_AVG, fmt.STREAM_CHUNK_MAX],
        "pack_size": fmt.PACK_TARGET_SIZE,
        "created": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
    }


def encode_config(cipher: Cipher, repo_id: str, encryption: str, settings: dict[str, Any]) -> bytes:
    """The bytes of the ``config`` object."""
    sealed = cipher.seal(msgpack.packb(settings, use_bin_type=True), config_aad(repo_id))
    body = {
        "version": fmt.FORMAT_VERSION,
        "id": repo_id,
        "encryption": encryption,
        "settings": sealed,
    }
    return fmt.CONFIG_MAGIC + bytes(msgpack.packb(body, use_bin_type=True))


def decode_config_public(raw: bytes) -> dict[str, Any]:
    """The clear part of a ``config`` object; CorruptObjectError when it is not one,
    RepositoryFormatError when its version is newer than this pannier reads."""
    if not raw.startswith(fmt.CONFIG_MAGIC):
        raise CorruptObjectError("config is not a pannier repository config", object_name="config")
    try:
        body = msgpack.unpackb(raw[len(fmt.CONFIG_MAGIC) :], raw=False)
        version = body["version"]
        _ = body["id"], body["encryption"], body["settings"]
    except Exception:
        raise CorruptObjectError("config is corrupt", object_name="config") from None
    if not isinstance(version, int) or version > fmt.FORMAT_VERSION:
        raise RepositoryFormatError(
            f"the repository has format version {version}; this pannier reads up to "
            f"{fmt.FORMAT_VERSION}: upgrade pannier"
        )
    return dict(body)


def read_config(backend: Backend) -> dict[str, Any]:
    """The clear part of the backend's ``config``; RepositoryNotFoundError when there is
    none."""
    try:
        raw = backend.get_bytes(fmt.CONFIG_NAME)
    except (FileMissingError, FolderMissingError) as e:
        held = 0 if isinstance(e, FolderMissingError) else _repository_objects(backend)
        if held:
            raise CorruptObjectError(
                f"config is missing, yet {backend.display_name} holds {held} repository "
                "objects: the config object was deleted or lost (restore it from a copy)",
                object_name="config",
            ) from None
        raise RepositoryNotFoundError(
            f"no repository at {backend.display_name} (create one with 'pannier init')"
        ) from None
    return decode_config_public(raw)


def _repository_objects(backend: Backend) -> int:
    """How many key, pack, index and snapshot objects the backend holds (0 when it
    cannot be listed): a folder with these but no config is a damaged repository."""
    prefixes = ("key-", "data-", "index-", "snapshot-")
    try:
        return sum(1 for e in backend.iter_list() if e.name.startswith(prefixes))
    except PannierError:
        return 0


def open_with_password(
    backend: Backend,
    public: dict[str, Any],
    password: str | None,
    names: Iterable[str] | None = None,
) -> tuple[Cipher, str | None, dict[str, Any]]:
    """``(cipher, name of the key used, settings)`` of the repository whose config's
    clear part is ``public``. Each key object is tried with the password; a key that
    opens but does not authenticate the settings (left by an interrupted init) is
    skipped. ``names`` is a listing of the backend already made (one is made when None).
    ConfigError without a password, WrongPasswordError when no key opens."""
    repo_id, encryption = public["id"], public["encryption"]
    key_name: str | None = None
    if encryption == "none":
        cipher = Cipher(None)
        settings_raw = cipher.open(public["settings"], config_aad(repo_id), "config")
    elif encryption == "repokey":
        if not password:
            raise ConfigError(
                "the repository is encrypted: give its password (PANNIER_PASSWORD, "
                "--password-file or a terminal prompt)"
            )
        if names is None:
            names = [e.name for e in backend.iter_list()]
        key_names = sorted(n for n in names if n.startswith("key-"))
        if not key_names:
            raise CorruptObjectError("the repository has no key object", object_name="key")
        master: MasterKey | None = None
        settings_raw = b""
        unusable: list[str] = []
        for name in key_names:
            try:
                candidate = open_key_object(backend.get_bytes(name), password, name)
            except (CorruptObjectError, RepositoryFormatError, FileMissingError) as e:
                unusable.append(str(e))  # another key may still open
                continue
            if candidate is None:
                continue
            try:
                settings_raw = Cipher(candidate).open(
                    public["settings"], config_aad(repo_id), "config"
                )
            except CorruptObjectError:
                master = master or candidate  # kept to report the config as corrupt
                continue
            master, key_name = candidate, name
            break
        if master is None and len(unusable) == len(key_names):
            # no key object could even be tried: the password is not what is wrong
            raise CorruptObjectError(
                f"no usable key object in {backend.display_name}: {'; '.join(unusable)}",
                object_name=key_names[0],
            )
        if master is None:
            note = f" (and {'; '.join(unusable)})" if unusable else ""
            raise WrongPasswordError(
                f"wrong password: no key of {backend.display_name} opens with it{note}"
            )
        cipher = Cipher(master)
        if key_name is None:  # only keys that fail the config: it is the config's fault
            settings_raw = cipher.open(public["settings"], config_aad(repo_id), "config")
    else:
        raise RepositoryFormatError(f"unknown encryption {encryption!r} in config")
    try:
        settings = msgpack.unpackb(settings_raw, raw=False)
        if not isinstance(settings, dict):
            raise ValueError
    except Exception:
        raise CorruptObjectError("config is corrupt", object_name="config") from None
    return cipher, key_name, settings

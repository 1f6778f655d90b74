"""Key objects of a repository: list, add, remove (one per password).

The key objects' format and the key derivation are in :mod:`pannier.repo.crypto`; this
module manages the objects on the backend. Key objects are never rewritten: a key object
of an older format version keeps working, and ``key add`` then ``key remove`` of the old
id (opened with the new password: the key in use cannot be removed) replaces it with one
of the current version.
"""

from __future__ import annotations

import os
from functools import partial

import attrs

from ..backend import Backend
from ..errors import ConfigError, CorruptObjectError, RepositoryFormatError
from .backend_pool import BackendPool
from .crypto import KdfParams, MasterKey, make_key_object, read_key_info, verify_key_object

__all__ = ["KeyInfo", "add_key", "list_keys", "remove_key"]


@attrs.frozen
class KeyInfo:
    """A key object as ``pannier key list`` shows it; ``current`` marks the one that
    opened the repository. ``kdf`` starts with ``unusable:`` and the reason when the
    object cannot be read or fails authentication; ``version`` is its format version
    (0 when it cannot be read; 1 is an older object whose information fields are not
    authenticated)."""

    id: str
    created: str
    hostname: str
    username: str
    kdf: str
    current: bool = False
    version: int = 0


def _get_bytes(backend: Backend, name: str) -> bytes:
    return backend.get_bytes(name)


def _key_names(pool: BackendPool) -> list[str]:
    return sorted(pool.call(lambda b: [e.name for e in b.iter_list() if e.name.startswith("key-")]))


def list_keys(
    pool: BackendPool, current: str | None, master: MasterKey | None = None
) -> list[KeyInfo]:
    """The key objects of the repository. With the repository's ``master`` key each
    one's fields are authenticated, and an altered one is listed as unusable."""
    out = []
    for name in _key_names(pool):
        try:
            body = read_key_info(pool.call(partial(_get_bytes, name=name)), name)
            if master is not None:
                verify_key_object(body, master, name)
        except (CorruptObjectError, RepositoryFormatError) as e:
            body = {"kdf": f"unusable: {e}"}
        out.append(
            KeyInfo(
                name[4:],
                str(body.get("created", "")),
                str(body.get("hostname", "")),
                str(body.get("username", "")),
                str(body.get("kdf", "")),
                name == current,
                body["version"] if isinstance(body.get("version"), int) else 0,
            )
        )
    return out


def add_key(
    pool: BackendPool, master: MasterKey | None, password: str, kdf: KdfParams | None = None
) -> str:
    """Write a key object for another password; return its id."""
    if master is None:
        raise ConfigError("the repository is not encrypted: it has no keys")
    if not password:
        raise ConfigError("the new password is empty")
    key_id = os.urandom(8).hex()
    data = make_key_object(master, password, kdf=kdf)
    pool.call(lambda b: b.put_bytes(f"key-{key_id}", data))
    return key_id


def remove_key(pool: BackendPool, key_id: str, current: str | None) -> None:
    """Delete a key object; not the one in use (``current``), not the last one."""
    names = _key_names(pool)
    name = key_id if key_id.startswith("key-") else f"key-{key_id}"
    if name not in names:
        raise ConfigError(f"no key {key_id!r} in the repository")
    if name == current:
        raise ConfigError(f"key {key_id} is the one in use: open with another password")
    if len(names) <= 1:
        raise ConfigError("cannot remove the last key")
    pool.call(lambda b: b.delete(name))

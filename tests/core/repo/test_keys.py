"""Key objects: every field authenticated (version 2), version 1 still read, and the
key list marking an altered key object."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from pannier.errors import CorruptObjectError, RepositoryFormatError, WrongPasswordError
from pannier.repo import Repository
from pannier.repo.crypto import (
    KdfParams,
    MasterKey,
    key_object_mac,
    make_key_object,
    open_key_object,
    read_key_info,
)

from .conftest import FAST_KDF, FIXED_MASTER, PASSWORD, DirBackend

#: A version-1 key object of FIXED_MASTER under "pw", as pannier wrote it before version 2
#: (salt b"s" * 16, nonce b"n" * 12, created 2026-01-01T00:00:00Z, user@host).
V1_KEY = bytes.fromhex(
    "8ba776657273696f6e01a36b6466a86172676f6e326964ab6d656d6f72795f636f7374cd0400aa6974"
    "65726174696f6e7301a56c616e657301a473616c74c41073737373737373737373737373737373a56e"
    "6f6e6365c40c6e6e6e6e6e6e6e6e6e6e6e6ea464617461c481444eff5c222057c2b787d4fbd458d5b4"
    "8d604f11b3bdfd33c3ddc62b26b02534f57abae1007e9b8c62f226cabdaa2a7582faf55fc5ffdaa840"
    "93007629e1b955eb1926d5c1a4ad245ed36b928d0a6d9b1426e71afd804b6c918dd1e8673b67443e8b"
    "8982ffa7c7f84891e40ef0721168b421b408e768775ec5c670a53ed53e87e5a763726561746564b432"
    "3032362d30312d30315430303a30303a30305aa8686f73746e616d65a4686f7374a8757365726e616d"
    "65a475736572"
)


def v2_key() -> bytes:
    return make_key_object(
        FIXED_MASTER,
        "pw",
        kdf=FAST_KDF,
        salt=b"s" * 16,
        nonce=b"n" * 12,
        created="2026-01-01T00:00:00Z",
        hostname="host",
        username="user",
    )


def repack(body: dict[str, Any]) -> bytes:
    return bytes(msgpack.packb(body, use_bin_type=True))


def test_version_1_key_objects_still_open() -> None:
    assert read_key_info(V1_KEY, "key-1")["version"] == 1
    opened = open_key_object(V1_KEY, "pw", "key-1")
    assert opened is not None and opened.to_dict() == FIXED_MASTER.to_dict()
    assert open_key_object(V1_KEY, "wrong", "key-1") is None


def test_new_key_objects_are_version_2_with_a_mac() -> None:
    body = read_key_info(v2_key(), "key-2")
    assert body["version"] == 2
    assert body["mac"] == key_object_mac(FIXED_MASTER, body)
    assert sorted(body) == sorted(
        [
            "version",
            "kdf",
            "memory_cost",
            "iterations",
            "lanes",
            "salt",
            "nonce",
            "data",
            "created",
            "hostname",
            "username",
            "mac",
        ]
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hostname", "evil"),
        ("username", "root"),
        ("created", "1999-01-01T00:00:00Z"),
        ("mac", b"\x00" * 32),
        ("extra", "added"),
    ],
)
def test_an_altered_information_field_fails_authentication(field: str, value: Any) -> None:
    body = read_key_info(v2_key(), "key-2")
    body[field] = value
    with pytest.raises(CorruptObjectError, match="key object key-2 fails authentication"):
        open_key_object(repack(body), "pw", "key-2")


def test_a_removed_mac_fails_authentication() -> None:
    body = read_key_info(v2_key(), "key-2")
    del body["mac"]
    with pytest.raises(CorruptObjectError, match="fails authentication"):
        open_key_object(repack(body), "pw", "key-2")


def test_a_version_2_object_relabelled_as_version_1_is_refused() -> None:
    body = read_key_info(v2_key(), "key-2")
    del body["mac"]
    body["version"] = 1
    body["hostname"] = "evil"
    with pytest.raises(CorruptObjectError, match="its version was altered"):
        open_key_object(repack(body), "pw", "key-2")


def test_a_version_1_object_relabelled_as_version_2_is_refused() -> None:
    body = read_key_info(V1_KEY, "key-1")
    body["version"] = 2
    body["mac"] = key_object_mac(FIXED_MASTER, body)  # even with a mac made by a key holder
    with pytest.raises(CorruptObjectError, match="its version was altered"):
        open_key_object(repack(body), "pw", "key-1")


def test_a_newer_version_asks_for_an_upgrade() -> None:
    body = read_key_info(v2_key(), "key-2")
    body["version"] = 3
    with pytest.raises(RepositoryFormatError, match=r"format version 3.*upgrade pannier"):
        open_key_object(repack(body), "pw", "key-2")


def test_no_single_byte_flip_leaves_a_key_object_that_opens() -> None:
    data = v2_key()
    for pos in range(len(data)):
        for mask in (0x01, 0x80):
            flipped = bytearray(data)
            flipped[pos] ^= mask
            try:
                opened = open_key_object(bytes(flipped), "pw", "key-2")
            except (CorruptObjectError, RepositoryFormatError):
                continue
            assert opened is None, f"byte {pos} XOR {mask:#x} still opens"


def test_key_list_marks_an_altered_key(backend: DirBackend) -> None:
    repo = Repository.init(backend, PASSWORD, kdf=FAST_KDF)
    other = repo.add_key("another password", kdf=FAST_KDF)
    repo.close()
    path = backend.directory / f"key-{other}"
    body = read_key_info(path.read_bytes(), path.name)
    body["hostname"] = "forged"
    path.write_bytes(repack(body))
    repo = Repository.open(backend, PASSWORD)
    keys = {k.id: k for k in repo.list_keys()}
    repo.close()
    assert (
        keys[other].kdf
        == f"unusable: key object key-{other} fails authentication (a field was altered)"
    )
    assert keys[other].version == 0
    current = next(k for k in keys.values() if k.current)
    assert current.version == 2 and current.kdf == "argon2id"
    with pytest.raises(WrongPasswordError, match=f"key-{other} fails authentication"):
        Repository.open(backend, "another password")


def test_a_lone_altered_key_is_reported_as_damaged_not_as_a_wrong_password(
    backend: DirBackend,
) -> None:
    Repository.init(backend, PASSWORD, kdf=FAST_KDF).close()
    (path,) = backend.directory.glob("key-*")
    body = read_key_info(path.read_bytes(), path.name)
    body["username"] = "forged"
    path.write_bytes(repack(body))
    with pytest.raises(CorruptObjectError, match=f"no usable key object .*{path.name} fails auth"):
        Repository.open(backend, PASSWORD)


def v1_key_object(master: MasterKey, password: str, kdf: KdfParams) -> bytes:
    """A key object as pannier wrote it before version 2 (docs/format.md, "Version 1")."""
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, nonce = os.urandom(16), os.urandom(12)
    wrapping = kdf.derive(password.encode(), salt)
    sealed = AESGCM(wrapping).encrypt(
        nonce, msgpack.packb(master.to_dict(), use_bin_type=True), b"pannier:key"
    )
    return repack(
        {
            "version": 1,
            "kdf": kdf.algorithm,
            "memory_cost": kdf.memory_cost,
            "iterations": kdf.iterations,
            "lanes": kdf.lanes,
            "salt": salt,
            "nonce": nonce,
            "data": sealed,
            "created": "2025-01-01T00:00:00Z",
            "hostname": "old-host",
            "username": "old-user",
        }
    )


def test_a_repository_with_a_version_1_key_opens_and_its_key_is_replaced(
    backend: DirBackend,
) -> None:
    repo = Repository.init(backend, PASSWORD, kdf=FAST_KDF)
    ids = repo.store_bytes(b"kept")
    master = repo.cipher.master
    assert master is not None
    repo.flush()
    repo.close()
    (new_key,) = backend.directory.glob("key-*")
    new_key.unlink()
    (backend.directory / "key-00000000000000aa").write_bytes(
        v1_key_object(master, PASSWORD, FAST_KDF)
    )
    repo = Repository.open(backend, PASSWORD)
    assert repo.read_blob(ids[0]) == b"kept"
    (old,) = repo.list_keys()
    assert (old.id, old.version, old.hostname, old.current) == (
        "00000000000000aa",
        1,
        "old-host",
        True,
    )
    added = repo.add_key("new password", kdf=FAST_KDF)
    repo.close()
    repo = Repository.open(backend, "new password")
    repo.remove_key(old.id)
    (key,) = repo.list_keys()
    assert (key.id, key.version, key.current) == (added, 2, True)
    assert repo.read_blob(ids[0]) == b"kept"
    repo.close()

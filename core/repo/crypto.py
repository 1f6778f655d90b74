"""Keys, key derivation, authenticated encryption and blob ids.

A repository is either encrypted (``repokey``) or not (``none``).

* An encrypted repository has one random :class:`MasterKey`: a 32-byte AES-256-GCM key, a
  32-byte BLAKE3 key for blob ids, and a chunker seed. The master key is stored in *key
  objects*, one per password, each sealed with a key derived from its password by the
  memory-hard Argon2id (:class:`KdfParams`). Several passwords are several key objects of
  the same master key. Every field of a key object is authenticated: the master key by
  AES-GCM, the others by a MAC keyed from the master key.
* Every object (config settings, index, snapshot, lock, each blob in a pack, each pack
  header) is sealed as ``nonce (12 bytes) || AES-256-GCM ciphertext || tag (16 bytes)``
  with a random nonce and associated data naming what the object is (a blob is bound to
  its id), so an object cannot be altered, truncated or swapped for another unnoticed.
* Blob ids are keyed BLAKE3 of the plaintext when encrypted (nobody without the key can
  test whether a known file is stored) and plain BLAKE3 when not.

:class:`Cipher` does all of this for one repository; a ``none`` repository's cipher seals
nothing and ids are plain BLAKE3.
"""

from __future__ import annotations

import getpass
import hmac
import os
import queue
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import attrs
import blake3
import msgpack
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher as _GCMCipher
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.ciphers.algorithms import AES as _AES
from cryptography.hazmat.primitives.ciphers.modes import GCM as _GCM

from ..errors import ConfigError, CorruptObjectError, RepositoryFormatError
from . import format as fmt

__all__ = [
    "Cipher",
    "KdfParams",
    "MasterKey",
    "decode_payload",
    "encode_payload",
    "key_object_mac",
    "make_key_object",
    "open_key_object",
    "read_key_info",
    "verify_key_object",
]

#: The version of a key object this pannier writes; it reads every version up to it.
#: Version 2 authenticates every field; version 1 authenticated only the master key.
KEY_OBJECT_VERSION = 2

#: The entry of the sealed map of a key object that repeats its version (from 2 on), so
#: a version-2 object cannot pass for a version-1 one without failing authentication.
_SEALED_VERSION = "key_object_version"

#: The label HMAC-ed with the encryption key to key a key object's ``mac``.
_MAC_LABEL = b"pannier:key-object"


@attrs.frozen
class KdfParams:
    """How a password becomes a 32-byte key: Argon2id (the default) or scrypt.

    The default, Argon2id with 32 MiB, 3 passes and 4 lanes, is above OWASP's
    recommendations for Argon2id (19 MiB, 2 passes) while keeping opening a repository
    under a tenth of a second and its memory below a backup's working set.

    :ivar algorithm: ``"argon2id"`` or ``"scrypt"``.
    :ivar memory_cost: Argon2id memory in KiB; for scrypt, ``n`` (a power of two).
    :ivar iterations: Argon2id passes; for scrypt, ``r``.
    :ivar lanes: Argon2id parallelism; for scrypt, ``p``.
    """

    algorithm: str = "argon2id"
    memory_cost: int = 32 * 1024
    iterations: int = 3
    lanes: int = 4

    def check(self) -> None:
        """Raise ValueError for parameters no pannier writes (a damaged or hostile key
        object must not make the reader allocate gigabytes or spin for hours)."""
        if self.algorithm == "argon2id":
            ok = 8 * self.lanes <= self.memory_cost <= 4 * 1024 * 1024
            ok = ok and 1 <= self.iterations <= 64 and 1 <= self.lanes <= 64
        elif self.algorithm == "scrypt":
            n = self.memory_cost
            ok = 2 <= n <= 1 << 22 and n & (n - 1) == 0
            ok = ok and 1 <= self.iterations <= 64 and 1 <= self.lanes <= 64
        else:
            ok = True  # reported by derive
        if not ok:
            raise ValueError(f"key derivation parameters out of range: {self}")

    def derive(self, password: bytes, salt: bytes) -> bytes:
        """The 32-byte key for ``password`` and ``salt``; ConfigError for an unknown
        algorithm."""
        if self.algorithm == "argon2id":
            from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

            return Argon2id(
                salt=salt,
                length=32,
                iterations=self.iterations,
                lanes=self.lanes,
                memory_cost=self.memory_cost,
            ).derive(password)
        if self.algorithm == "scrypt":
            from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

            return Scrypt(
                salt=salt, length=32, n=self.memory_cost, r=self.iterations, p=self.lanes
            ).derive(password)
        raise RepositoryFormatError(f"unknown key derivation {self.algorithm!r}")


#: Cheap parameters for tests only (never for real repositories).
TEST_KDF = KdfParams(memory_cost=1024, iterations=1, lanes=1)


@attrs.frozen(repr=False)
class MasterKey:
    """The secret of an encrypted repository; never printed (its repr hides it).

    :ivar encryption_key: 32 bytes for AES-256-GCM.
    :ivar id_key: 32 bytes keying BLAKE3 blob ids.
    :ivar chunker_seed: seeds the chunker's gear table (a positive 63-bit integer), so
        chunk boundaries do not reveal file contents.
    """

    encryption_key: bytes
    id_key: bytes
    chunker_seed: int

    @classmethod
    def generate(cls) -> MasterKey:
        """A new random master key."""
        seed = int.from_bytes(os.urandom(8), "little") >> 1
        return cls(os.urandom(32), os.urandom(32), seed or 1)

    def to_dict(self) -> dict[str, Any]:
        """The map sealed inside key objects."""
        return {
            "encryption_key": self.encryption_key,
            "id_key": self.id_key,
            "chunker_seed": self.chunker_seed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MasterKey:
        """The master key in a map read from a key object; CorruptObjectError when it is
        malformed."""
        try:
            key = cls(bytes(d["encryption_key"]), bytes(d["id_key"]), int(d["chunker_seed"]))
        except (KeyError, TypeError, ValueError) as e:
            raise CorruptObjectError(f"master key is malformed: {e}") from None
        if len(key.encryption_key) != 32 or len(key.id_key) != 32:
            raise CorruptObjectError("master key has keys of the wrong size")
        return key

    def __repr__(self) -> str:
        return "MasterKey(<secret>)"


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def make_key_object(
    master: MasterKey,
    password: str,
    *,
    kdf: KdfParams | None = None,
    salt: bytes | None = None,
    nonce: bytes | None = None,
    created: str | None = None,
    hostname: str | None = None,
    username: str | None = None,
) -> bytes:
    """The bytes of a version-2 key object holding ``master`` sealed under ``password``.

    Every field is authenticated: the master key by AES-GCM under the password-derived
    key, every other field (the information shown by ``pannier key list`` included) by
    the object's ``mac`` (see :func:`key_object_mac`). The keyword arguments other than
    ``kdf`` exist for golden-bytes tests; by default the salt and nonce are random and
    the host, user and time are the current ones.
    """
    kdf = kdf or KdfParams()
    salt = salt if salt is not None else os.urandom(16)
    nonce = nonce if nonce is not None else os.urandom(fmt.NONCE_SIZE)
    wrapping = kdf.derive(password.encode("utf-8"), salt)
    sealed_map = master.to_dict() | {_SEALED_VERSION: KEY_OBJECT_VERSION}
    sealed = AESGCM(wrapping).encrypt(
        nonce, msgpack.packb(sealed_map, use_bin_type=True), fmt.AAD_KEY
    )
    body: dict[str, Any] = {
        "version": KEY_OBJECT_VERSION,
        "kdf": kdf.algorithm,
        "memory_cost": kdf.memory_cost,
        "iterations": kdf.iterations,
        "lanes": kdf.lanes,
        "salt": salt,
        "nonce": nonce,
        "data": sealed,
        "created": created if created is not None else _now_iso(),
        "hostname": hostname if hostname is not None else socket.gethostname(),
        "username": username if username is not None else _username(),
    }
    body["mac"] = key_object_mac(master, body)
    return bytes(msgpack.packb(body, use_bin_type=True))


def _username() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


def key_object_mac(master: MasterKey, body: dict[str, Any]) -> bytes:
    """The 32-byte ``mac`` of a version-2 key object whose fields are ``body``.

    It is HMAC-SHA256, keyed with ``HMAC-SHA256(encryption_key, "pannier:key-object")``,
    of the msgpack array of ``[name, value]`` pairs of every field but ``mac``, sorted by
    name. Field values are re-encoded as msgpack encodes them, so any changed, added or
    removed field changes it. A field name that is not a string raises TypeError.
    """
    if not all(isinstance(k, str) for k in body):
        raise TypeError("key object field names must be strings")
    fields = [[k, body[k]] for k in sorted(body) if k != "mac"]
    mac_key = hmac.digest(master.encryption_key, _MAC_LABEL, "sha256")
    return hmac.digest(mac_key, msgpack.packb(fields, use_bin_type=True), "sha256")


def read_key_info(data: bytes, name: str) -> dict[str, Any]:
    """The fields of a key object as stored, not yet authenticated (that needs the
    password: :func:`open_key_object`, or the master key: :func:`verify_key_object`);
    CorruptObjectError or RepositoryFormatError when it cannot be parsed."""
    try:
        body = msgpack.unpackb(data, raw=False)
    except Exception:
        raise CorruptObjectError(f"key object {name} is corrupt", object_name=name) from None
    if not isinstance(body, dict) or not isinstance(body.get("version"), int):
        raise CorruptObjectError(f"key object {name} is corrupt", object_name=name)
    if body["version"] > KEY_OBJECT_VERSION:
        raise RepositoryFormatError(
            f"key object {name} has format version {body['version']}; this pannier reads "
            f"up to {KEY_OBJECT_VERSION}: upgrade pannier"
        )
    if body["version"] < 1:
        raise CorruptObjectError(f"key object {name} is corrupt", object_name=name)
    return body


def verify_key_object(body: dict[str, Any], master: MasterKey, name: str) -> None:
    """Check the ``mac`` of the key object ``body`` (from :func:`read_key_info`) with the
    repository's master key. A version-2 object with a missing or wrong ``mac`` raises
    CorruptObjectError ("fails authentication"); a version-1 object has none and passes.
    """
    if body.get("version") == 1:
        return
    given = body.get("mac")
    try:
        ok = isinstance(given, bytes) and hmac.compare_digest(given, key_object_mac(master, body))
    except (TypeError, ValueError, OverflowError):
        ok = False  # a field msgpack cannot encode again: not a field pannier wrote
    if not ok:
        raise CorruptObjectError(
            f"key object {name} fails authentication (a field was altered)", object_name=name
        )


def open_key_object(data: bytes, password: str, name: str = "key") -> MasterKey | None:
    """The master key in a key object, or None when ``password`` does not open it.

    A key object that cannot be parsed raises CorruptObjectError naming ``name``; so does
    one the password opens but whose other fields fail authentication (a version-2
    object whose ``mac`` does not match, or whose sealed version is not its version:
    a version-2 object relabelled as version 1 to skip the ``mac`` is refused). A
    version-1 object (written before pannier authenticated every field) opens without
    checking its information fields.
    """
    body = read_key_info(data, name)
    try:
        kdf = KdfParams(
            str(body["kdf"]), int(body["memory_cost"]), int(body["iterations"]), int(body["lanes"])
        )
        salt, nonce, sealed = body["salt"], body["nonce"], body["data"]
        if not all(isinstance(b, bytes) for b in (salt, nonce, sealed)):
            raise TypeError  # bytes(n) of a hostile int would allocate n bytes
        kdf.check()
    except (KeyError, TypeError, ValueError, OverflowError):
        raise CorruptObjectError(f"key object {name} is corrupt", object_name=name) from None
    try:
        wrapping = kdf.derive(password.encode("utf-8"), salt)
        plain = AESGCM(wrapping).decrypt(nonce, sealed, fmt.AAD_KEY)
    except InvalidTag:
        return None
    except ValueError:
        raise CorruptObjectError(f"key object {name} is corrupt", object_name=name) from None
    try:
        sealed_map = msgpack.unpackb(plain, raw=False)
        sealed_version = sealed_map.get(_SEALED_VERSION, 1)
    except Exception:
        raise CorruptObjectError(f"key object {name} is corrupt", object_name=name) from None
    master = MasterKey.from_dict(sealed_map)
    if sealed_version != body["version"]:
        raise CorruptObjectError(
            f"key object {name} fails authentication (its version was altered)",
            object_name=name,
        )
    verify_key_object(body, master, name)
    return master


_local = threading.local()


class _CompressorPool:
    """Zstd compression contexts shared by all threads: at most ``limit`` per level
    exist (each holds a few MiB of tables), and a thread borrows one for each
    compression (a lock-free queue: borrowing costs about a microsecond)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._idle: dict[int, queue.SimpleQueue[zstandard.ZstdCompressor]] = {}
        self._made: dict[int, int] = {}
        self._lock = threading.Lock()

    def compress(self, level: int, data: bytes | bytearray | memoryview) -> bytes:
        """``data`` compressed at ``level`` with a borrowed context."""
        idle = self._idle.get(level)
        if idle is None:
            with self._lock:
                idle = self._idle.setdefault(level, queue.SimpleQueue())
        try:
            cctx = idle.get_nowait()
        except queue.Empty:
            with self._lock:
                make = self._made.get(level, 0) < self._limit
                if make:
                    self._made[level] = self._made.get(level, 0) + 1
            if make:
                cctx = zstandard.ZstdCompressor(level=level, write_content_size=True)
            else:
                cctx = idle.get()  # wait for one to come back
        try:
            return cctx.compress(data)
        finally:
            idle.put(cctx)


_compressors = _CompressorPool(max(2, os.cpu_count() or 2))


def _decompressor() -> zstandard.ZstdDecompressor:
    d: zstandard.ZstdDecompressor | None = getattr(_local, "dctx", None)
    if d is None:
        d = _local.dctx = zstandard.ZstdDecompressor()
    return d


def _compress(data: bytes | bytearray | memoryview, level: int) -> tuple[bytes, Any]:
    """``(flag, body)``: zstd at ``level`` (flag 1), or the data as is (flag 0) when
    ``level`` is 0 or the data does not compress below 97 % of its size."""
    if level > 0 and len(data) >= 64:
        packed = _compressors.compress(level, data)
        if len(packed) < len(data) * fmt.INCOMPRESSIBLE_RATIO:
            return b"\x01", packed
    return b"\x00", data


def encode_payload(data: bytes | bytearray | memoryview, level: int) -> bytes:
    """``flag || body``: zstd at ``level`` (flag 1), or the data as is (flag 0) when
    ``level`` is 0 or the data does not compress below 97 % of its size."""
    return b"".join(_compress(data, level))


#: No payload pannier writes is larger; a frame declaring more is corrupt (and would
#: otherwise make the reader allocate it).
MAX_PAYLOAD_SIZE = 1 << 30


def decode_payload(payload: bytes | memoryview, what: str) -> bytes:
    """The data of an encoded payload; CorruptObjectError naming ``what`` when it is
    malformed."""
    if not payload:
        raise CorruptObjectError(f"{what} is empty", object_name=what)
    flag = payload[0]
    body = memoryview(payload)[1:]
    if flag == fmt.PAYLOAD_RAW:
        return bytes(body)
    if flag == fmt.PAYLOAD_ZSTD:
        try:
            declared = zstandard.frame_content_size(body)
            if declared < 0 or declared > MAX_PAYLOAD_SIZE:
                raise CorruptObjectError(
                    f"{what} declares an invalid size ({declared})", object_name=what
                )
            return _decompressor().decompress(body)
        except zstandard.ZstdError as e:
            raise CorruptObjectError(f"{what} does not decompress: {e}", object_name=what) from None
    raise CorruptObjectError(f"{what} has unknown payload encoding {flag}", object_name=what)


class Cipher:
    """Seals and opens the objects of one repository, and computes its blob ids.

    With ``master=None`` (encryption ``none``) sealing returns the plaintext as is and
    blob ids are plain BLAKE3. Thread-safe.

    :param nonce_source: a callable returning ``n`` random bytes; tests pass a fixed one.
    """

    def __init__(
        self,
        master: MasterKey | None,
        *,
        nonce_source: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.master = master
        self._aead = AESGCM(master.encryption_key) if master else None
        self._nonce = nonce_source
        # copying a prepared hasher is cheaper than keying a new one for each blob
        self._id_base = blake3.blake3(key=master.id_key) if master else blake3.blake3()

    @property
    def encrypted(self) -> bool:
        """Whether objects are encrypted."""
        return self._aead is not None

    @property
    def overhead(self) -> int:
        """Bytes a sealed object has beyond its plaintext (28 encrypted, 0 otherwise)."""
        return fmt.NONCE_SIZE + fmt.TAG_SIZE if self._aead else 0

    def blob_id(self, data: bytes | bytearray | memoryview) -> bytes:
        """The 32-byte id of ``data``: keyed BLAKE3 when encrypted, plain BLAKE3 if not."""
        hasher = self._id_base.copy()
        hasher.update(data)
        return hasher.digest()

    def seal(self, plaintext: bytes | bytearray | memoryview, aad: bytes) -> bytes:
        """``nonce || ciphertext || tag`` of ``plaintext`` bound to ``aad``, or the
        plaintext itself when not encrypted."""
        if self._aead is None:
            return bytes(plaintext)
        nonce = self._nonce(fmt.NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes | memoryview, aad: bytes, what: str) -> bytes:
        """The plaintext of a sealed object; CorruptObjectError naming ``what`` when it
        fails authentication (altered, truncated, swapped or wrong key)."""
        if self._aead is None:
            return bytes(sealed)
        if len(sealed) < fmt.NONCE_SIZE + fmt.TAG_SIZE:
            raise CorruptObjectError(f"{what} is truncated", object_name=what)
        view = memoryview(sealed)
        try:
            return self._aead.decrypt(view[: fmt.NONCE_SIZE], view[fmt.NONCE_SIZE :], aad)
        except InvalidTag:
            raise CorruptObjectError(
                f"{what} fails authentication (corrupt or altered)", object_name=what
            ) from None

    def seal_payload(
        self, data: bytes | bytearray | memoryview, level: int, aad: bytes
    ) -> bytes | bytearray:
        """``seal(encode_payload(data, level), aad)`` with fewer copies: a large payload
        is encrypted in place into its final buffer (the bytes are the same)."""
        flag, body = _compress(data, level)
        n = len(body)
        if self._aead is None or n < 65536:
            return self.seal(b"".join((flag, body)), aad)
        assert self.master is not None
        nonce = self._nonce(fmt.NONCE_SIZE)
        out = bytearray(fmt.NONCE_SIZE + 1 + n + fmt.TAG_SIZE)
        out[: fmt.NONCE_SIZE] = nonce
        with memoryview(out) as view:
            enc = _GCMCipher(_AES(self.master.encryption_key), _GCM(nonce)).encryptor()
            enc.authenticate_additional_data(aad)
            enc.update_into(flag, view[fmt.NONCE_SIZE : fmt.NONCE_SIZE + 16])
            enc.update_into(body, view[fmt.NONCE_SIZE + 1 :])
            enc.finalize()
            view[fmt.NONCE_SIZE + 1 + n :] = enc.tag
        return out

    def seal_object(self, data: bytes, aad: bytes, level: int) -> bytes:
        """Compress (when it helps) and seal a whole object such as an index."""
        return self.seal(encode_payload(data, level), aad)

    def open_object(self, sealed: bytes, aad: bytes, what: str) -> bytes:
        """Open and decompress an object written by :meth:`seal_object`."""
        return decode_payload(self.open(sealed, aad, what), what)


def check_encryption(name: str) -> str:
    """``"repokey"`` or ``"none"`` (any case); ConfigError for anything else."""
    value = name.strip().lower()
    if value not in ("repokey", "none"):
        raise ConfigError(f"unknown encryption {name!r}: use 'repokey' or 'none'")
    return value

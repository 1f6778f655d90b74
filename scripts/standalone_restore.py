#!/usr/bin/env python3
"""Restore a pannier snapshot from a local (file://) repository WITHOUT pannier.

Needs only Python 3.10+, msgpack, zstandard and cryptography (blake3, when installed,
is used to double-check blob ids of unencrypted repositories). It follows the format
specification in docs/format.md (repository) and docs/format-tree.md (tree and metadata
streams), and exists to prove that a repository stays readable without pannier.

    PANNIER_PASSWORD=... python3 standalone_restore.py REPO_DIR SNAPSHOT TARGET_DIR

REPO_DIR is a directory or a file:// URL; SNAPSHOT an id, a unique id prefix or
"latest"; TARGET_DIR must be missing or empty. Restores files, directories, symlinks,
hard links and FIFOs with their content, mode, owner (when root), mtime and user
extended attributes. Names that would leave the target are refused.
"""

from __future__ import annotations

import getpass
import os
import stat
import struct
import sys
import urllib.parse
import zlib

import msgpack
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION = 1
SNAPSHOT_VERSION = 2  # version 2: a snapshot names each stream's blob list


def fail(message: str) -> None:
    sys.exit(f"standalone_restore: error: {message}")


class Repo:
    def __init__(self, path: str, password: str | None) -> None:
        self.path = path
        raw = self.read("config")
        if not raw.startswith(b"PANNIER\n"):
            fail("not a pannier repository (no config)")
        config = msgpack.unpackb(raw[8:], raw=False)
        if config["version"] > FORMAT_VERSION:
            fail(f"repository format version {config['version']} is newer than {FORMAT_VERSION}")
        self.key: AESGCM | None = None
        self.id_key: bytes | None = None
        if config["encryption"] == "repokey":
            self.open_key(password or getpass.getpass("repository password: "))
        self.blobs: dict[bytes, tuple[str, int, int]] = {}
        self.load_index()

    def read(self, name: str, offset: int = 0, length: int = -1) -> bytes:
        with open(os.path.join(self.path, name), "rb") as f:
            f.seek(offset)
            return f.read(length)

    def open_key(self, password: str) -> None:
        for name in sorted(os.listdir(self.path)):
            if not name.startswith("key-"):
                continue
            k = msgpack.unpackb(self.read(name), raw=False)
            if k["kdf"] == "argon2id":
                from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

                kdf = Argon2id(
                    salt=k["salt"],
                    length=32,
                    iterations=k["iterations"],
                    lanes=k["lanes"],
                    memory_cost=k["memory_cost"],
                )
            else:
                from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

                kdf = Scrypt(
                    salt=k["salt"], length=32, n=k["memory_cost"], r=k["iterations"], p=k["lanes"]
                )
            try:
                plain = AESGCM(kdf.derive(password.encode())).decrypt(
                    k["nonce"], k["data"], b"pannier:key"
                )
            except Exception:
                continue
            master = msgpack.unpackb(plain, raw=False)
            self.key = AESGCM(master["encryption_key"])
            self.id_key = master["id_key"]
            return
        fail("wrong password: no key object opens with it")

    def unseal(self, data: bytes, aad: bytes) -> bytes:
        if self.key is None:
            return data
        return self.key.decrypt(data[:12], data[12:], aad)

    @staticmethod
    def payload(data: bytes) -> bytes:
        if data[0] == 0:
            return data[1:]
        if data[0] == 1:
            return zstandard.ZstdDecompressor().decompress(data[1:])
        fail(f"unknown payload flag {data[0]}")
        return b""

    def load_index(self) -> None:
        indexes = {}
        for name in os.listdir(self.path):
            if name.startswith("index-"):
                plain = self.payload(self.unseal(self.read(name), b"pannier:index"))
                indexes[name[6:]] = msgpack.unpackb(plain, raw=False)
        superseded = {s for ix in indexes.values() for s in ix.get("supersedes", [])}
        for ix_id, ix in sorted(indexes.items()):
            if ix_id in superseded:
                continue
            for pack_id, records in ix["packs"]:
                pack = "data-" + pack_id.hex()
                for i in range(0, len(records), 45):
                    _kind, blob, offset, length, _raw = struct.unpack_from("<B32sIII", records, i)
                    self.blobs.setdefault(blob, (pack, offset, length))

    def blob(self, blob_id: bytes) -> bytes:
        if blob_id not in self.blobs:
            raise ValueError(f"blob {blob_id.hex()[:16]} is not in the index")
        pack, offset, length = self.blobs[blob_id]
        data = self.payload(self.unseal(self.read(pack, offset, length), blob_id))
        if self.key is None:
            try:
                import blake3

                if blake3.blake3(data).digest() != blob_id:
                    raise ValueError(f"blob {blob_id.hex()[:16]} does not match its id")
            except ImportError:
                pass
        return data

    def stream(self, snap: dict, name: str) -> bytes:
        ids = snap["streams"][name]
        if snap["version"] >= 2:  # ids of the blob list: 32-byte ids of the stream's blobs
            listing = b"".join(self.blob(i) for i in ids)
            ids = [listing[i : i + 32] for i in range(0, len(listing), 32)]
        return b"".join(self.blob(i) for i in ids)

    def snapshot(self, spec: str) -> dict:
        snaps = {}
        for name in os.listdir(self.path):
            if name.startswith("snapshot-"):
                plain = self.payload(self.unseal(self.read(name), b"pannier:snapshot"))
                snaps[name[9:]] = snap = msgpack.unpackb(plain, raw=False)
                if snap["version"] > SNAPSHOT_VERSION:
                    fail(f"snapshot {name[9:17]} has format version {snap['version']}")
        if spec == "latest":
            if not snaps:
                fail("the repository has no snapshot")
            return max(snaps.values(), key=lambda s: s["time"])
        found = [i for i in snaps if i.startswith(spec.lower())]
        if len(found) != 1:
            fail(f"snapshot {spec!r} matches {len(found)} snapshots")
        return snaps[found[0]]


def tree_entries(data: bytes):
    unpacker = msgpack.Unpacker(use_list=False, raw=False)
    unpacker.feed(data)
    header = next(unpacker)
    if header.get("format") != "pannier-tree" or header.get("version", 99) > 1:
        fail("unknown tree stream format")
    for count, obj in enumerate(unpacker):
        if isinstance(obj, dict):
            if obj.get("end") != count:
                fail("tree stream is truncated")
            return
        yield obj
    fail("tree stream is truncated")


def meta_records(data: bytes) -> dict[tuple[bytes, ...], dict]:
    """The records of a metadata stream, by index (as dicts of field -> value)."""
    magic = b"\x89PNMETA\r\n\x1a\n"
    if not data.startswith(magic):
        fail("not a metadata stream")
    pos = len(magic)
    frames = []
    while pos < len(data):
        length, count, crc = struct.unpack_from(">III", data, pos)
        payload = data[pos + 12 : pos + 12 + length]
        if zlib.crc32(payload) != crc:
            fail("metadata stream is corrupt")
        frames.append((payload, count))
        pos += 12 + length
    fields = msgpack.unpackb(frames[0][0], raw=False)["fields"]
    out = {}
    for payload, count in frames[1:]:
        if count == 0:
            break
        unpacker = msgpack.Unpacker(use_list=False, raw=False)
        unpacker.feed(payload)
        for row in unpacker:
            out[tuple(row[0])] = dict(zip(fields, row, strict=False))
    return out


def safe_path(target: str, index: tuple[bytes, ...], dirs: set) -> bytes:
    for name in index:
        if not name or name in (b".", b"..") or b"/" in name or b"\0" in name:
            raise ValueError(f"unsafe name {name!r}")
    if index[:-1] not in dirs:  # parents must be directories this restore created
        raise ValueError("parent is not a restored directory")
    return os.path.join(os.fsencode(target), *index)


def set_meta(path: bytes, e: tuple, xattrs: dict) -> None:
    kind, mode, uid, gid, mtime = e[1], e[2], e[3], e[4], e[6]
    if os.geteuid() == 0:
        os.chown(path, uid, gid, follow_symlinks=False)
    if kind != "l":
        os.chmod(path, stat.S_IMODE(mode))
        for name, value in xattrs.get(e[0], {}).get("xattrs", ()):
            if name.startswith(b"user.") or os.geteuid() == 0:
                os.setxattr(path, name, value)
    os.utime(path, ns=(mtime, mtime), follow_symlinks=False)


def restore(repo: Repo, snap: dict, target: str) -> int:
    os.makedirs(target, exist_ok=True)
    if os.listdir(target):
        fail(f"target {target!r} is not empty")
    xattrs = {}
    if "meta/xattr" in snap["streams"]:
        xattrs = meta_records(repo.stream(snap, "meta/xattr"))
    dirs: set = {()}
    later_dirs = []
    errors = 0
    for e in tree_entries(repo.stream(snap, "tree")):
        index, kind, data, flags = e[0], e[1], e[9], e[10]
        try:
            if not index:
                later_dirs.append((os.fsencode(target), e))
                continue
            path = safe_path(target, index, dirs)
            if kind == "d":
                os.mkdir(path, 0o700)
                dirs.add(index)
                later_dirs.append((path, e))
                continue
            if kind == "f":
                with open(path, "wb") as f:
                    for blob_id in data:
                        chunk = repo.blob(blob_id)
                        if flags & 1 and chunk == bytes(len(chunk)):
                            f.seek(len(chunk), os.SEEK_CUR)
                        else:
                            f.write(chunk)
                    f.truncate()
            elif kind == "l":
                os.symlink(data, path)
            elif kind == "h":
                os.link(safe_path(target, tuple(data), dirs), path)
            elif kind == "p":
                os.mkfifo(path)
            elif kind in "cb":
                os.mknod(path, e[2], data)
            set_meta(path, e, xattrs)
        except (OSError, ValueError) as err:
            errors += 1
            print(f"standalone_restore: {os.fsdecode(b'/'.join(index))}: {err}", file=sys.stderr)
    for path, e in reversed(later_dirs):
        set_meta(path, e, xattrs)
    return errors


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    location, spec, target = argv
    if location.startswith("file://"):
        location = urllib.parse.unquote(urllib.parse.urlparse(location).path)
    repo = Repo(location, os.environ.get("PANNIER_PASSWORD"))
    errors = restore(repo, repo.snapshot(spec), target)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

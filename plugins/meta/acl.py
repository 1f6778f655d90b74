"""The ``acl`` metadata plugin: POSIX access and default ACLs.

The kernel stores a POSIX ACL in the extended attribute ``system.posix_acl_access`` (and,
on directories, the inherited ``system.posix_acl_default``) in a small binary format: a
little-endian 32-bit version (2), then one 8-byte entry per ACL entry: tag (u16),
permissions (u16, r=4 w=2 x=1) and qualifier id (u32; 0xFFFFFFFF where the tag has none).
This plugin decodes it into readable entries and encodes them back; no libacl needed.

A record holds ``access`` and ``default``, each None (no such ACL) or a tuple of entries
``(tag, id, name, perms)`` such as ``("user", 1000, "alice", "rw-")``; ``tag`` is one of
``user_obj``, ``user``, ``group_obj``, ``group``, ``mask``, ``other``, as ``getfacl``
prints them. ``name`` is the user or group name when the id has one (for people reading
the metadata); applying uses the numeric id. A file whose ACL is only its permission bits
has no record. Symlinks have no ACLs.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
import struct
from functools import lru_cache
from typing import Any

import attrs
from pannier import FSAbilities, Index, MetaPlugin, MetaRecord, index_path

ACCESS = "system.posix_acl_access"
DEFAULT = "system.posix_acl_default"
ACL_VERSION = 2
_UNDEFINED_ID = 0xFFFFFFFF
_HEADER = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")
_TAGS = {
    0x01: "user_obj",
    0x02: "user",
    0x04: "group_obj",
    0x08: "group",
    0x10: "mask",
    0x20: "other",
}
_TAG_CODES = {name: code for code, name in _TAGS.items()}
_ABSENT = {errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP}

#: One ACL entry: (tag, qualifier id or None, user/group name or None, "rwx" string).
Entry = tuple[str, int | None, str | None, str]


@attrs.define
class AclRecord(MetaRecord):
    """The access ACL and (directories) default ACL of one file; None where absent."""

    access: tuple[Entry, ...] | None
    default: tuple[Entry, ...] | None = None


def _perms_text(bits: int) -> str:
    return ("r" if bits & 4 else "-") + ("w" if bits & 2 else "-") + ("x" if bits & 1 else "-")


def _perms_bits(text: str) -> int:
    return (4 if "r" in text else 0) | (2 if "w" in text else 0) | (1 if "x" in text else 0)


@lru_cache(maxsize=4096)
def _name(tag: str, qualifier: int) -> str | None:
    try:
        if tag == "user":
            return pwd.getpwuid(qualifier).pw_name
        return grp.getgrgid(qualifier).gr_name
    except KeyError:
        return None


def decode_acl(data: bytes) -> tuple[Entry, ...]:
    """Decode the kernel's binary ACL; malformed data raises ValueError."""
    if len(data) < _HEADER.size or (len(data) - _HEADER.size) % _ENTRY.size:
        raise ValueError(f"malformed POSIX ACL of {len(data)} bytes")
    (version,) = _HEADER.unpack_from(data)
    if version != ACL_VERSION:
        raise ValueError(f"POSIX ACL version {version} is not {ACL_VERSION}")
    entries = []
    for tag_code, perm, qualifier in _ENTRY.iter_unpack(data[_HEADER.size :]):
        tag = _TAGS.get(tag_code)
        if tag is None:
            raise ValueError(f"unknown POSIX ACL tag 0x{tag_code:x}")
        if tag in ("user", "group"):
            entries.append((tag, qualifier, _name(tag, qualifier), _perms_text(perm)))
        else:
            entries.append((tag, None, None, _perms_text(perm)))
    return tuple(entries)


def encode_acl(entries: tuple[Entry, ...]) -> bytes:
    """Encode entries into the kernel's binary ACL (the inverse of :func:`decode_acl`)."""
    parts = [_HEADER.pack(ACL_VERSION)]
    for tag, qualifier, _, perms in sorted(entries, key=lambda e: (_TAG_CODES[e[0]], e[1] or 0)):
        ident = _UNDEFINED_ID if qualifier is None else qualifier
        parts.append(_ENTRY.pack(_TAG_CODES[tag], _perms_bits(perms), ident))
    return b"".join(parts)


def _read(path: bytes, name: str) -> tuple[Entry, ...] | None:
    try:
        return decode_acl(os.getxattr(path, name, follow_symlinks=False))
    except OSError as exc:
        if exc.errno in _ABSENT:
            return None
        raise


def _same(a: tuple[Entry, ...] | None, b: tuple[Entry, ...] | None) -> bool:
    """Compare ACLs by tag, id and permissions (names are informative only)."""
    if a is None or b is None:
        return a is b
    return sorted((t, i, p) for t, i, _, p in a) == sorted((t, i, p) for t, i, _, p in b)


class AclPlugin(MetaPlugin):
    """POSIX access and default ACLs, decoded from system.posix_acl_* attributes."""

    plugin_api_version = 1
    record_class = AclRecord

    @classmethod
    def get_prefix(cls) -> str:
        """The stream prefix ``acl``."""
        return "acl"

    @classmethod
    def get_version(cls) -> str:
        """The record layout version of this plugin."""
        return "1.0"

    @classmethod
    def is_active(cls, fs: FSAbilities | str | bytes | os.PathLike[Any]) -> bool:
        """Active where the filesystem supports POSIX ACLs."""
        return FSAbilities.of(fs).acl

    @classmethod
    def from_path(cls, root: bytes, index: Index, st: os.stat_result) -> AclRecord | None:
        """The file's ACLs, or None for a symlink or a file without an extended ACL."""
        if stat.S_ISLNK(st.st_mode):
            return None
        path = index_path(root, index)
        try:
            # one listxattr, without an exception for the usual file without an ACL
            # (a failing getxattr costs three times as much)
            names = os.listxattr(path, follow_symlinks=False)
        except OSError:
            names = [ACCESS, DEFAULT]  # cannot list: ask for each ACL
        access = _read(path, ACCESS) if ACCESS in names else None
        is_dir = stat.S_ISDIR(st.st_mode)
        default = _read(path, DEFAULT) if is_dir and DEFAULT in names else None
        if access is None and default is None:
            return None
        return AclRecord(index, access, default)

    @classmethod
    def apply(
        cls, record: AclRecord, root: bytes, index: Index, *, dry_compare: bool = True
    ) -> bool:
        """Set the ACLs that differ and remove those the record lacks.

        Returns True if anything was written. Setting an access ACL also sets the
        group permission bits to its mask, as the kernel does.
        """
        path = index_path(root, index)
        written = False
        for name, wanted in ((ACCESS, record.access), (DEFAULT, record.default)):
            if name == DEFAULT and not stat.S_ISDIR(os.lstat(path).st_mode):
                continue
            current = _read(path, name)
            if dry_compare and _same(current, wanted):
                continue
            if wanted is not None:
                os.setxattr(path, name, encode_acl(wanted), follow_symlinks=False)
                written = True
            elif current is not None:
                os.removexattr(path, name, follow_symlinks=False)
                written = True
        return written


def get_plugin_class() -> type[MetaPlugin]:
    """Return the ``acl`` plugin class (the discovery entry point)."""
    return AclPlugin

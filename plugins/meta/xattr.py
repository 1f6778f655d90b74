"""The ``xattr`` metadata plugin: extended attributes.

A record holds a file's extended attributes as sorted ``(name, value)`` pairs of bytes.
Which namespaces are recorded and restored depends on who runs pannier:

* ``user.*`` always;
* ``trusted.*`` and ``security.*`` when running as root (only root may read or set them);
* ``system.*`` never: POSIX ACLs (``system.posix_acl_*``) belong to the ``acl`` plugin.

Files with no such attribute have no record. Where the kernel refuses extended attributes
(``user.*`` on a symlink or a device node, a filesystem without them) the file simply has
none. Applying a record sets the attributes whose value differs and removes those of the
recorded namespaces the record does not have; attributes of a namespace the current user
may not set are left alone.
"""

from __future__ import annotations

import errno
import os
from typing import Any

import attrs
from pannier import FSAbilities, Index, MetaPlugin, MetaRecord, index_path

#: errno values meaning "this file or filesystem has no extended attributes for us".
_NO_XATTR = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.ENODATA}


@attrs.define
class XattrRecord(MetaRecord):
    """The extended attributes of one file: sorted ``(name, value)`` byte-string pairs."""

    xattrs: tuple[tuple[bytes, bytes], ...]


def namespaces() -> tuple[bytes, ...]:
    """The attribute name prefixes recorded and restored by this process."""
    if os.geteuid() == 0:
        return (b"user.", b"trusted.", b"security.")
    return (b"user.",)


def read_xattrs(path: bytes, *, follow_symlinks: bool = False) -> dict[bytes, bytes]:
    """The attributes of ``path`` in the namespaces of :func:`namespaces`, by name.

    A filesystem or file type without extended attributes gives an empty dict.
    """
    try:
        names = os.listxattr(path, follow_symlinks=follow_symlinks)
    except OSError as exc:
        if exc.errno in _NO_XATTR:
            return {}
        raise
    if not names:  # the usual file: nothing more to ask
        return {}
    wanted = namespaces()
    found = {}
    for name in names:
        bname = os.fsencode(name)
        if not bname.startswith(wanted):
            continue
        try:
            found[bname] = os.getxattr(path, bname, follow_symlinks=follow_symlinks)
        except OSError as exc:
            if exc.errno in _NO_XATTR:
                continue
            raise
    return found


class XattrPlugin(MetaPlugin):
    """Extended attributes: user.* always, trusted.* and security.* as root."""

    plugin_api_version = 1
    record_class = XattrRecord

    @classmethod
    def get_prefix(cls) -> str:
        """The stream prefix ``xattr``."""
        return "xattr"

    @classmethod
    def get_version(cls) -> str:
        """The record layout version of this plugin."""
        return "1.0"

    @classmethod
    def is_active(cls, fs: FSAbilities | str | bytes | os.PathLike[Any]) -> bool:
        """Active where the filesystem supports extended attributes."""
        return FSAbilities.of(fs).xattr

    @classmethod
    def from_path(cls, root: bytes, index: Index, st: os.stat_result) -> XattrRecord | None:
        """The file's attributes, or None when it has none."""
        found = read_xattrs(index_path(root, index))
        if not found:
            return None
        return XattrRecord(index, tuple(sorted(found.items())))

    @classmethod
    def apply(
        cls, record: XattrRecord, root: bytes, index: Index, *, dry_compare: bool = True
    ) -> bool:
        """Set differing attributes, remove unrecorded ones; True if anything changed."""
        path = index_path(root, index)
        wanted = namespaces()
        current = read_xattrs(path) if dry_compare else {}
        recorded = {name: value for name, value in record.xattrs if name.startswith(wanted)}
        written = False
        for name, value in recorded.items():
            if current.get(name) != value:
                os.setxattr(path, name, value, follow_symlinks=False)
                written = True
        if not dry_compare:
            current = read_xattrs(path)
        for name in current:
            if name not in recorded:
                os.removexattr(path, name, follow_symlinks=False)
                written = True
        return written


def get_plugin_class() -> type[MetaPlugin]:
    """Return the ``xattr`` plugin class (the discovery entry point)."""
    return XattrPlugin

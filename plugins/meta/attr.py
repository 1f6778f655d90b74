"""The ``attr`` metadata plugin: type, permissions, ownership, times, links, devices.

This is the main metadata plugin: its stream has one record for every file of a snapshot,
and the other plugins' records are joined into it by index.

A record holds the file type (``reg``, ``dir``, ``sym``, ``fifo``, ``sock``, ``chr``,
``blk``), the permission bits (with setuid, setgid and sticky), the numeric owner and
group and their names, the size (regular files and symlinks; 0 otherwise), modification
and change times in nanoseconds, the inode number and link count (to find hard links),
the major and minor numbers of a device, and a symlink's target.

Applying a record creates a missing directory, symlink, FIFO or device node (never a
regular file: its content comes from the backup), then sets owner (numeric ids; as root
or when permitted), permission bits (not on symlinks) and the modification time, each
only where it differs. Apply a directory's record after its contents, or writing them
changes its time again. Changing the owner keeps the file's capabilities
(``security.capability``), which the kernel would otherwise drop, so ``attr`` and
``xattr`` records may be applied in either order.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from functools import lru_cache
from typing import Any, ClassVar

import attrs
from pannier import FSAbilities, Index, MetaPlugin, MetaRecord, index_path

_TYPES = {
    stat.S_IFREG: "reg",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "sym",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "sock",
    stat.S_IFCHR: "chr",
    stat.S_IFBLK: "blk",
}
_DEVICE_MODES = {"chr": stat.S_IFCHR, "blk": stat.S_IFBLK}
_CAPABILITY = "security.capability"


@attrs.define
class AttrRecord(MetaRecord):
    """The basic attributes of one file (see the module documentation)."""

    type: str
    mode: int
    uid: int
    gid: int
    uname: str | None
    gname: str | None
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    nlink: int
    rdev_major: int | None = None
    rdev_minor: int | None = None
    target: bytes | None = None


@lru_cache(maxsize=4096)
def _user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


@lru_cache(maxsize=4096)
def _group_name(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def file_type(st: os.stat_result) -> str:
    """The record's name for the file type in ``st`` (``"reg"``, ``"dir"``, ...)."""
    return _TYPES.get(stat.S_IFMT(st.st_mode), "unknown")


class AttrPlugin(MetaPlugin):
    """Basic file attributes: type, mode, owner, size, times, inode, devices, link target."""

    plugin_api_version = 1
    record_class = AttrRecord
    unrestorable_fields: ClassVar[frozenset[str]] = frozenset({"ctime_ns", "ino", "nlink"})

    @classmethod
    def get_prefix(cls) -> str:
        """The stream prefix ``attr``."""
        return "attr"

    @classmethod
    def get_version(cls) -> str:
        """The record layout version of this plugin."""
        return "1.0"

    @classmethod
    def is_main_meta(cls) -> bool:
        """True: ``attr`` is the main plugin, with a record for every file."""
        return True

    @classmethod
    def is_active(cls, fs: FSAbilities | str | bytes | os.PathLike[Any]) -> bool:
        """Always active: every filesystem has these attributes."""
        return True

    @classmethod
    def from_path(cls, root: bytes, index: Index, st: os.stat_result) -> AttrRecord:
        """Build the record from ``st`` (and read the link target of a symlink)."""
        kind = _TYPES.get(stat.S_IFMT(st.st_mode), "unknown")
        target = None
        size = 0
        major = minor = None
        if kind == "reg":
            size = st.st_size
        elif kind == "sym":
            target = os.readlink(index_path(root, index))
            size = st.st_size
        elif kind in _DEVICE_MODES:
            major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        return AttrRecord(
            index,
            kind,
            stat.S_IMODE(st.st_mode),
            st.st_uid,
            st.st_gid,
            _user_name(st.st_uid),
            _group_name(st.st_gid),
            size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
            st.st_nlink,
            major,
            minor,
            target,
        )

    @classmethod
    def apply(
        cls, record: AttrRecord, root: bytes, index: Index, *, dry_compare: bool = True
    ) -> bool:
        """Create the node if it is missing and not a regular file, then set owner,
        mode and mtime where they differ; return True if anything was written.

        A missing regular file raises FileNotFoundError; an existing file of another
        type raises FileExistsError (nothing is replaced).
        """
        path = index_path(root, index)
        written = False
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            _create(record, path)
            st = os.lstat(path)
            written = True
        kind = file_type(st)
        if kind != record.type:
            raise FileExistsError(
                errno.EEXIST,
                f"is a {kind}, the backup recorded a {record.type}; not replaced",
                os.fsdecode(path),
            )
        if kind == "sym" and os.readlink(path) != record.target:
            temp = path + b".pannier-tmp"
            os.symlink(record.target or b"", temp)
            os.replace(temp, path)
            st = os.lstat(path)
            written = True
        if not dry_compare or (st.st_uid, st.st_gid) != (record.uid, record.gid):
            # chown drops file capabilities: keep them (the xattr plugin may have
            # restored them already)
            capabilities = None if kind == "sym" else _capabilities(path)
            try:
                os.chown(path, record.uid, record.gid, follow_symlinks=False)
                written = True
            except PermissionError:
                if os.geteuid() == 0:
                    raise
            if capabilities is not None:
                os.setxattr(path, _CAPABILITY, capabilities)
        if kind != "sym" and (not dry_compare or stat.S_IMODE(st.st_mode) != record.mode):
            os.chmod(path, record.mode)
            written = True
        if not dry_compare or st.st_mtime_ns != record.mtime_ns:
            os.utime(path, ns=(st.st_atime_ns, record.mtime_ns), follow_symlinks=False)
            written = True
        return written


def _capabilities(path: bytes) -> bytes | None:
    """The file capabilities of ``path`` (``security.capability``), or None."""
    try:
        return os.getxattr(path, _CAPABILITY, follow_symlinks=False)
    except OSError:
        return None


def _create(record: AttrRecord, path: bytes) -> None:
    if record.type == "dir":
        os.mkdir(path, 0o700)
    elif record.type == "sym":
        os.symlink(record.target or b"", path)
    elif record.type == "fifo":
        os.mkfifo(path, 0o600)
    elif record.type in _DEVICE_MODES:
        device = os.makedev(record.rdev_major or 0, record.rdev_minor or 0)
        os.mknod(path, 0o600 | _DEVICE_MODES[record.type], device)
    else:
        raise FileNotFoundError(
            errno.ENOENT,
            f"no {record.type} file to apply attributes to (its content is restored first)",
            os.fsdecode(path),
        )


def get_plugin_class() -> type[MetaPlugin]:
    """Return the ``attr`` plugin class (the discovery entry point)."""
    return AttrPlugin

"""The restore check: is a restored tree identical to its original?

``compare_trees`` walks both trees and sorts every difference into a category (missing, extra,
kind, content, mode, mtime, owner, symlink, xattr); ``restored_root`` finds where a tool put its
copy inside a restore target.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Comparison:
    """Differences between an original tree and its restored copy, by category."""

    entries: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    mode: list[str] = field(default_factory=list)
    mtime: list[str] = field(default_factory=list)
    owner: list[str] = field(default_factory=list)
    symlink: list[str] = field(default_factory=list)
    xattr: list[str] = field(default_factory=list)

    CATEGORIES = (
        "missing",
        "extra",
        "kind",
        "content",
        "mode",
        "mtime",
        "owner",
        "symlink",
        "xattr",
    )

    @property
    def identical(self) -> bool:
        """True when no category holds a difference."""
        return not any(getattr(self, c) for c in self.CATEGORIES)

    def summary(self) -> str:
        """``identical (N entries)`` or the count of each kind of difference with an example."""
        if self.identical:
            return f"identical ({self.entries} entries)"
        parts = []
        for c in self.CATEGORIES:
            found: list[str] = getattr(self, c)
            if found:
                parts.append(f"{c}: {len(found)} (e.g. {found[0]})")
        return "DIFFERENT: " + "; ".join(parts)

    def to_json(self, limit: int = 20) -> dict[str, object]:
        """Counts and up to ``limit`` examples per category."""
        out: dict[str, object] = {"entries": self.entries, "identical": self.identical}
        for c in self.CATEGORIES:
            found: list[str] = getattr(self, c)
            out[c] = {"count": len(found), "examples": found[:limit]}
        return out


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        return {
            n: os.getxattr(path, n, follow_symlinks=False)
            for n in os.listxattr(path, follow_symlinks=False)
        }
    except OSError:
        return {}


def _same_content(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x = fa.read(1 << 20)
            y = fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def _walk(root: str) -> dict[str, os.stat_result]:
    out: dict[str, os.stat_result] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            out[os.path.relpath(p, root)] = os.lstat(p)
    out["."] = os.lstat(root)
    return out


def compare_trees(original: Path, restored: Path) -> Comparison:
    """Compare a restored tree with its original, entry by entry.

    Checked for every entry: it exists on both sides with the same type; regular files have
    the same bytes; files and directories have the same permission bits (including setuid,
    setgid, sticky), mtime to the nanosecond, owner and group, and the same xattrs (names and
    values); symlinks have the same target. Symlinks' own mtimes and modes are not checked.
    """
    a_root, b_root = str(original), str(restored)
    a, b = _walk(a_root), _walk(b_root)
    c = Comparison(entries=len(a))
    c.missing = sorted(set(a) - set(b))
    c.extra = sorted(set(b) - set(a))
    for rel in sorted(set(a) & set(b)):
        sa, sb = a[rel], b[rel]
        if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
            c.kind.append(rel)
            continue
        pa, pb = os.path.join(a_root, rel), os.path.join(b_root, rel)
        if stat.S_ISLNK(sa.st_mode):
            if os.readlink(pa) != os.readlink(pb):
                c.symlink.append(rel)
            continue
        if stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode):
            c.mode.append(rel)
        if sa.st_mtime_ns != sb.st_mtime_ns:
            c.mtime.append(rel)
        if (sa.st_uid, sa.st_gid) != (sb.st_uid, sb.st_gid):
            c.owner.append(rel)
        if _xattrs(pa) != _xattrs(pb):
            c.xattr.append(rel)
        if stat.S_ISREG(sa.st_mode) and (sa.st_size != sb.st_size or not _same_content(pa, pb)):
            c.content.append(rel)
    return c


def restored_root(target: Path, original: Path) -> Path:
    """Where a tool put the restored copy of the tree ``original`` inside ``target``.

    restic recreates the source path under the target, borg the relative path it was given,
    pannier the source's contents in the target itself. The first directory found
    breadth-first whose entries have the same names as the top of ``original`` is the copy;
    ``target / original.name`` when there is none (the check then reports everything missing).
    """
    top = set(os.listdir(original))
    queue = [target]
    while queue:
        here = queue.pop(0)
        try:
            names = os.listdir(here)
        except OSError:
            continue
        if set(names) == top:
            return here
        queue.extend(
            sorted(p for p in (here / n for n in names) if p.is_dir() and not p.is_symlink())
        )
    return target / original.name

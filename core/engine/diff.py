"""Comparing two snapshot trees entry by entry (``pannier diff``).

:func:`diff_trees` walks two trees side by side in index order (constant memory) and
yields a :class:`Change` per entry that differs:

* ``+`` added (only in the second tree), ``-`` removed (only in the first);
* ``T`` the type changed (a file became a symlink...);
* ``M`` the content changed (other chunk ids, other size, other link target or device);
* ``U`` only metadata changed (mode, owner or mtime; with :func:`diff_snapshots` also
  extended attributes, ACLs and the records of any other metadata plugin).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import attrs

from ..meta import MetaPlugin
from ..source import index_to_path
from .meta import MetaApplier
from .snapshots import load_tree
from .tree import TreeEntry

__all__ = ["Change", "compare", "diff_snapshots", "diff_trees"]


class Change(NamedTuple):
    """One difference: its kind (``+ - T M U``), the entry's path, and the entries."""

    kind: str
    path: str
    old: TreeEntry | None
    new: TreeEntry | None


def _content(e: TreeEntry) -> object:
    if e.kind == "f":
        return (e.size, tuple(e.data or ()))
    if e.kind == "h":
        return tuple(e.data)
    return e.data


def compare(old: TreeEntry, new: TreeEntry) -> str | None:
    """The change kind between two entries of the same index, or None when equal."""
    if old.kind != new.kind:
        return "T"
    if _content(old) != _content(new):
        return "M"
    if (old.mode, old.uid, old.gid) != (new.mode, new.uid, new.gid):
        return "U"
    if old.kind != "d" and old.mtime_ns != new.mtime_ns:
        return "U"
    return None


def diff_trees(first: Iterable[TreeEntry], second: Iterable[TreeEntry]) -> Iterator[Change]:
    """Yield the changes from tree ``first`` to tree ``second`` in index order."""
    a_it, b_it = iter(first), iter(second)
    a, b = next(a_it, None), next(b_it, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a.index < b.index):
            assert a is not None
            yield Change("-", index_to_path(a.index), a, None)
            a = next(a_it, None)
        elif a is None or b.index < a.index:
            yield Change("+", index_to_path(b.index), None, b)
            b = next(b_it, None)
        else:
            kind = compare(a, b)
            if kind is not None:
                yield Change(kind, index_to_path(a.index), a, b)
            a, b = next(a_it, None), next(b_it, None)


def diff_snapshots(
    repo: Any, first: Any, second: Any, meta_plugins: Sequence[type[MetaPlugin]] | None = None
) -> Iterator[Change]:
    """Yield the changes from snapshot ``first`` to ``second``: :func:`diff_trees`'s, and
    ``U`` for an entry whose records of a secondary metadata plugin differ (an extended
    attribute or an ACL changed), in index order. The main plugin's records are not
    compared: the tree already holds type, mode, owner, size and times."""
    ma = MetaApplier(repo, first, meta_plugins)
    mb = MetaApplier(repo, second, meta_plugins)
    try:
        prefixes = [
            c.get_prefix() for c in ma.plugins if mb.has(c.get_prefix()) and not c.is_main_meta()
        ]
        ignored = {
            c.get_prefix(): set(getattr(c, "unrestorable_fields", ())) | {"index"}
            for c in ma.plugins
        }
        a_it = ma.join((e.index, {"": e}) for e in load_tree(repo, first))
        b_it = mb.join((e.index, {"": e}) for e in load_tree(repo, second))
        a, b = next(a_it, None), next(b_it, None)
        while a is not None or b is not None:
            if b is None or (a is not None and a[0] < b[0]):
                assert a is not None
                yield Change("-", index_to_path(a[0]), a[1][""], None)
                a = next(a_it, None)
            elif a is None or b[0] < a[0]:
                yield Change("+", index_to_path(b[0]), None, b[1][""])
                b = next(b_it, None)
            else:
                old, new = a[1][""], b[1][""]
                kind = compare(old, new)
                if kind is None and any(
                    _record_differs(a[1].get(p), b[1].get(p), ignored[p]) for p in prefixes
                ):
                    kind = "U"
                if kind is not None:
                    yield Change(kind, index_to_path(a[0]), old, new)
                a, b = next(a_it, None), next(b_it, None)
    finally:
        ma.close()
        mb.close()


def _record_differs(old: Any, new: Any, ignored: set[str]) -> bool:
    if old is None or new is None:
        return (old is None) != (new is None)
    a = {k: v for k, v in attrs.asdict(old, recurse=False).items() if k not in ignored}
    b = {k: v for k, v in attrs.asdict(new, recurse=False).items() if k not in ignored}
    return a != b

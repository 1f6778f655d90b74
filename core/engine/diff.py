"""Comparing two snapshot trees entry by entry (``pannier diff``).

:func:`diff_trees` walks two trees side by side in index order (constant memory) and
yields a :class:`Change` per entry that differs:

* ``+`` added (only in the second tree), ``-`` removed (only in the first);
* ``T`` the type changed (a file became a symlink...);
* ``M`` the content changed (other chunk ids, other size, other link target or device);
* ``U`` only metadata changed (mode, owner or mtime).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from ..source import index_to_path
from .tree import TreeEntry

__all__ = ["Change", "diff_trees"]


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

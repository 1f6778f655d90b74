"""The tree reader's field checks: every sound entry passes, every hostile field is named."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pannier.engine.tree import TreeEntry, TreeWriter, iter_tree
from pannier.errors import CorruptObjectError

ID = b"\x07" * 32


def record(**fields: Any) -> TreeEntry:
    base = TreeEntry((b"x",), "f", 0o100644, 1000, 1000, 5, -(10**18), 10**18, 42, (ID,), 0)
    return base._replace(**fields)


def read_one(e: TreeEntry) -> TreeEntry:
    f = io.BytesIO()
    w = TreeWriter(f)
    w.add(e)
    w.close()
    (got,) = iter_tree([f.getvalue()])
    return got


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"data": None},
        {"data": ()},
        {"kind": "d", "data": None},
        {"kind": "p", "data": None},
        {"kind": "l", "data": b"target"},
        {"kind": "h", "data": (b"a", b"b")},
        {"kind": "c", "data": 259},
        {"kind": "b", "data": 0},
        {"uid": 2**32 - 1, "size": 2**64 - 1, "ino": 2**64 - 1, "flags": 1},
    ],
)
def test_sound_entries_are_read_back(fields: dict[str, Any]) -> None:
    e = record(**fields)
    assert read_one(e) == e


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "s"}, "has an unknown kind 's'"),
        ({"kind": {"k": 1}}, "has an unknown kind"),
        ({"mode": -1}, "has a bad mode -1"),
        ({"mode": True}, "has a bad mode True"),
        ({"uid": 2**32}, "has a bad uid"),
        ({"gid": "0"}, "has a bad gid '0'"),
        ({"mtime_ns": 2**63}, "has a bad mtime"),
        ({"ctime_ns": 1.5}, "has a bad ctime 1.5"),
        ({"ino": -3}, "has a bad inode -3"),
        ({"flags": None}, "has a bad flags None"),
        ({"data": (b"short",)}, "has bad data for kind 'f'"),
        ({"data": b"x" * 32}, "has bad data for kind 'f'"),
        ({"kind": "l", "data": 10**9}, "has bad data for kind 'l'"),
        ({"kind": "h", "data": ()}, "has bad data for kind 'h'"),
        ({"kind": "c", "data": -1}, "has bad data for kind 'c'"),
    ],
)
def test_hostile_fields_are_named(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(CorruptObjectError, match=r"record 0 \(/x\) " + message.replace("(", r"\(")):
        read_one(record(**fields))

"""Fixtures for the engine tests: a real repository on the ``file`` backend, and a
source tree holding every kind of entry the filesystem source records."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pannier.backend_registry import get_backend
from pannier.plugin import PluginKind
from pannier.registry import get_plugin_manager
from pannier.repo import KdfParams, Repository

#: Cheap key derivation so tests do not spend seconds in Argon2id.
FAST_KDF = KdfParams(memory_cost=1024, iterations=1, lanes=1)
PASSWORD = "engine test password"


@pytest.fixture
def repo_url(tmp_path: Path) -> str:
    return (tmp_path / "repo").as_uri()


@pytest.fixture
def repo(repo_url: str) -> Iterator[Repository]:
    r = Repository.init(get_backend(repo_url), PASSWORD, kdf=FAST_KDF)
    yield r
    r.close()


@pytest.fixture
def reopen(repo_url: str) -> Iterator[Callable[[], Repository]]:
    """Open the repository again (a new process would): nothing cached in memory."""
    opened: list[Repository] = []

    def _open() -> Repository:
        r = Repository.open(get_backend(repo_url), PASSWORD)
        opened.append(r)
        return r

    yield _open
    for r in opened:
        r.close()


def make_tree(root: Path) -> dict[str, Any]:
    """Fill ``root`` with files of every kind; return facts the tests check."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "small.txt").write_text("hello\n")
    (root / "empty").write_bytes(b"")
    big = os.urandom((5 << 20) + 12345)  # more than the largest chunk: several chunks
    (root / "big.bin").write_bytes(big)
    d = root / "dir" / "deeper"
    d.mkdir(parents=True)
    (d / "leaf").write_text("leaf\n")
    os.chmod(d / "leaf", 0o640)
    os.symlink("../small.txt", root / "dir" / "link")
    os.symlink("/nonexistent/target", root / "dangling")
    os.link(root / "small.txt", root / "dir" / "hardlink")
    os.mkfifo(root / "fifo")
    weird = os.fsencode(root) + b"/caf\xe9-\xff.bin"  # not UTF-8
    with open(weird, "wb") as f:
        f.write(b"latin-1 name\n")
    sparse = root / "sparse"
    with open(sparse, "wb") as f:
        f.write(b"head")
        f.seek(8 << 20)
        f.write(b"tail")
    os.setxattr(root / "small.txt", "user.colour", b"blue")
    os.utime(root / "dir" / "deeper", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    return {"big": big}


def filesystem_source(path: Path) -> Any:
    """The ``filesystem`` source plugin on ``path``, as the registry gives it."""
    return get_plugin_manager().get(PluginKind.SOURCE, "filesystem")(str(path), {})


def digest_tree(src: Path) -> dict[tuple[bytes, ...], bytes]:
    """Create ``src`` with files of the sizes the content digest paths tell apart (empty,
    small, exactly the one-blob limit, several chunks, many small ones in a directory)
    and a symlink; return each file's index and content."""
    src.mkdir()
    files = {
        (b"empty",): b"",
        (b"small",): b"small file\n",
        (b"edge",): os.urandom(256 * 1024),  # exactly the one-blob limit
        (b"big",): os.urandom(3 * 1024 * 1024 + 5),  # several chunks
        (b"d", b"inner"): b"in a directory\n",
    }
    (src / "d").mkdir()
    for i in range(40):  # enough small files for more than one read of a pack
        files[(b"d", f"f{i:02}".encode())] = os.urandom(3000 + i)
    for index, data in files.items():
        src.joinpath(*(os.fsdecode(c) for c in index)).write_bytes(data)
    os.chmod(src / "small", 0o664)  # group write: cleared by a 022 umask on create
    os.utime(src / "small", ns=(1_000_000_123, 1_500_000_000_987_654_321))
    os.symlink("small", src / "link")
    return files


def tree_facts(root: Path) -> dict[bytes, tuple[Any, ...]]:
    """Per relative path: type, mode, mtime (ns), content or link target, user xattrs,
    and for hard links the relative path of the first name of the inode."""
    out: dict[bytes, tuple[Any, ...]] = {}
    inodes: dict[tuple[int, int], bytes] = {}
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, base)
            st = os.lstat(path)
            kind = st.st_mode & 0o170000
            data: Any = None
            first = None
            if os.path.islink(path):
                data = os.readlink(path)
            elif kind == 0o100000:
                with open(path, "rb") as f:
                    data = f.read()
                key = (st.st_dev, st.st_ino)
                first = inodes.setdefault(key, rel)
            xattrs: Any = ()
            if not os.path.islink(path):
                xattrs = tuple(
                    sorted(
                        (n, os.getxattr(path, n))
                        for n in os.listxattr(path)
                        if n.startswith("user.")
                    )
                )
            mtime = st.st_mtime_ns
            out[rel] = (kind, st.st_mode & 0o7777, mtime, data, xattrs, first)
    return out


def assert_same_tree(a: Path, b: Path) -> None:
    """Fail naming the first path that differs between the trees ``a`` and ``b``."""
    fa, fb = tree_facts(a), tree_facts(b)
    assert sorted(fa) == sorted(fb)
    for rel in fa:
        assert fa[rel] == fb[rel], rel
    st_a, st_b = os.stat(a), os.stat(b)
    assert (st_a.st_mode, st_a.st_mtime_ns) == (st_b.st_mode, st_b.st_mtime_ns)

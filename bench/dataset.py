"""Build the backup benchmark dataset from real files found on this machine.

The dataset is about 1 GB in about 50,000 files, made only of real data (never random bytes):

* ``python/``  the standard library of the Python running this script (without site-packages);
* ``doc/``     a copy of /usr/share/doc;
* ``include/`` a copy of /usr/include;
* ``man/``     a copy of /usr/share/man;
* ``python-dist/`` a copy of /usr/lib/python3/dist-packages (Debian's Python packages), which
  brings the tree to about 50,000 entries;
* ``bin/``     three real binaries of 100-200 MB found under /usr/lib, /usr/local and /opt
  (compressed archives are skipped); when fewer than three exist, real shared libraries are
  concatenated into one of 100-200 MB instead.

Regular files are copied with their mode, mtime (ns) and xattrs; symlinks are copied as links
(the Debian documentation tree has thousands); directories keep their mode and mtime. On top of
that, every 97th regular file and every 50th directory gets a ``user.pannier-bench`` xattr, and a
``links/`` directory holds a few relative, absolute and dangling symlinks, so that a restore check
covers xattrs and every kind of link.

Building is deterministic on a given machine: sources are walked in sorted order, and the
fingerprint of a built dataset (a SHA-256 over every path, type, size, mode, mtime, link target
and xattr) is stored in ``<dest>.manifest.json`` beside it. ``ensure_dataset`` reuses a dataset
whose fingerprint still matches and that has not been mutated, and rebuilds it otherwise.

Usage::

    python bench/dataset.py [DEST]          # default DEST: bench/data/dataset
    python bench/dataset.py --check DEST    # print the fingerprint of an existing tree
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import stat
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_DEST = BENCH_DIR / "data" / "dataset"

#: Trees copied whole, as (name in the dataset, source directory).
TREE_SOURCES: tuple[tuple[str, str], ...] = (
    ("doc", "/usr/share/doc"),
    ("include", "/usr/include"),
    ("man", "/usr/share/man"),
    ("python-dist", "/usr/lib/python3/dist-packages"),
)
#: Where large real binaries are looked for, in this order.
BINARY_ROOTS: tuple[str, ...] = ("/usr/lib", "/usr/local", "/opt")
BINARY_MIN = 100 * 1000 * 1000
BINARY_MAX = 200 * 1000 * 1000
BINARY_COUNT = 3
#: File starts that mark an already-compressed file (zip/wheel/jar, gzip, xz, zstd, bzip2, 7z).
COMPRESSED_MAGIC: tuple[bytes, ...] = (
    b"PK\x03\x04",
    b"\x1f\x8b",
    b"\xfd7zXZ",
    b"\x28\xb5\x2f\xfd",
    b"BZh",
    b"7z\xbc\xaf",
)
XATTR_NAME = "user.pannier-bench"
XATTR_FILE_EVERY = 97
XATTR_DIR_EVERY = 50


@dataclass
class Manifest:
    """What a built dataset holds: counts, bytes, the sources used and its fingerprint."""

    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    xattrs: int = 0
    bytes: int = 0
    fingerprint: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    binaries: list[str] = field(default_factory=list)
    mutated: str | None = None
    built_seconds: float = 0.0

    def save(self, dest: Path) -> None:
        """Write this manifest to ``<dest>.manifest.json``."""
        manifest_path(dest).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, dest: Path) -> Manifest | None:
        """Read the manifest of ``dest``; None when there is none or it is unreadable."""
        try:
            data = json.loads(manifest_path(dest).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def manifest_path(dest: Path) -> Path:
    """The manifest file kept beside (never inside) the dataset directory ``dest``."""
    return dest.with_name(dest.name + ".manifest.json")


def stdlib_dir() -> Path:
    """The standard library directory of the running Python."""
    return Path(sysconfig.get_paths()["stdlib"]).resolve()


def _is_compressed(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError:
        return True
    return any(head.startswith(m) for m in COMPRESSED_MAGIC)


def _stem(name: str) -> str:
    return name.split(".")[0].split("-")[0]


def _walk_files(root: str) -> Iterator[Path]:
    """Every regular file under ``root`` in sorted order, not following links or mounts."""
    try:
        root_dev = os.stat(root).st_dev
    except OSError:
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if os.lstat(os.path.join(dirpath, d)).st_dev == root_dev
        )
        for name in sorted(filenames):
            yield Path(dirpath, name)


def find_binaries(roots: tuple[str, ...] = BINARY_ROOTS) -> list[Path]:
    """Up to three real, uncompressed files of 100-200 MB with different name stems.

    Candidates are taken in sorted path order, so the choice is stable on one machine.
    """
    chosen: list[Path] = []
    stems: set[str] = set()
    for root in roots:
        for path in _walk_files(root):
            try:
                st = path.lstat()
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or not BINARY_MIN <= st.st_size <= BINARY_MAX:
                continue
            if _stem(path.name) in stems or _is_compressed(path):
                continue
            chosen.append(path)
            stems.add(_stem(path.name))
            if len(chosen) == BINARY_COUNT:
                return chosen
    return chosen


def _concatenated_binary(dest: Path, exclude: set[Path]) -> str:
    """Fill ``dest`` with real shared libraries, concatenated until it is 100-200 MB."""
    total = 0
    parts = 0
    with dest.open("wb") as out:
        for path in _walk_files("/usr/lib"):
            if path in exclude or ".so" not in path.name:
                continue
            try:
                size = path.lstat().st_size
                if size > BINARY_MAX - total or _is_compressed(path):
                    continue
                with path.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            except OSError:
                continue
            total += size
            parts += 1
            if total >= (BINARY_MIN + BINARY_MAX) // 2:
                break
    if total < BINARY_MIN:
        raise SystemExit(f"dataset: not enough shared libraries to build {dest.name}")
    os.utime(dest, ns=(1_600_000_000 * 10**9, 1_600_000_000 * 10**9))
    return f"{parts} shared libraries from /usr/lib concatenated"


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst``: files with metadata and xattrs, links as links, dirs last."""
    dirs: list[tuple[Path, Path]] = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel = Path(dirpath).relative_to(src)
        out_dir = dst / rel
        out_dir.mkdir(parents=True, exist_ok=True)
        dirs.append((Path(dirpath), out_dir))
        # os.walk lists symlinks to directories among dirnames: copy them as links.
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = [d for d in dirnames if d not in links and d != "site-packages"]
        for name in sorted(filenames + links):
            s = Path(dirpath, name)
            d = out_dir / name
            st = s.lstat()
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(s), d)
                os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            elif stat.S_ISREG(st.st_mode):
                try:
                    shutil.copy2(s, d, follow_symlinks=False)
                except PermissionError:
                    continue
    for s_dir, d_dir in reversed(dirs):
        shutil.copystat(s_dir, d_dir, follow_symlinks=False)


def _add_links(dest: Path) -> None:
    links = dest / "links"
    links.mkdir()
    os.symlink("../python/os.py", links / "relative-file")
    os.symlink("../include", links / "relative-dir")
    os.symlink("/etc/hostname", links / "absolute")
    os.symlink("../no/such/file", links / "dangling")
    os.symlink("relative-file", links / "chain")
    for link in sorted(links.iterdir()):
        os.utime(link, ns=(1_650_000_000 * 10**9, 1_650_000_000 * 10**9), follow_symlinks=False)
    os.utime(links, ns=(1_650_000_000 * 10**9, 1_650_000_000 * 10**9))


def _add_xattrs(dest: Path) -> None:
    """Give every 97th regular file and every 50th directory a deterministic user xattr."""
    n_file = n_dir = 0
    for dirpath, dirnames, filenames in os.walk(dest):
        dirnames.sort()
        here = Path(dirpath)
        if n_dir % XATTR_DIR_EVERY == 0:
            _set_xattr(here, dest)
        n_dir += 1
        for name in sorted(filenames):
            p = here / name
            if p.is_symlink():
                continue
            if n_file % XATTR_FILE_EVERY == 0:
                _set_xattr(p, dest)
            n_file += 1


def _set_xattr(path: Path, root: Path) -> None:
    st = path.lstat()
    rel = str(path.relative_to(root)).encode("utf-8", "surrogateescape")
    value = b"origin=" + hashlib.sha256(rel).hexdigest()[:16].encode()
    os.setxattr(path, XATTR_NAME, value)
    # Setting an xattr changes ctime only; keep the copied mtime exactly.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def fingerprint(root: Path) -> Manifest:
    """Walk ``root`` and count what it holds; the fingerprint covers all compared metadata."""
    m = Manifest()
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            kind = stat.S_IFMT(st.st_mode)
            target = os.readlink(p) if stat.S_ISLNK(st.st_mode) else ""
            xattrs = [] if stat.S_ISLNK(st.st_mode) else sorted(os.listxattr(p))
            m.xattrs += len(xattrs)
            size = st.st_size if stat.S_ISREG(st.st_mode) else 0
            h.update(
                f"{rel}\0{kind}\0{size}\0{stat.S_IMODE(st.st_mode)}\0{st.st_mtime_ns}\0"
                f"{target}\0{','.join(xattrs)}\n".encode("utf-8", "surrogateescape")
            )
            if stat.S_ISLNK(st.st_mode):
                m.symlinks += 1
            elif stat.S_ISDIR(st.st_mode):
                m.dirs += 1
            elif stat.S_ISREG(st.st_mode):
                m.files += 1
                m.bytes += st.st_size
    m.fingerprint = h.hexdigest()
    return m


def build(dest: Path) -> Manifest:
    """Build the dataset into ``dest`` (which must not exist) and write its manifest."""
    start = time.monotonic()
    dest.mkdir(parents=True)
    sources: dict[str, str] = {"python": str(stdlib_dir())}
    sources.update({name: src for name, src in TREE_SOURCES if Path(src).is_dir()})
    for name, src in sources.items():
        print(f"dataset: copying {src} -> {name}/", flush=True)
        _copy_tree(Path(src), dest / name)
    bin_dir = dest / "bin"
    bin_dir.mkdir()
    binaries = find_binaries()
    described: list[str] = []
    for path in binaries:
        print(f"dataset: copying binary {path}", flush=True)
        shutil.copy2(path, bin_dir / path.name)
        described.append(str(path))
    if len(binaries) < BINARY_COUNT:
        for i in range(BINARY_COUNT - len(binaries)):
            out = bin_dir / f"concatenated-{i}.bin"
            described.append(_concatenated_binary(out, set(binaries)))
    os.utime(bin_dir, ns=(1_650_000_000 * 10**9, 1_650_000_000 * 10**9))
    _add_links(dest)
    _add_xattrs(dest)
    os.utime(dest, ns=(1_650_000_000 * 10**9, 1_650_000_000 * 10**9))
    manifest = fingerprint(dest)
    manifest.sources = sources
    manifest.binaries = described
    manifest.built_seconds = round(time.monotonic() - start, 1)
    manifest.save(dest)
    return manifest


def ensure_dataset(dest: Path) -> Manifest:
    """Return the manifest of a pristine dataset at ``dest``, rebuilding it when needed.

    A dataset is reused when its manifest exists, it was never mutated and its fingerprint
    still matches the tree; otherwise the tree is deleted and built again.
    """
    saved = Manifest.load(dest)
    if saved is not None and saved.mutated is None and dest.is_dir():
        current = fingerprint(dest)
        if current.fingerprint == saved.fingerprint:
            return saved
        print("dataset: fingerprint changed, rebuilding", flush=True)
    if dest.exists():
        shutil.rmtree(dest)
    return build(dest)


def describe(m: Manifest) -> str:
    """One line with the size and shape of a dataset."""
    return (
        f"{m.bytes / 1e9:.2f} GB in {m.files} files, {m.dirs} dirs, {m.symlinks} symlinks, "
        f"{m.xattrs} xattrs; fingerprint {m.fingerprint[:16]}"
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: build (or reuse) the dataset, or print the fingerprint of a tree."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", nargs="?", type=Path, default=DEFAULT_DEST)
    parser.add_argument("--check", action="store_true", help="only fingerprint DEST")
    parser.add_argument("--rebuild", action="store_true", help="delete DEST and build again")
    args = parser.parse_args(argv)
    dest: Path = args.dest.resolve()
    if args.check:
        print(describe(fingerprint(dest)))
        return 0
    if args.rebuild and dest.exists():
        shutil.rmtree(dest)
    m = ensure_dataset(dest)
    print(f"dataset: {dest.name}: {describe(m)}")
    for b in m.binaries:
        print(f"dataset: binary from {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

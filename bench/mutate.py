"""Apply a deterministic, seeded mutation to about 1 % of the benchmark dataset.

What a day of use does to a tree, scaled to the dataset (``n`` = 1 % of its regular files):

* ``0.4 n`` files edited in place: half get a same-size overwrite of 64 bytes at a seeded offset
  (the size does not change, only the mtime tells), half get a line inserted in the middle
  (every later byte shifts, which content-defined chunking must absorb);
* one large binary gets 4 KiB overwritten in its middle, and another one an 8 MiB append;
* ``0.2 n`` new files, copies of existing files with a seeded line added, half of them in a new
  directory;
* ``0.2 n`` files deleted and ``0.2 n`` files renamed within their directory.

Inserted and appended bytes come from a ``random.Random(seed)`` stream, so the same seed on the
same dataset gives the same tree, mtimes (ns) included: every touched file and directory gets a
fixed mtime. A dataset is mutated once; its manifest (see dataset.py) records the seed, and a
second mutation is refused.

Usage::

    python bench/mutate.py [DEST] [--seed N]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from dataset import DEFAULT_DEST, Manifest

DEFAULT_SEED = 20261122
#: Base of the mtimes given to touched entries (2026-01-01T00:00:00Z), plus i seconds.
MTIME_BASE_NS = 1_767_225_600 * 10**9
APPEND_BYTES = 8 * 1024 * 1024
OVERWRITE_BYTES = 64
BINARY_OVERWRITE_BYTES = 4096


@dataclass
class Mutation:
    """What a mutation did: counts of each change and the bytes written."""

    seed: int = DEFAULT_SEED
    edited_same_size: int = 0
    edited_inserted: int = 0
    binary_overwritten: int = 0
    appended_bytes: int = 0
    new_files: int = 0
    deleted: int = 0
    renamed: int = 0
    bytes_written: int = 0

    @property
    def touched(self) -> int:
        """Number of files changed, created, deleted or renamed."""
        return (
            self.edited_same_size
            + self.edited_inserted
            + self.binary_overwritten
            + (1 if self.appended_bytes else 0)
            + self.new_files
            + self.deleted
            + self.renamed
        )


def regular_files(root: Path) -> list[Path]:
    """Every regular file under ``root`` (links excluded), in sorted order."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath, name)
            if not p.is_symlink():
                out.append(p)
    return out


class _Clock:
    """Hands out distinct, fixed mtimes, so a mutated tree is the same on every run."""

    def __init__(self) -> None:
        self.i = 0

    def stamp(self, path: Path) -> None:
        self.i += 1
        ns = MTIME_BASE_NS + self.i * 1_000_000_007
        os.utime(path, ns=(ns, ns), follow_symlinks=False)


def mutate(root: Path, seed: int = DEFAULT_SEED) -> Mutation:
    """Mutate the tree at ``root`` in place with ``seed``; return what was done.

    The same seed on the same tree makes the same changes, in the same order, with the same
    bytes and mtimes.
    """
    rng = random.Random(seed)
    clock = _Clock()
    files = regular_files(root)
    bin_dir = root / "bin"
    binaries = sorted(p for p in files if p.parent == bin_dir)
    small = [p for p in files if p.parent != bin_dir]
    n = max(5, round(len(files) * 0.01))
    picked = rng.sample(small, k=n)
    edit = picked[: n * 2 // 5]
    delete = picked[n * 2 // 5 : n * 3 // 5]
    rename = picked[n * 3 // 5 : n * 4 // 5]
    copy_from = picked[n * 4 // 5 :]
    m = Mutation(seed=seed)
    touched_dirs: set[Path] = set()

    for i, path in enumerate(edit):
        data = bytearray(path.read_bytes())
        if i % 2 == 0 and len(data) > OVERWRITE_BYTES:
            off = rng.randrange(len(data) - OVERWRITE_BYTES)
            with path.open("r+b") as f:
                f.seek(off)
                f.write(rng.randbytes(OVERWRITE_BYTES))
            m.edited_same_size += 1
            m.bytes_written += OVERWRITE_BYTES
        else:
            line = b"# pannier-bench edit %d: %s\n" % (i, rng.randbytes(12).hex().encode())
            cut = data.find(b"\n", len(data) // 2) + 1 if data else 0
            data[cut:cut] = line
            path.write_bytes(bytes(data))
            m.edited_inserted += 1
            m.bytes_written += len(data)
        clock.stamp(path)

    if binaries:
        target = binaries[0]
        size = target.stat().st_size
        with target.open("r+b") as f:
            f.seek(size // 2)
            f.write(rng.randbytes(BINARY_OVERWRITE_BYTES))
        clock.stamp(target)
        m.binary_overwritten += 1
        m.bytes_written += BINARY_OVERWRITE_BYTES
        grown = binaries[-1]
        with grown.open("ab") as f:
            f.write(rng.randbytes(APPEND_BYTES))
        clock.stamp(grown)
        m.appended_bytes = APPEND_BYTES
        m.bytes_written += APPEND_BYTES

    for path in delete:
        path.unlink()
        touched_dirs.add(path.parent)
        m.deleted += 1

    for path in rename:
        new = path.with_name(path.name + ".renamed")
        path.rename(new)
        touched_dirs.add(path.parent)
        m.renamed += 1

    new_dir = root / "new"
    new_dir.mkdir()
    for i, src in enumerate(copy_from):
        if not src.exists():
            continue
        dest_dir = new_dir if i % 2 == 0 else src.parent
        dest = dest_dir / f"new-{i:04d}-{src.name}"
        shutil.copyfile(src, dest)
        with dest.open("ab") as f:
            line = b"\n# pannier-bench new file %d: %s\n" % (i, rng.randbytes(12).hex().encode())
            f.write(line)
        os.chmod(dest, 0o644)
        clock.stamp(dest)
        touched_dirs.add(dest_dir)
        m.new_files += 1
        m.bytes_written += dest.stat().st_size

    for d in sorted(touched_dirs | {new_dir, root}):
        clock.stamp(d)
    return m


def mutate_dataset(dest: Path, seed: int = DEFAULT_SEED) -> Mutation:
    """Mutate the built dataset at ``dest`` once and record the seed in its manifest.

    A dataset without a manifest, or one already mutated, is refused with SystemExit.
    """
    manifest = Manifest.load(dest)
    if manifest is None:
        raise SystemExit(f"mutate: {dest} has no manifest; build it with bench/dataset.py")
    if manifest.mutated is not None:
        raise SystemExit(f"mutate: {dest} was already mutated ({manifest.mutated})")
    # Record first: a mutation cut short must not leave a tree that looks pristine.
    manifest.mutated = f"seed {seed}"
    manifest.save(dest)
    return mutate(dest, seed)


def main(argv: list[str] | None = None) -> int:
    """Command line: mutate a dataset and print what changed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", nargs="?", type=Path, default=DEFAULT_DEST)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    m = mutate_dataset(args.dest.resolve(), args.seed)
    print(f"mutate: {m.touched} files touched, {m.bytes_written / 1e6:.1f} MB written")
    for k, v in asdict(m).items():
        print(f"  {k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

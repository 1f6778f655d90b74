"""Hostile snapshots: restore never writes outside its target, never follows a planted
symlink, and reports every entry it refuses with a one-line error.

Each case writes a *crafted* snapshot into a real encrypted ``file://`` repository through
the repository API (content blobs, a tree stream packed by hand so that it can say what
an honest backup never would, the snapshot object last), then runs the real
``pannier restore`` as a subprocess into ``base/target`` and checks that

* the sibling directory ``base/outside`` (the planted symlinks point at it) is exactly as
  it was: same files, modes, content, times, link counts;
* nothing in the target is a file the snapshot did not name safely (no temporary files
  left over, no hard link to a file outside);
* the honest entries of the same snapshot were restored (the refusal is per entry);
* the process ended with a clean exit code and a ``pannier:`` line, never a traceback.

The device node case restores as the unprivileged user ``nobody`` (``setpriv``), where
creating a device must be refused and reported.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgpack
import pytest
from pannier.backend_registry import get_backend
from pannier.repo import Repository
from pannier.repo.snapshot import Snapshot

from tests.reliability.conftest import (
    PASSWORD,
    RepoHandle,
    init_repo,
    json_lines,
    pannier_argv,
    pannier_env,
    run_pannier,
    tree_facts,
)
from tests.servers import unavailable

DIR = stat.S_IFDIR | 0o755
FILE = stat.S_IFREG | 0o644
LINK = stat.S_IFLNK | 0o777
MTIME = 1_600_000_000_000_000_000

#: Bytes every planted file would write: finding them anywhere outside is a failure.
EVIL = b"EVIL CONTENT FROM A HOSTILE SNAPSHOT\n"
#: What the victim outside the target holds.
PRECIOUS = b"precious data outside the restore target\n"


# --------------------------------------------------------------------------- crafting


def rec(
    index: Sequence[bytes],
    kind: str,
    *,
    mode: int | None = None,
    size: int = 0,
    data: Any = None,
    flags: int = 0,
    uid: int = 0,
    gid: int = 0,
) -> list[Any]:
    """One raw tree record ``[index, kind, mode, uid, gid, size, mtime, ctime, inode,
    data, flags]`` (see docs/format-tree.md); fields are not checked."""
    default = {"d": DIR, "f": FILE, "l": LINK, "h": FILE}.get(kind, stat.S_IFCHR | 0o644)
    return [
        list(index),
        kind,
        default if mode is None else mode,
        uid if uid else os.getuid(),
        gid if gid else os.getgid(),
        size,
        MTIME,
        MTIME,
        1,
        data,
        flags,
    ]


class Crafter:
    """Write crafted snapshots into an open repository."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    def content(self, data: bytes) -> list[bytes]:
        """Store ``data`` as file content; its chunk ids."""
        return self.repo.store_bytes(data, kind="data")

    def file(self, index: Sequence[bytes], data: bytes, **kw: Any) -> list[Any]:
        """A regular-file record holding ``data`` (``size`` may be overridden)."""
        kw.setdefault("size", len(data))
        return rec(index, "f", data=self.content(data), **kw)

    def snapshot(self, records: list[list[Any]], *, sort: bool = True) -> str:
        """Save a snapshot whose tree stream is the top directory then ``records`` (in
        index order unless ``sort`` is false: a hostile stream may be out of order);
        return its id."""
        if sort:
            records = sorted(records, key=lambda r: tuple(r[0]))
        packer = msgpack.Packer(use_bin_type=True)
        stream = packer.pack({"format": "pannier-tree", "version": 1})
        stream += packer.pack(rec([], "d"))
        for r in records:
            stream += packer.pack(r)
        stream += packer.pack({"end": len(records) + 1})
        tree = self.repo.store_bytes(stream, kind="tree")
        snap = Snapshot(hostname="hostile", paths=["/hostile"], version=1, streams={"tree": tree})
        return self.repo.save_snapshot(snap)


@pytest.fixture(scope="module")
def hostile_repo(tmp_path_factory: pytest.TempPathFactory) -> RepoHandle:
    """One encrypted repository shared by the cases of this module (a snapshot each)."""
    return init_repo(tmp_path_factory.mktemp("hostile") / "repo")


@pytest.fixture
def crafter(hostile_repo: RepoHandle) -> Iterator[Crafter]:
    repo = Repository.open(get_backend(hostile_repo.url), PASSWORD)
    try:
        with repo.lock():
            yield Crafter(repo)
    finally:
        repo.close()


# --------------------------------------------------------------------------- the scene


class Scene:
    """``base/outside`` (a victim file and directory) next to ``base/target``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.outside = base / "outside"
        self.target = base / "target"
        self.outside.mkdir(parents=True)
        (self.outside / "victim.txt").write_bytes(PRECIOUS)
        (self.outside / "victim.txt").chmod(0o600)
        (self.outside / "dir").mkdir()
        (self.outside / "dir" / "victim2.txt").write_bytes(PRECIOUS)
        os.chmod(self.outside, 0o755)
        self.before = self.facts()

    @property
    def victim(self) -> bytes:
        return os.fsencode(self.outside / "victim.txt")

    def facts(self) -> dict[str, Any]:
        facts = tree_facts(self.outside)
        st = self.outside.stat()
        facts[""] = (stat.S_IMODE(st.st_mode), st.st_mtime_ns, st.st_nlink)
        for p in self.outside.rglob("*"):
            lst = p.lstat()
            facts["nlink:" + str(p.relative_to(self.outside))] = (lst.st_nlink, lst.st_ctime_ns)
        return facts

    def assert_outside_untouched(self) -> None:
        assert self.facts() == self.before, "the restore changed files outside its target"
        assert sorted(p.name for p in self.base.iterdir()) == ["outside", "target"]

    def assert_target_clean(self) -> None:
        """No temporary file left in the target, no EVIL file reachable through a link
        to the outside, no hard link shared with the outside."""
        outside_inodes = {(p.lstat().st_dev, p.lstat().st_ino) for p in self.outside.rglob("*")}
        for dirpath, dirnames, filenames in os.walk(self.target):
            for name in dirnames + filenames:
                assert ".pannier-tmp" not in name, f"temporary file left: {dirpath}/{name}"
                st = os.lstat(os.path.join(dirpath, name))
                assert (st.st_dev, st.st_ino) not in outside_inodes, (
                    f"{dirpath}/{name} is a hard link to a file outside the target"
                )


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    return Scene(tmp_path / "base")


def restore(url: str, snap_id: str, target: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``pannier restore --json`` and check it ended cleanly: exit code 0
    or 1, no traceback, every error line starting with ``pannier:``."""
    done = run_pannier("restore", snap_id, "-r", url, "--target", str(target), "--json", *extra)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 1), (done.returncode, done.stderr)
    return done


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    objs = [o for o in json_lines(done.stdout) if o.get("message_type") == "summary"]
    assert len(objs) == 1, done.stdout + done.stderr
    return objs[0]


# --------------------------------------------------------------------------- cases


UNSAFE_NAMES = [
    pytest.param([b".."], id="dotdot-as-name"),
    pytest.param([b"..", b"outside", b"victim.txt"], id="dotdot-parent"),
    pytest.param([b"../outside/victim.txt"], id="slash-in-name"),
    pytest.param([b"ok", b"..", b"..", b"outside", b"victim.txt"], id="dotdot-deep"),
    pytest.param([b"", b"victim.txt"], id="empty-component"),
    pytest.param([b"."], id="dot"),
    pytest.param([b"a\0b"], id="nul"),
]


@pytest.mark.parametrize("index", UNSAFE_NAMES)
def test_unsafe_names_are_refused(
    crafter: Crafter, hostile_repo: RepoHandle, scene: Scene, index: list[bytes]
) -> None:
    """``..``, ``.``, empty names, ``/`` and NUL inside a name: refused and reported, the
    honest file of the same snapshot restored."""
    snap = crafter.snapshot(
        [
            rec([b"ok"], "d"),
            crafter.file([b"ok", b"honest.txt"], b"honest\n"),
            crafter.file(index, EVIL),
        ]
    )
    done = restore(hostile_repo.url, snap, scene.target)
    assert done.returncode == 1
    assert summary(done)["errors"], done.stdout
    assert "unsafe name" in done.stderr or "unsafe" in done.stdout
    assert (scene.target / "ok" / "honest.txt").read_bytes() == b"honest\n"
    scene.assert_outside_untouched()
    scene.assert_target_clean()


def test_absolute_paths_are_refused(
    crafter: Crafter, hostile_repo: RepoHandle, scene: Scene
) -> None:
    """A name that is an absolute path (of the victim, and of a new file beside it)."""
    abs_new = os.fsencode(scene.outside / "planted.txt")
    snap = crafter.snapshot(
        [
            crafter.file([scene.victim], EVIL),
            crafter.file([abs_new], EVIL),
            crafter.file([b"/", b"etc"], EVIL),
            crafter.file([b"honest.txt"], b"honest\n"),
        ]
    )
    done = restore(hostile_repo.url, snap, scene.target)
    assert done.returncode == 1
    assert len(summary(done)["errors"]) == 3, done.stdout
    assert (scene.target / "honest.txt").read_bytes() == b"honest\n"
    assert not (scene.outside / "planted.txt").exists()
    scene.assert_outside_untouched()
    scene.assert_target_clean()


@pytest.mark.parametrize("absolute", [True, False], ids=["absolute-link", "relative-link"])
def test_symlink_then_file_beneath(
    crafter: Crafter, hostile_repo: RepoHandle, scene: Scene, absolute: bool
) -> None:
    """A symlink to the outside directory, then a file, a directory and a file in that
    directory "beneath" it: the symlink is restored as a symlink, nothing goes through it."""
    to = os.fsencode(scene.outside) if absolute else b"../outside"
    snap = crafter.snapshot(
        [
            rec([b"lnk"], "l", data=to, size=len(to)),
            crafter.file([b"lnk", b"victim.txt"], EVIL),
            crafter.file([b"lnk", b"new.txt"], EVIL),
            rec([b"lnk", b"dir"], "d", mode=stat.S_IFDIR | 0o777),
            crafter.file([b"lnk", b"dir", b"victim2.txt"], EVIL),
            crafter.file([b"m-honest.txt"], b"honest\n"),
        ]
    )
    done = restore(hostile_repo.url, snap, scene.target)
    assert done.returncode == 1
    assert len(summary(done)["errors"]) >= 3, done.stdout
    assert os.readlink(scene.target / "lnk") == os.fsdecode(to)
    assert (scene.target / "m-honest.txt").read_bytes() == b"honest\n"
    assert not (scene.outside / "new.txt").exists()
    scene.assert_outside_untouched()
    scene.assert_target_clean()


def test_symlink_planted_in_target_is_not_followed(
    crafter: Crafter, hostile_repo: RepoHandle, scene: Scene
) -> None:
    """With --overwrite into a target that already holds a symlink ``d -> outside``, a
    snapshot with a directory ``d`` and files in it never writes through the symlink."""
    scene.target.mkdir()
    os.symlink(scene.outside, scene.target / "d")
    os.symlink(scene.outside / "victim.txt", scene.target / "f")
    snap = crafter.snapshot(
        [
            rec([b"d"], "d", mode=stat.S_IFDIR | 0o777),
            crafter.file([b"d", b"victim.txt"], EVIL),
            crafter.file([b"d", b"new.txt"], EVIL),
            crafter.file([b"f"], EVIL, mode=stat.S_IFREG | 0o666),
        ]
    )
    restore(hostile_repo.url, snap, scene.target, "--overwrite")
    scene.assert_outside_untouched()
    scene.assert_target_clean()
    # whatever the restore made of them, no path of the target leads outside any more
    for p in scene.target.rglob("*"):
        assert not p.is_symlink() or not os.path.realpath(p).startswith(str(scene.outside))


def test_hard_links_cannot_reach_outside(
    crafter: Crafter, hostile_repo: RepoHandle, scene: Scene
) -> None:
    """Hard links whose first name is outside (``..``), through a planted symlink, or a
    planted symlink itself (its metadata must not be applied through the symlink: a
    chmod that follows it would change the victim's mode)."""
    to = scene.victim
    snap = crafter.snapshot(
        [
            rec([b"a-lnk"], "l", data=to, size=len(to)),
            rec([b"b-dirlnk"], "l", data=b"../outside", size=10),
            rec([b"c-hard-to-link"], "h", mode=stat.S_IFREG | 0o646, data=[b"a-lnk"]),
            rec([b"d-hard-dotdot"], "h", data=[b"..", b"outside", b"victim.txt"]),
            rec([b"e-hard-through"], "h", data=[b"b-dirlnk", b"victim.txt"]),
            rec([b"f-hard-abs"], "h", data=[to]),
            crafter.file([b"g-honest.txt"], b"honest\n"),
        ]
    )
    done = restore(hostile_repo.url, snap, scene.target)
    assert done.returncode == 1
    errors = summary(done)["errors"]
    assert len(errors) >= 3, errors
    assert (scene.target / "g-honest.txt").read_bytes() == b"honest\n"
    scene.assert_outside_untouched()
    scene.assert_target_clean()


def test_duplicate_names_are_refused(
    crafter: Crafter, hostile_repo: RepoHandle, scene: Scene
) -> None:
    """The same name twice (a symlink to the victim, then a file of that name): the tree
    reader refuses the stream as out of order, nothing is written through the symlink."""
    to = scene.victim
    snap = crafter.snapshot(
        [
            rec([b"dup"], "l", data=to, size=len(to)),
            crafter.file([b"dup"], EVIL, mode=stat.S_IFREG | 0o666),
            crafter.file([b"dup"], EVIL),
        ],
        sort=False,
    )
    done = restore(hostile_repo.url, snap, scene.target)
    assert done.returncode == 1
    assert "out of order" in done.stderr
    scene.assert_outside_untouched()
    scene.assert_target_clean()


def test_out_of_order_dir_after_its_files(
    crafter: Crafter, hostile_repo: RepoHandle, scene: Scene
) -> None:
    """A file listed before the symlink that is its parent (out of order): refused."""
    to = os.fsencode(scene.outside)
    snap = crafter.snapshot(
        [
            crafter.file([b"x", b"victim.txt"], EVIL),
            rec([b"x"], "l", data=to, size=len(to)),
            crafter.file([b"x", b"victim.txt"], EVIL),
        ],
        sort=False,
    )
    done = restore(hostile_repo.url, snap, scene.target)
    assert done.returncode == 1
    scene.assert_outside_untouched()
    scene.assert_target_clean()


HUGE = [
    pytest.param(2**62, 0, id="size-2^62"),
    pytest.param(2**62, 1, id="size-2^62-sparse"),
    pytest.param(2**64 - 1, 0, id="size-max-uint64"),
    pytest.param(10, 0, id="size-smaller-than-content"),
]


@pytest.mark.parametrize(("size", "flags"), HUGE)
def test_huge_claimed_sizes(
    crafter: Crafter, hostile_repo: RepoHandle, scene: Scene, size: int, flags: int
) -> None:
    """A file claiming a size its content does not have: reported, no file (nor a huge
    sparse one) left under its name, nothing allocated beyond the real content."""
    snap = crafter.snapshot(
        [
            crafter.file([b"big"], EVIL * 3, size=size, flags=flags),
            crafter.file([b"big2"], os.urandom(300_000), size=size, flags=flags),
            crafter.file([b"honest.txt"], b"honest\n"),
        ]
    )
    done = restore(hostile_repo.url, snap, scene.target)
    assert done.returncode == 1
    assert len(summary(done)["errors"]) == 2, done.stdout
    assert sorted(p.name for p in scene.target.iterdir()) == ["honest.txt"]
    used = sum(p.lstat().st_blocks * 512 for p in scene.target.rglob("*"))
    assert used < 1 << 20
    scene.assert_outside_untouched()


BAD_FIELDS = [
    pytest.param(rec([b"x"], "l", data=10**12), id="symlink-target-huge-int"),
    pytest.param(rec([b"x"], "f", data=5, size=5), id="file-data-int"),
    pytest.param(rec([b"x"], "f", data=[b"short-id"], size=5), id="file-chunk-id-short"),
    pytest.param(rec([b"x"], "h", data=[]), id="hardlink-empty"),
    pytest.param(rec([b"x"], "h", data=None), id="hardlink-nil"),
    pytest.param(rec([b"x"], "c", data=-1), id="device-number-negative"),
    pytest.param(rec([b"x"], "z"), id="unknown-kind"),
    pytest.param(rec([b"x"], "d", mode="rwx"), id="mode-str"),
    pytest.param(rec([b"x"], "d", uid=2**40), id="uid-huge"),
    pytest.param(rec([b"x"], "f", size=-1, data=[]), id="size-negative"),
    pytest.param([[b"x"], "d", DIR, 0, 0, 0, 2**64 - 1, 0, 0, None, 0], id="mtime-huge"),
]


@pytest.mark.parametrize("record", BAD_FIELDS)
def test_fields_of_the_wrong_type(
    crafter: Crafter, hostile_repo: RepoHandle, scene: Scene, record: list[Any]
) -> None:
    """A record whose fields are not what docs/format-tree.md says: a clean error naming
    the tree stream, never a crash (a huge symlink target once allocated that many bytes)."""
    snap = crafter.snapshot([record])
    done = restore(hostile_repo.url, snap, scene.target)
    assert done.returncode == 1
    assert "tree of snapshot" in done.stderr and "record 1 (/x)" in done.stderr, done.stderr
    scene.assert_outside_untouched()
    scene.assert_target_clean()


# --------------------------------------------------------------------------- devices


def _nobody_can_run_pannier() -> str | None:
    """Why ``nobody`` cannot run this interpreter with pannier, or None."""
    if os.geteuid() != 0:
        return "needs root to switch to nobody"
    if shutil.which("setpriv") is None:
        return "setpriv is not installed"
    done = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            "import pannier",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if done.returncode == 0 else f"nobody cannot import pannier: {done.stderr}"


def test_device_nodes_as_unprivileged_user(crafter: Crafter, hostile_repo: RepoHandle) -> None:
    """Character and block devices (the first disk, /dev/mem) restored by ``nobody``:
    refused by the kernel, reported one line each, the rest restored."""
    reason = _nobody_can_run_pannier()
    if reason:
        unavailable(reason)
    snap = crafter.snapshot(
        [
            rec([b"disk"], "b", mode=stat.S_IFBLK | 0o666, data=os.makedev(8, 0)),
            rec([b"mem"], "c", mode=stat.S_IFCHR | 0o666, data=os.makedev(1, 1)),
            rec([b"fifo"], "p", mode=stat.S_IFIFO | 0o644),
            crafter.file([b"honest.txt"], b"honest\n"),
        ]
    )
    # a world-traversable place nobody can write to; a copy of the repository it owns
    base = Path(tempfile.mkdtemp(prefix="pannier-hostile-"))
    try:
        os.chmod(base, 0o755)
        repo_copy = base / "repo"
        shutil.copytree(hostile_repo.path, repo_copy)
        home = base / "home"
        home.mkdir()
        for p in [repo_copy, *repo_copy.rglob("*"), home]:
            os.chown(p, 65534, 65534, follow_symlinks=False)
        target = home / "target"
        env = pannier_env({"HOME": str(home), "TMPDIR": str(home)})
        done = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                *pannier_argv(
                    "restore", snap, "-r", repo_copy.as_uri(), "--target", str(target), "--json"
                ),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=600,
        )
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode == 1, done.stderr
        errors = summary(done)["errors"]
        assert sorted(e.split(":")[0] for e in errors) == ["/disk", "/mem"], errors
        assert sorted(p.name for p in target.iterdir()) == ["fifo", "honest.txt"]
        assert stat.S_ISFIFO((target / "fifo").lstat().st_mode)
        assert (target / "honest.txt").read_bytes() == b"honest\n"
    finally:
        shutil.rmtree(base)


def test_real_backup_of_a_hard_linked_symlink(repo: RepoHandle, scene: Scene) -> None:
    """Not crafted: a real backup of a directory holding a symlink to the victim and a
    hard link to that symlink (Linux allows one), restored with the metadata plugins
    active: both come back as symlinks, the victim's mode and times are untouched."""
    src = scene.base.parent / "src"
    src.mkdir()
    os.symlink(scene.outside / "victim.txt", src / "a-link")
    os.link(src / "a-link", src / "b-hardlink", follow_symlinks=False)
    (src / "c.txt").write_bytes(b"honest\n")
    done = run_pannier("backup", str(src), "-r", repo.url)
    assert done.returncode == 0, done.stderr
    done = restore(repo.url, "latest", scene.target)
    assert done.returncode == 0, done.stderr
    for name in ("a-link", "b-hardlink"):
        assert os.readlink(scene.target / name) == str(scene.outside / "victim.txt")
    assert (scene.target / "c.txt").read_bytes() == b"honest\n"
    scene.assert_outside_untouched()
    scene.assert_target_clean()

"""Secrets and permissions: passwords never in argv, logs, exceptions or ``--json``
output; a ``file://`` repository is owner-only; key objects hold the master key only
under the key derivation; no temporary plaintext outside the documented places.

Everything runs the real CLI as subprocesses on real repositories; the argv check reads
``/proc/*/cmdline`` of pannier and of the ``rclone`` process it starts.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pannier.backend_registry import get_backend
from pannier.repo import Repository
from pannier.repo.crypto import open_key_object, read_key_info

from tests.reliability.conftest import (
    PASSWORD,
    RepoHandle,
    backup,
    init_repo,
    make_dataset,
    pannier_argv,
    pannier_env,
    run_pannier,
    snapshots,
    start_pannier,
)
from tests.servers import unavailable

#: A repository password nothing else contains.
SECRET = "Sekr1t-Pw-7f3a9c1e"
#: A second password (key add).
NEW_SECRET = "N3w-Sekr1t-Pw-b85d2e04"
#: A password inside a backend URL.
URL_SECRET = "Url-Sekr1t-Pw-4c0ffee9"
#: Content and a file name whose plaintext must not leak to temporary files.
MARKER = b"PLAINTEXT-MARKER-91c2d7"


def _no_secret(text: str, *secrets: str) -> None:
    for s in secrets:
        assert s not in text, f"the secret {s[:4]}... appears in:\n{text[:2000]}"


# --------------------------------------------------------------------------- argv


def _process_tree(root: int) -> dict[int, tuple[bytes, bytes]]:
    """pid -> (cmdline, environ) of ``root`` and every live descendant (rclone runs in a
    session of its own, so the parent links are followed, not the session)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    parents[int(entry)] = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, todo = {root}, [root]
    while todo:
        pid = todo.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                todo.append(child)
    found: dict[int, tuple[bytes, bytes]] = {}
    for pid in tree:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        found[pid] = (cmdline, environ)
    return found


def test_password_never_in_argv(tmp_path: Path) -> None:
    """A backup to an ``rclone://`` repository: neither the repository password nor the
    password pannier makes for its ``rclone rcd`` appears on any command line of the
    process tree (read from /proc while it runs); both travel in environments."""
    if shutil.which("rclone") is None:
        unavailable("rclone is not installed (scripts/install-system-deps.sh)")
    data = make_dataset(tmp_path / "data", files=40, total_bytes=24 << 20)
    url = f"rclone://:local:{tmp_path / 'repo'}"
    env = {"PANNIER_PASSWORD": SECRET}
    done = run_pannier("init", "-r", url, env=env)
    assert done.returncode == 0, done.stderr
    proc = start_pannier("backup", str(data), "-r", url, "-v", env=env)
    seen: dict[int, tuple[bytes, bytes]] = {}
    while proc.poll() is None:
        seen.update(_process_tree(proc.pid))
        time.sleep(0.02)
    out, err = proc.communicate()
    assert proc.returncode == 0, err.decode()
    rclones = {p: v for p, v in seen.items() if b"rclone" in v[0].split(b"\0")[0]}
    assert rclones, "no rclone process was seen: the check watched nothing"
    rc_passwords = [
        line.split(b"=", 1)[1]
        for _, environ in rclones.values()
        for line in environ.split(b"\0")
        if line.startswith(b"RCLONE_RC_PASS=")
    ]
    assert rc_passwords, "rclone got no password in its environment"
    assert len(seen) >= 2
    for pid, (cmdline, _) in seen.items():
        assert SECRET.encode() not in cmdline, (pid, cmdline)
        for rc in rc_passwords:
            assert rc not in cmdline, (pid, cmdline)
    _no_secret(out.decode() + err.decode(), SECRET, *(p.decode() for p in rc_passwords))


# --------------------------------------------------------------------------- outputs


def _all_outputs(runs: list[tuple[list[str], subprocess.CompletedProcess[str]]]) -> str:
    # the outputs only: the argv of --password-command holds a password by the user's choice
    return "\n".join(f"$ {a[0]}\n{d.stdout}\n{d.stderr}" for a, d in runs)


def test_no_password_in_any_output(tmp_path: Path) -> None:
    """Every command, plain, with ``-v`` and with ``--json``, with a known password
    (and a second one added with ``key add``): the passwords appear in no output."""
    data = make_dataset(tmp_path / "data", files=10, total_bytes=2 << 20)
    url = (tmp_path / "repo").as_uri()
    env = {"PANNIER_PASSWORD": SECRET}
    new_pw = tmp_path / "new-password"
    new_pw.write_text(NEW_SECRET + "\n")
    pw_file = tmp_path / "password"
    pw_file.write_text(SECRET + "\n")
    runs: list[tuple[list[str], subprocess.CompletedProcess[str]]] = []

    def run(*args: str, ok: bool = True, extra_env: dict[str, str] | None = None) -> None:
        for flags in ([], ["-v"], ["--json"]):
            argv = [*args[:1], *flags, *args[1:]]
            done = run_pannier(*argv, env={**env, **(extra_env or {})})
            runs.append((argv, done))
            if ok:
                assert done.returncode == 0, (argv, done.stderr)
            assert "Traceback" not in done.stderr, done.stderr

    done = run_pannier("init", "-v", "-r", url, env=env)
    assert done.returncode == 0, done.stderr
    runs.append((["init", "-v"], done))
    run("backup", str(data), "-r", url)
    (data / "src" / "changed.txt").write_text("changed\n")
    run("backup", str(data), "-r", url)
    ids = [s["id"] for s in snapshots(url, env=env)]
    run("snapshots", "-r", url)
    run("ls", "-r", url, "latest")
    run("diff", "-r", url, ids[0], ids[-1])
    run("verify", "-r", url, "latest", str(data), ok=False)  # differs: exit 1 is fine
    run("check", "-r", url, "--read-data")
    run("key", "list", "-r", url)
    run("key", "add", "-r", url, "--new-password-file", str(new_pw), ok=False)
    run("snapshots", "-r", url, "--password-file", str(pw_file))
    run("unlock", "-r", url)
    run("forget", "-r", url, "--keep-last", "1", "--prune")
    run("prune", "-r", url)
    for i, flags in enumerate(([], ["-v"], ["--json"])):
        target = tmp_path / f"restore-{i}"
        done = run_pannier("restore", *flags, "latest", "-r", url, "--target", str(target), env=env)
        runs.append((["restore", *flags], done))
        assert done.returncode == 0, done.stderr
    # wrong passwords: the error names the problem, not the password
    run("snapshots", "-r", url, ok=False, extra_env={"PANNIER_PASSWORD": "Wr0ng-" + SECRET})
    run("snapshots", "-r", url, "--password-command", f"echo {SECRET}x", ok=False)
    text = _all_outputs(runs)
    _no_secret(text, SECRET, NEW_SECRET)
    assert "wrong password" in text.lower() or "no key" in text.lower(), text[-3000:]
    key_adds = [d for a, d in runs if a[:1] == ["key"] and "add" in a]
    assert any(d.returncode == 0 for d in key_adds), [d.stderr for d in key_adds]


URLS_WITH_PASSWORDS = [
    f"sftp://backup:{URL_SECRET}@127.0.0.1:9/repo",
    f"faulty+sftp://backup:{URL_SECRET}@127.0.0.1:9/repo?fail-rate=0.5",
    f"webdav://backup:{URL_SECRET}@127.0.0.1:9/dav/repo?retries=1",
    f"s3://AKIDEXAMPLE:{URL_SECRET}@127.0.0.1:9/bucket/repo?retries=1",
    f"sftp://backup:{URL_SECRET}%20x@127.0.0.1:9/repo",
    f"sftp://backup:{URL_SECRET} x@127.0.0.1:9/repo",
    f"file:///nonexistent/repo?password={URL_SECRET}",
]


@pytest.mark.parametrize("url", URLS_WITH_PASSWORDS)
def test_no_url_password_in_errors(url: str) -> None:
    """A URL with a password to a server that does not answer (or a bad option): the
    errors, plain, verbose and JSON, never show the password."""
    outputs = []
    for flags in ([], ["-v"], ["--json"]):
        done = run_pannier(
            "snapshots",
            *flags,
            "-r",
            url,
            env={"PANNIER_PASSWORD": SECRET},
            timeout=120,
        )
        assert done.returncode != 0
        assert "Traceback" not in done.stderr, done.stderr
        outputs.append(done.stdout + done.stderr)
    text = "\n".join(outputs)
    assert "pannier: error:" in text, text
    _no_secret(text, URL_SECRET, SECRET)


# --------------------------------------------------------------------------- permissions


def _umask0() -> None:
    os.umask(0)


def test_file_repository_is_owner_only(tmp_path: Path) -> None:
    """Created and filled under ``umask 000``: every directory and object of a
    ``file://`` repository is still accessible to its owner only."""
    data = make_dataset(tmp_path / "data", files=12, total_bytes=3 << 20)
    repo = tmp_path / "repo"
    for args in (
        ["init", "-r", repo.as_uri()],
        ["backup", str(data), "-r", repo.as_uri()],
        ["key", "add", "-r", repo.as_uri(), "--new-password-file", str(tmp_path / "pw2")],
    ):
        (tmp_path / "pw2").write_text(NEW_SECRET)
        done = subprocess.run(
            pannier_argv(*args),
            env=pannier_env(),
            capture_output=True,
            text=True,
            preexec_fn=_umask0,
            check=False,
            timeout=600,
        )
        assert done.returncode == 0, (args, done.stderr)
    entries = [repo, *repo.rglob("*")]
    kinds = {p.name.split("-")[0] for p in entries if p.is_file()}
    assert {"config", "key", "data", "index", "snapshot"} <= kinds, kinds
    loose = [
        f"{p} {oct(stat.S_IMODE(p.lstat().st_mode))}"
        for p in entries
        if stat.S_IMODE(p.lstat().st_mode) & 0o077
    ]
    assert not loose, f"readable by others: {loose[:5]}"


# --------------------------------------------------------------------------- keys


def test_key_objects_hold_no_plaintext_master_key(repo: RepoHandle, dataset: Path) -> None:
    """The master key's bytes appear in no file of the repository; each key object is
    sealed under Argon2id with at least OWASP's parameters; the wrong password opens
    nothing and is refused by the CLI."""
    backup(repo.url, dataset)
    r = Repository.open(get_backend(repo.url), PASSWORD)
    try:
        master = r.cipher.master
        assert master is not None
        secrets = [master.encryption_key, master.id_key]
    finally:
        r.close()
    files = [p for p in repo.path.rglob("*") if p.is_file()]
    for p in files:
        blob = p.read_bytes()
        for s in secrets:
            assert s not in blob, f"{p.name} holds the master key in plaintext"
    keys = [p for p in files if p.name.startswith("key-")]
    assert keys
    for k in keys:
        raw = k.read_bytes()
        info = read_key_info(raw, k.name)
        assert info["kdf"] == "argon2id"
        assert info["memory_cost"] >= 19 * 1024 and info["iterations"] >= 2
        assert len(info["salt"]) >= 16
        assert open_key_object(raw, "not the password", k.name) is None
        opened = open_key_object(raw, PASSWORD, k.name)
        assert opened is not None and opened.encryption_key == master.encryption_key
    done = run_pannier("snapshots", "-r", repo.url, env={"PANNIER_PASSWORD": "wrong"})
    assert done.returncode != 0
    assert done.stderr.startswith("pannier: error:"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# --------------------------------------------------------------------------- temp files


class TempWatcher:
    """Watch a private TMPDIR while a command runs: the files visible in it, and the
    unlinked files the process tree keeps open in it (``/proc/PID/fd``). Records which
    held the marker, their permission bits, and whether they had a name."""

    def __init__(self, tmpdir: Path) -> None:
        self.tmpdir = tmpdir
        self.named_leaks: set[str] = set()  # plaintext in a file with a name: never allowed
        self.unlinked: dict[str, int] = {}  # unlinked file with plaintext -> its mode
        self.spools: dict[str, int] = {}  # any unlinked file held open there -> its mode
        self.pid = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _holds_marker(path: str) -> tuple[bool, int]:
        try:
            with open(path, "rb") as f:
                mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
                return MARKER in f.read(64 << 20), mode
        except OSError:
            return False, 0

    def _run(self) -> None:
        while not self._stop.is_set():
            for dirpath, _dirs, names in os.walk(self.tmpdir):
                for n in names:
                    p = os.path.join(dirpath, n)
                    if self._holds_marker(p)[0]:
                        self.named_leaks.add(p)
            for pid in _process_tree(self.pid) if self.pid else {}:
                try:
                    fds = os.listdir(f"/proc/{pid}/fd")
                except OSError:
                    continue
                for fd in fds:
                    try:
                        link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    except OSError:
                        continue
                    if link.startswith(str(self.tmpdir)):
                        held, mode = self._holds_marker(f"/proc/{pid}/fd/{fd}")
                        if link.endswith(" (deleted)"):
                            self.spools[link] = mode
                        if held and link.endswith(" (deleted)"):
                            self.unlinked[link] = mode
                        elif held:
                            self.named_leaks.add(link)
            time.sleep(0.01)

    def __enter__(self) -> TempWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_no_temporary_plaintext(tmp_path: Path) -> None:
    """Backup and restore with a private ``TMPDIR`` (watched while they run, open unlinked
    files included) and a private cache: no file there, named or not, ever holds plaintext
    of the backed-up data (the spool of a large tree stream is unnamed, 0600 and
    encrypted), and nothing is left afterwards. Restore writes its temporary files only
    in the target (``.pannier-tmp-*``, documented)."""
    data = tmp_path / "data"
    make_dataset(data, files=16, total_bytes=4 << 20)
    (data / "marked.txt").write_bytes(MARKER * 50_000)  # several chunks
    (data / "small-marked.txt").write_bytes(MARKER)
    # many entries: a tree stream larger than what the engine keeps in memory (1 MiB)
    many = data / "many"
    many.mkdir()
    for i in range(9000):
        (many / f"{MARKER.decode()}-{i:05d}-{'x' * 60}").write_bytes(b"")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    cache = tmp_path / "cache"
    env = pannier_env({"TMPDIR": str(tmpdir), "XDG_CACHE_HOME": str(cache)})
    repo = init_repo(tmp_path / "repo")
    spooled_seen: dict[str, int] = {}
    for args in (
        ["backup", str(data), "-r", repo.url],
        ["restore", "latest", "-r", repo.url, "--target", str(tmp_path / "restored")],
    ):
        with TempWatcher(tmpdir) as w:
            proc = subprocess.Popen(
                pannier_argv(*args),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            w.pid = proc.pid
            _out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
        assert not w.named_leaks, f"{args[0]}: plaintext in {sorted(w.named_leaks)[:5]}"
        # a backup's tree and metadata streams beyond 1 MiB are spooled to an unlinked
        # (nameless) file of mode 0600, encrypted: it never holds the marker
        assert not w.unlinked, f"{args[0]}: plaintext in the spool {w.unlinked}"
        assert all(mode == 0o600 for mode in w.spools.values()), w.spools
        if args[0] == "backup":
            spooled_seen.update(w.spools)
        else:
            assert not w.spools, w.spools
        assert not any(tmpdir.iterdir()), sorted(tmpdir.iterdir())
    cached: list[Any] = [p for p in cache.rglob("*") if p.is_file()]
    for p in cached:
        assert MARKER not in p.read_bytes(), p
    assert (tmp_path / "restored" / "marked.txt").read_bytes() == MARKER * 50_000
    assert spooled_seen, "the tree stream was never spooled: the test proves nothing"

"""Corruption: flip a byte in, truncate or delete each kind of repository object.

Each case (the harness is scripts/reliability/corruption_cases.py, run here with one seed)
damages one object of a copy of a repository holding two snapshots, then proves through
the real command line:

* ``pannier check --read-data`` fails and names the damaged object, and the files it
  names as affected are the only ones a restore may leave out;
* ``restore`` of every snapshot never writes a file with wrong content, restores every
  file check did not name, and names on standard error each file it could not restore;
* every error is one ``pannier: error:`` line, never a traceback;
* in an encrypted repository every flipped byte is caught by authentication (or by the
  object's hash name).

Damages that leave a consistent repository (a deleted lock, a whole snapshot deleted as
``forget`` would, a deleted index whose packs are found again from their headers) must
leave ``check`` passing and lose nothing.
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import blake3
import msgpack
import pytest

from tests.reliability.conftest import ok_pannier, run_pannier

ROOT = Path(__file__).resolve().parents[2]


def _harness() -> ModuleType:
    path = ROOT / "scripts" / "reliability" / "corruption_cases.py"
    spec = importlib.util.spec_from_file_location("corruption_cases", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("corruption_cases", module)
    spec.loader.exec_module(module)
    return module


cc = _harness()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One prepared repository per encryption mode, shared by the cases (copied by each)."""
    base = tmp_path_factory.mktemp("corruption")
    return {enc: cc.prepare(base / enc, enc, data_mib=3) for enc in cc.ENCRYPTIONS}


CASES = [
    (enc, kind, how)
    for enc in cc.ENCRYPTIONS
    for kind in cc.KINDS
    for how in cc.DAMAGES
    if not (kind == "key" and enc == "none")
]


@pytest.mark.parametrize(("encryption", "kind", "damage"), CASES)
def test_damaged_object_is_named_and_nothing_wrong_is_restored(
    prepared: dict[str, Any], tmp_path: Path, encryption: str, kind: str, damage: str
) -> None:
    res = cc.run_case(prepared[encryption], kind, damage, 0, tmp_path)
    assert res.passed, "\n".join([res.victim, *res.problems])
    assert res.wrong == 0 and res.lost == 0 and res.unreported == 0 and res.tracebacks == 0
    if res.expect_detect:
        assert res.detected
    if encryption == "repokey" and damage == "flip" and kind not in ("key", "config"):
        assert res.authenticated, res.victim


def test_altered_plain_index_is_named_and_skipped(tmp_path: Path) -> None:
    """Without encryption an index is not authenticated, but its name is the BLAKE3 of
    its bytes: a reader that finds them different skips it and recovers its packs from
    their headers, so every file still restores."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_bytes(b"alpha " * 1000)
    (data / "b.bin").write_bytes(bytes(range(256)) * 100)
    repo = tmp_path / "repo"
    ok_pannier("init", "-r", repo.as_uri(), "--encryption", "none")
    ok_pannier("backup", str(data), "-r", repo.as_uri())
    (index,) = sorted(repo.glob("index-*"))
    raw = bytearray(index.read_bytes())
    # Change one byte of the first pack id the index names: a plausible, parseable index.
    pos = raw.find(bytes.fromhex(sorted(repo.glob("data-*"))[0].name[5:])[:8])
    if pos < 0:
        pos = raw.find(bytes.fromhex(sorted(repo.glob("data-*"))[-1].name[5:])[:8])
    assert pos >= 0
    raw[pos + 3] ^= 0x01
    index.write_bytes(bytes(raw))
    assert blake3.blake3(bytes(raw)).hexdigest() != index.name[6:]
    done = run_pannier("check", "-r", repo.as_uri(), "--read-data")
    assert done.returncode == 1
    assert index.name in done.stdout + done.stderr
    target = tmp_path / "out"
    ok_pannier("restore", "latest", "-r", repo.as_uri(), "--target", str(target))
    assert (target / "a.txt").read_bytes() == (data / "a.txt").read_bytes()
    assert (target / "b.bin").read_bytes() == (data / "b.bin").read_bytes()


def test_check_names_every_path_of_a_damaged_hard_link_group(tmp_path: Path) -> None:
    """Hard links share one content: when it is damaged, check names each of their
    paths, since a restore can write none of them."""
    data = tmp_path / "data"
    data.mkdir()
    content = random.Random(1).randbytes(300_000)  # incompressible: stored as is
    (data / "a.bin").write_bytes(content)
    os.link(data / "a.bin", data / "z-link.bin")
    (data / "other.txt").write_text("unaffected\n")
    repo = tmp_path / "repo"
    ok_pannier("init", "-r", repo.as_uri(), "--encryption", "none")
    ok_pannier("backup", str(data), "-r", repo.as_uri())
    for pack in repo.glob("data-*"):
        raw = bytearray(pack.read_bytes())
        if raw.find(content[:4096]) >= 0:
            raw[raw.find(content[:4096]) + 100] ^= 0xFF
            pack.write_bytes(bytes(raw))
            break
    else:
        pytest.fail("the file's content was not found stored raw in a pack")
    done = run_pannier("check", "-r", repo.as_uri(), "--read-data")
    assert done.returncode == 1
    affected = [x for x in done.stdout.splitlines() if x.startswith("affected: ")]
    assert any(":/a.bin " in x for x in affected), done.stdout
    assert any(":/z-link.bin " in x for x in affected), done.stdout
    assert not any("other.txt" in x for x in affected), done.stdout
    target = tmp_path / "out"
    restored = run_pannier("restore", "latest", "-r", repo.as_uri(), "--target", str(target))
    assert restored.returncode == 1
    assert (target / "other.txt").read_text() == "unaffected\n"
    assert not (target / "a.bin").exists() and not (target / "z-link.bin").exists()


def test_restore_latest_says_when_a_damaged_newer_snapshot_was_skipped(tmp_path: Path) -> None:
    """With the newest snapshot damaged, ``latest`` falls back to the newest readable one,
    and says so: a user must not get older data without being told."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.txt").write_text("old\n")
    repo = tmp_path / "repo"
    ok_pannier("init", "-r", repo.as_uri())
    ok_pannier("backup", str(data), "-r", repo.as_uri())
    first = {p.name for p in repo.glob("snapshot-*")}
    (data / "f.txt").write_text("new\n")
    ok_pannier("backup", str(data), "-r", repo.as_uri())
    (newest,) = [p for p in repo.glob("snapshot-*") if p.name not in first]
    raw = bytearray(newest.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    newest.write_bytes(bytes(raw))
    target = tmp_path / "out"
    done = run_pannier("restore", "latest", "-r", repo.as_uri(), "--target", str(target))
    assert (target / "f.txt").read_text() == "old\n"  # never the damaged snapshot's data
    short = newest.name.removeprefix("snapshot-")[:8]
    assert f"pannier: warning: snapshot {short} skipped" in done.stderr, done.stderr


@pytest.mark.parametrize("field", [b"hostname", b"username", b"created"])
def test_a_flipped_byte_in_a_key_objects_information_is_caught(
    tmp_path: Path, field: bytes
) -> None:
    """Every field of a key object is authenticated: a flipped byte in the value of its
    host, user or date fails authentication, and check names the key object (the miss of
    the corruption run before key objects version 2)."""
    repo = tmp_path / "repo"
    ok_pannier("init", "-r", repo.as_uri())
    (key,) = repo.glob("key-*")
    raw = bytearray(key.read_bytes())
    value = str(msgpack.unpackb(bytes(raw))[field.decode()]).encode()
    at = raw.find(value, raw.find(field) + len(field))
    assert value and at > 0
    raw[at] ^= 0x01  # the first character of the field's value
    key.write_bytes(bytes(raw))
    done = run_pannier("check", "-r", repo.as_uri())
    assert done.returncode != 0
    assert f"key object {key.name} fails authentication" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr

"""scripts/standalone_restore.py restores what ``pannier restore`` restores, with only
msgpack, zstandard and cryptography importable (pannier and blake3 are blocked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.engine.conftest import assert_same_tree, make_tree

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "standalone_restore.py"
PASSWORD = "standalone test password"

# Run the script with imports of pannier and blake3 refused, to prove it needs neither.
BLOCKER = """
import runpy, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pannier", "blake3"):
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def pannier(*args: str) -> None:
    env = {**os.environ, "PANNIER_PASSWORD": PASSWORD}
    done = subprocess.run(
        [sys.executable, "-m", "pannier", *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def standalone(*args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PANNIER_PASSWORD": password}
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, str(SCRIPT), *args], env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("encryption", ["repokey", "none"])
def test_same_result_as_pannier_restore(tmp_path: Path, encryption: str) -> None:
    src = tmp_path / "src"
    make_tree(src)
    url = (tmp_path / "repo").as_uri()
    pannier("init", "-r", url, "--encryption", encryption)
    pannier("backup", str(src), "-r", url)
    (src / "later").write_text("second snapshot\n")
    pannier("backup", str(src), "-r", url)
    pannier("restore", "latest", "--target", str(tmp_path / "by-pannier"), "-r", url)
    done = standalone(url, "latest", str(tmp_path / "by-script"))
    assert done.returncode == 0, done.stderr
    assert_same_tree(tmp_path / "by-pannier", tmp_path / "by-script")
    assert_same_tree(src, tmp_path / "by-script")


def test_wrong_password_and_non_empty_target(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    url = (tmp_path / "repo").as_uri()
    pannier("init", "-r", url)
    pannier("backup", str(src), "-r", url)
    wrong = standalone(url, "latest", str(tmp_path / "out"), password="nope")
    assert wrong.returncode != 0 and "wrong password" in wrong.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    full = standalone(url, "latest", str(tmp_path / "full"))
    assert full.returncode != 0 and "is not empty" in full.stderr
    assert (tmp_path / "full" / "x").read_text() == "keep"

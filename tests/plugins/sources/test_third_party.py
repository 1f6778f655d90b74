"""A third-party source published through the ``pannier.sources`` entry-point group (as a
pip-installed extension is) is found, listed and used by ``pannier backup --source NAME``
like a built-in. The source is the example of docs/sources.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

NOTES = '''
import os
from collections.abc import Iterator

from pannier import Source, SourceEntry


class NotesSource(Source):
    """Every note of a notes directory, flattened."""

    plugin_api_version = 1

    @classmethod
    def get_name(cls) -> str:
        return "notes"

    def scan(self) -> Iterator[SourceEntry]:
        root = os.fsencode(os.path.abspath(self.spec))
        yield SourceEntry((), os.stat(root), root)
        for name in sorted(os.listdir(root)):
            if name.endswith(b".md"):
                yield SourceEntry((name,), os.lstat(os.path.join(root, name)), root)


def get_plugin_class() -> type[Source]:
    return NotesSource
'''


def test_third_party_source(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "pannier_notes.py").write_text(NOTES)
    dist = site / "pannier_notes-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pannier-notes\nVersion: 1.0\n\n")
    (dist / "entry_points.txt").write_text("[pannier.sources]\nnotes = pannier_notes:NotesSource\n")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# a\n")
    (notes / "b.txt").write_text("not a note\n")
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "PANNIER_PASSWORD": "pw",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }

    def pannier(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pannier", *args], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = json.loads(pannier("plugins", "--kind", "source", "--json"))
    assert {p["name"] for p in listed} >= {"filesystem", "sqlite", "command", "notes"}
    url = (tmp_path / "repo").as_uri()
    pannier("init", "-r", url, "--encryption", "none")
    pannier("backup", "--source", "notes", str(notes), "-r", url)
    assert pannier("ls", "latest", "-r", url).splitlines() == ["/", "/a.md"]

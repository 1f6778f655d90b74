"""`pannier plugins` shows meta plugins that cannot work beside the others as failed.

Two real third-party modules on PYTHONPATH: one claims to be the main meta plugin (attr
is), one reuses the built-in xattr plugin's stream prefix. Both are listed as failed with
a one-line reason; every other plugin still loads; strict mode exits non-zero.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PLUGIN = '''
from __future__ import annotations

from pannier import MetaPlugin


class {cls}(MetaPlugin):
    """A test plugin that clashes with a built-in one."""

    plugin_api_version = 1

    @classmethod
    def get_prefix(cls) -> str:
        return "{prefix}"

    @classmethod
    def is_main_meta(cls) -> bool:
        return {main}

    @classmethod
    def is_active(cls, fs: object) -> bool:
        return True


def get_plugin_class() -> type[MetaPlugin]:
    return {cls}
'''


def listing(site: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANNIER_")}
    env["PYTHONPATH"] = str(site)
    env["XDG_CACHE_HOME"] = str(site / "cache")
    return subprocess.run(
        [sys.executable, "-m", "pannier", "plugins", "--kind", "meta", "--json", *extra],
        capture_output=True,
        text=True,
        env=env,
    )


def make_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "rdb_meta_secondmain.py").write_text(
        PLUGIN.format(cls="SecondMain", prefix="secondmain", main=True)
    )
    (site / "rdb_meta_samexattr.py").write_text(
        PLUGIN.format(cls="SameXattr", prefix="xattr", main=False)
    )
    return site


def test_clashing_meta_plugins_are_listed_as_failed_with_a_reason(tmp_path: Path) -> None:
    done = listing(make_site(tmp_path))
    assert done.returncode == 0, done.stderr
    records = {r["name"]: r for r in json.loads(done.stdout)}
    second = records["secondmain"]
    assert second["status"] == "failed"
    assert "claims to be the main meta plugin, which attr is" in second["error"]
    assert "\n" not in second["error"]
    same = records["samexattr"]
    assert same["status"] == "failed"
    assert "stream prefix 'xattr' is the one of xattr" in same["error"]
    for name in ("attr", "xattr", "acl", "checksum"):
        assert records[name]["status"] == "loaded", records[name]


def test_strict_mode_fails_on_clashing_meta_plugins(tmp_path: Path) -> None:
    done = listing(make_site(tmp_path), "--strict-plugins")
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert "meta:secondmain" in line and "meta:samexattr" in line

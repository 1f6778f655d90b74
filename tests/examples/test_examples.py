"""The example plugins of rdb_meta_examples/, found and run as a third party's would be.

* The top-level ``rdb_meta_*`` modules are found through ``PYTHONPATH`` by a real
  ``pannier plugins --json`` subprocess, and each runs the conformance suite.
* The extension project is installed with a real ``pip install`` into a temporary virtual
  environment that sees this environment's packages (pannier among them), then found by
  ``pannier plugins``; its hook plugin's command runs, and its own tests (pannier's
  conformance suite imported by a third party) pass there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pannier.testing.meta_suite import MetaPluginSuite, meta_plugin_suite

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "rdb_meta_examples"
EXT_PROJECT = EXAMPLES / "pannier-ext-example"

sys.path.insert(0, str(EXAMPLES))
import rdb_meta_mime  # noqa: E402
import rdb_meta_xxhash  # noqa: E402

sys.path.remove(str(EXAMPLES))


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a pannier subprocess: no plugin filters, a private cache."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PANNIER_") and k not in ("PYTHONPATH", "XDG_CACHE_HOME")
    }
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env.update(extra)
    return env


def plugins_json(python: str | Path, env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(python), "-m", "pannier", "--json", "plugins", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    listed: list[dict[str, Any]] = json.loads(result.stdout)
    return listed


def by_name(listed: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in listed if p["kind"] == kind}


# --- rdb_meta_* modules ------------------------------------------------------------------


def test_rdb_meta_modules_found_via_pythonpath(tmp_path: Path) -> None:
    env = clean_env(tmp_path, PYTHONPATH=str(EXAMPLES))
    meta = by_name(plugins_json(sys.executable, env, "--kind", "meta"), "meta")
    for name, module in (("mime", "rdb_meta_mime"), ("xxhash", "rdb_meta_xxhash")):
        assert meta[name]["status"] == "loaded", meta[name]
        assert meta[name]["origin"]["channel"] == "rdb_meta"
        assert meta[name]["origin"]["file"] == str(EXAMPLES / f"{module}.py")
    assert meta["attr"]["status"] == "loaded"


def test_rdb_meta_modules_absent_without_pythonpath(tmp_path: Path) -> None:
    meta = by_name(plugins_json(sys.executable, clean_env(tmp_path), "--kind", "meta"), "meta")
    assert "mime" not in meta and "xxhash" not in meta
    assert {"attr", "xattr", "acl", "checksum"} <= set(meta)


def test_meta_manager_uses_the_example_plugins(tmp_path: Path) -> None:
    """In a fresh process, the manager picks up the modules found on PYTHONPATH."""
    code = (
        "import json, sys\n"
        "from pannier.meta_manager import get_meta_manager\n"
        "print(json.dumps([c.get_prefix() for c in get_meta_manager().get_meta_list(sys.argv[1])]))"
    )
    env = clean_env(tmp_path, PYTHONPATH=str(EXAMPLES))
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    prefixes = json.loads(result.stdout)
    assert prefixes[0] == "attr"
    assert {"mime", "xxhash", "xattr", "acl", "checksum"} <= set(prefixes)


# the functional form of the suite
TestMimeSuite = meta_plugin_suite(rdb_meta_mime.MimePlugin)


class TestXxhashSuite(MetaPluginSuite):
    plugin_class = rdb_meta_xxhash.XxhashPlugin


def test_mime_types(tmp_path: Path) -> None:
    files = {
        "notes.txt": (b"hello", "text/plain", "name"),
        "photo": (b"\x89PNG\r\n\x1a\n....", "image/png", "content"),
        "README": ("caf\u00e9\n".encode(), "text/plain", "content"),
        "blob": (b"\x00\x01\x02", "application/octet-stream", "content"),
    }
    root = os.fsencode(tmp_path)
    for name, (data, mime_type, source) in files.items():
        (tmp_path / name).write_bytes(data)
        record = rdb_meta_mime.MimePlugin.from_path(
            root, (name.encode(),), os.lstat(tmp_path / name)
        )
        assert record is not None
        assert (record.mime_type, record.source) == (mime_type, source), name


def test_xxhash_inactive_without_its_dependency(tmp_path: Path) -> None:
    """Without xxhash the plugin still loads and lists, but is inactive: no stream."""
    code = (
        "import json, sys\n"
        "sys.modules['xxhash'] = None  # as if the optional package were not installed\n"
        "from pannier.meta_manager import get_meta_manager\n"
        "from pannier.registry import get_plugin_manager\n"
        "record = get_plugin_manager().record(__import__('pannier').PluginKind.META, 'xxhash')\n"
        "active = [c.get_prefix() for c in get_meta_manager().get_meta_list(sys.argv[1])]\n"
        "print(json.dumps({'status': record.status, 'active': active}))"
    )
    env = clean_env(tmp_path, PYTHONPATH=str(EXAMPLES))
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["status"] == "loaded"
    assert "xxhash" not in found["active"] and "mime" in found["active"]


def test_loading_the_xxhash_plugin_does_not_import_xxhash(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pannier import PluginKind\n"
        "from pannier.registry import get_plugin_manager\n"
        "assert 'xxhash' in get_plugin_manager().load_all(PluginKind.META)\n"
        "print('xxhash' in sys.modules)"
    )
    env = clean_env(tmp_path, PYTHONPATH=str(EXAMPLES))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_xxhash_verifies_restored_content(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"content")
    root = os.fsencode(tmp_path)
    record = rdb_meta_xxhash.XxhashPlugin.from_path(root, (b"f",), os.lstat(tmp_path / "f"))
    assert record is not None and len(record.xxh3_128) == 16
    assert rdb_meta_xxhash.XxhashPlugin.apply(record, root, (b"f",)) is False
    (tmp_path / "f").write_bytes(b"changed")
    with pytest.raises(ValueError, match="does not match its xxhash fingerprint"):
        rdb_meta_xxhash.XxhashPlugin.apply(record, root, (b"f",))


# --- the pip-installable extension project ------------------------------------------------


@pytest.fixture(scope="module")
def ext_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A temporary venv with pannier-ext-example pip-installed (a wheel, not editable).

    The venv sees this environment's packages (pannier, pytest, setuptools) through a
    ``.pth`` file, like ``--system-site-packages`` would for a non-venv interpreter.
    """
    base = tmp_path_factory.mktemp("ext")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib, "_pannier_parent_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    project = base / "pannier-ext-example"
    shutil.copytree(EXT_PROJECT, project, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run(
        [
            sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
            "--no-deps", "--no-build-isolation", "--no-index", str(project),
        ],
        check=True,
        env=clean_env(base),
        timeout=300,
    )  # fmt: skip
    yield venv


def test_ext_project_found_after_pip_install(ext_venv: Path, tmp_path: Path) -> None:
    listed = plugins_json(ext_venv / "bin" / "python", clean_env(tmp_path))
    meta = by_name(listed, "meta")["linecount"]
    assert meta["status"] == "loaded", meta
    assert meta["origin"]["channel"] == "entry-point"
    assert meta["origin"]["distribution"] == "pannier-ext-example"
    assert meta["origin"]["version"] == "1.0.0"
    hook = by_name(listed, "hook")["ext-example"]
    assert hook["status"] == "loaded", hook
    assert hook["origin"]["distribution"] == "pannier-ext-example"


def test_ext_project_not_found_when_not_installed(tmp_path: Path) -> None:
    listed = plugins_json(sys.executable, clean_env(tmp_path))
    assert "linecount" not in by_name(listed, "meta")
    assert "ext-example" not in by_name(listed, "hook")


def test_ext_hook_adds_a_command(ext_venv: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(ext_venv / "bin" / "python"), "-m", "pannier", "ext-example"],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello from pannier-ext-example 1.0.0"


def test_ext_project_runs_the_conformance_suite(ext_venv: Path, tmp_path: Path) -> None:
    """The extension's own tests import pannier.testing and pass in its environment."""
    tests = tmp_path / "tests"
    shutil.copytree(EXT_PROJECT / "tests", tests)
    result = subprocess.run(
        [
            str(ext_venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "--rootdir", str(tmp_path), str(tests),
        ],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_example_plugins_record_streams_in_a_real_backup(ext_venv: Path, tmp_path: Path) -> None:
    """A backup run where the plugins are found writes their streams; a restore where
    they are absent still succeeds and names the streams it could not apply."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "notes.txt").write_bytes(b"one\ntwo\n")
    (src / "blob").write_bytes(bytes(range(256)))
    env = clean_env(
        tmp_path,
        PYTHONPATH=str(EXAMPLES),
        PANNIER_REPOSITORY=(tmp_path / "repo").as_uri(),
        PANNIER_PASSWORD="example",
    )
    python = str(ext_venv / "bin" / "python")

    def pannier(python: str, *args: str, env: dict[str, str] = env) -> str:
        result = subprocess.run(
            [python, "-m", "pannier", *args], env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr
        return result.stdout + result.stderr

    pannier(python, "init")
    pannier(python, "backup", str(src))
    (snapshot,) = json.loads(pannier(python, "--json", "snapshots").strip().splitlines()[-1])
    assert {"meta/attr", "meta/linecount", "meta/mime", "meta/xxhash"} <= set(snapshot["streams"])

    without = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    out = pannier(sys.executable, "restore", "latest", "-t", str(tmp_path / "out"), env=without)
    assert (tmp_path / "out" / "notes.txt").read_bytes() == b"one\ntwo\n"
    for stream in ("meta/linecount", "meta/mime", "meta/xxhash"):
        assert f"metadata stream {stream} not applied: no plugin for it is installed" in out

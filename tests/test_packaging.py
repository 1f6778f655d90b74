"""pannier installed for real: a built wheel and an editable install, each in a fresh venv.

Entry points exist only once a distribution is installed, and the package-dir mapping
(``core/`` -> ``pannier``, ``plugins/`` -> ``pannier.plugins``) is done differently by a
wheel (files copied) and an editable install (an import-time finder), so both are built
and installed into one temporary virtual environment (no system site-packages) and
``pannier plugins --json`` is run there:

1. the wheel, built from a copy of the source tree, with its dependencies;
2. a pip-installed extension project publishing a metadata plugin and a hook through
   entry points;
3. pannier replaced by an editable install of the same copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

TOP = Path(__file__).resolve().parent.parent
EXT_PROJECT = TOP / "tests" / "fixtures" / "entry_point_project"

pytestmark = pytest.mark.slow


def run(*command: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=600, **kwargs
    )
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result


class Venv:
    """A virtual environment without system site-packages, and pannier's source copy."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.source = root / "src"
        self.wheels = root / "wheels"
        self.path = root / "venv"
        self.python = self.path / "bin" / "python"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PANNIER_")}
        self.env.pop("PYTHONPATH", None)
        self.env["XDG_CACHE_HOME"] = str(root / "cache")

    def pip(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return run(self.python, "-m", "pip", "--disable-pip-version-check", *args, env=self.env)

    def pannier_json(self, *args: str, **env: str) -> list[dict[str, Any]]:
        result = run(
            self.path / "bin" / "pannier",
            "plugins",
            "--json",
            *args,
            env={**self.env, **env},
            cwd=self.root,
        )
        data = json.loads(result.stdout)
        assert isinstance(data, list)
        return data


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    env = Venv(tmp_path_factory.mktemp("packaging"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    env.source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        if (TOP / name).exists():
            shutil.copy2(TOP / name, env.source / name)
    for name in ("core", "plugins"):
        shutil.copytree(TOP / name, env.source / name, ignore=ignore)
    extension = env.root / "extension"  # built from a copy: a build writes into its tree
    shutil.copytree(EXT_PROJECT, extension, ignore=ignore)
    for project in (env.source, extension):
        run(
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-w",
            env.wheels,
            project,
        )
    run(sys.executable, "-m", "venv", env.path)
    [pannier_wheel] = env.wheels.glob("pannier-*.whl")
    env.pip("install", "--quiet", pannier_wheel)
    return env


def test_the_wheel_maps_core_to_pannier_and_plugins_to_pannier_plugins(venv: Venv) -> None:
    [wheel] = venv.wheels.glob("pannier-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "pannier/" + str(p.relative_to(venv.source / "core"))
        for p in (venv.source / "core").rglob("*.py")
    } | {
        "pannier/plugins/" + str(p.relative_to(venv.source / "plugins"))
        for p in (venv.source / "plugins").rglob("*.py")
    }
    missing = sorted(expected - names)
    assert missing == [], "not in the wheel (a package missing from pyproject's list?)"
    assert not any(n.startswith(("core/", "plugins/")) for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "pannier = pannier.cli:main" in text


def _builtins_are_listed_from(records: list[dict[str, Any]], plugins_dir: Path) -> None:
    on_disk = {
        (kind.rstrip("s"), p.stem)
        for kind in ("backends", "meta", "sources")
        for p in (plugins_dir / kind).glob("*.py")
        if not p.name.startswith("_")
    }
    builtins = [r for r in records if r["builtin"]]
    assert {(r["kind"], r["name"]) for r in builtins} == on_disk
    for record in builtins:
        assert Path(record["origin"]["file"]).parent.parent == plugins_dir
        assert record["origin"]["distribution"] == "pannier"
        if record["kind"] in ("meta", "source"):
            assert record["status"] == "loaded", record
        else:  # a backend whose optional dependency is absent says which extra to install
            assert record["status"] == "loaded" or "pip install" in record["error"], record


def test_wheel_install_lists_the_builtins_from_site_packages(venv: Venv) -> None:
    site = run(
        venv.python, "-c", "import pannier, os; print(os.path.dirname(pannier.__file__))"
    ).stdout.strip()
    assert site.endswith(os.path.join("site-packages", "pannier"))
    assert str(TOP) not in site
    records = venv.pannier_json()
    _builtins_are_listed_from(records, Path(site) / "plugins")
    assert run(venv.python, "-m", "pannier", "--version", env=venv.env).stdout.startswith(
        "pannier "
    )


def test_wheel_install_finds_a_namespace_module_from_another_path_entry(
    venv: Venv, tmp_path: Path
) -> None:
    extra = tmp_path / "extra" / "pannier" / "plugins" / "meta"
    extra.mkdir(parents=True)
    shutil.copy(EXT_PROJECT / "pannier_fixture_ext.py", tmp_path / "extra" / "ext_base.py")
    (extra / "dropped_in.py").write_text(
        "from ext_base import ExtMeta\n\n\ndef get_plugin_class():\n    return ExtMeta\n"
    )
    records = venv.pannier_json("--kind", "meta", PYTHONPATH=str(tmp_path / "extra"))
    [dropped] = [r for r in records if r["name"] == "dropped_in"]
    assert (dropped["status"], dropped["origin"]["channel"]) == ("loaded", "namespace")
    assert dropped["origin"]["file"] == str(extra / "dropped_in.py")
    assert not dropped["builtin"]


def test_entry_points_of_an_installed_extension_are_found(venv: Venv) -> None:
    [ext_wheel] = venv.wheels.glob("pannier_fixture_ext-*.whl")
    venv.pip("install", "--quiet", "--no-deps", ext_wheel)
    records = {(r["kind"], r["name"]): r for r in venv.pannier_json()}
    for key in (("meta", "fixture_ext_meta"), ("hook", "fixture_ext_hooks")):
        record = records[key]
        assert record["status"] == "loaded", record
        assert record["origin"]["channel"] == "entry-point"
        assert (record["origin"]["distribution"], record["origin"]["version"]) == (
            "pannier-fixture-ext",
            "0.3.1",
        )
    hello = run(venv.path / "bin" / "pannier", "fixture-ext-hello", env=venv.env)
    assert hello.stdout == "hello from pannier-fixture-ext\n"


def test_editable_install_maps_the_source_tree(venv: Venv) -> None:
    venv.pip("uninstall", "--quiet", "--yes", "pannier")
    venv.pip("install", "--quiet", "--no-deps", "--editable", venv.source)
    location = run(
        venv.python, "-c", "import pannier, os; print(os.path.dirname(pannier.__file__))"
    ).stdout.strip()
    assert location == str(venv.source / "core")
    records = venv.pannier_json()
    _builtins_are_listed_from(records, venv.source / "plugins")
    # The extension installed earlier is still found through its entry points.
    assert any(r["name"] == "fixture_ext_meta" and r["status"] == "loaded" for r in records)
    # A module dropped into the source tree's namespace package is a built-in at once.
    dropped = venv.source / "plugins" / "sources" / "dropped_source.py"
    dropped.write_text(
        "class Dropped:\n"
        "    plugin_api_version = 1\n\n"
        "    def scan(self):\n"
        "        return iter(())\n\n\n"
        "def get_plugin_class():\n"
        "    return Dropped\n"
    )
    records = venv.pannier_json("--kind", "source")
    [record] = [r for r in records if r["name"] == "dropped_source"]
    assert record["builtin"] and record["status"] == "loaded"

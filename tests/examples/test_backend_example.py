"""The example third-party backend project (rdb_meta_examples/pannier-backend-example):
pip-installed into a fresh virtual environment, found through its entry point, and run
through the conformance kit both by ``pannier backend test`` and by its own pytest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
from pannier.testing.backend_suite import CHECKS

TOP = Path(__file__).resolve().parents[2]
PROJECT = TOP / "rdb_meta_examples" / "pannier-backend-example"


def env(tmp: Path) -> dict[str, str]:
    """A subprocess environment without plugin filters and with a private cache."""
    result = {k: v for k, v in os.environ.items() if not k.startswith("PANNIER_")}
    result["XDG_CACHE_HOME"] = str(tmp / "cache")
    result.pop("PYTHONPATH", None)
    return result


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A venv that sees this environment's packages (pannier, pytest) through a .pth
    file, with pannier-backend-example installed by a real ``pip install`` (a wheel)."""
    base = tmp_path_factory.mktemp("backend-example")
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
    Path(purelib, "_pannier_parent.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    project = base / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-build-isolation", "--no-index", str(project)],
        check=True,
        env=env(base),
        timeout=300,
    )  # fmt: skip
    yield venv


def pannier(venv: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pannier", *args],
        env=env(tmp),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_module_is_under_80_lines() -> None:
    assert len((PROJECT / "pannier_backend_example.py").read_text().splitlines()) < 80


def test_scheme_found_after_pip_install(venv: Path, tmp_path: Path) -> None:
    result = pannier(venv, tmp_path, "--json", "backend", "schemes")
    assert result.returncode == 0, result.stderr
    assert "shelf" in json.loads(result.stdout)["schemes"]
    plugins = json.loads(pannier(venv, tmp_path, "--json", "plugins", "--kind", "backend").stdout)
    shelf = next(p for p in plugins if p["name"] == "shelf")
    assert shelf["origin"]["distribution"] == "pannier-backend-example"


def test_scheme_unknown_without_the_install(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pannier", "backend", "ls", f"shelf://{tmp_path}"],
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no backend serves shelf:// URLs" in result.stderr


def test_pannier_backend_test_passes_on_it(venv: Path, tmp_path: Path) -> None:
    url = f"shelf://{tmp_path}/shelf"
    assert pannier(venv, tmp_path, "backend", "mkdir", url).returncode == 0
    result = pannier(venv, tmp_path, "backend", "test", url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"OK: 0 of {len(CHECKS)} checks failed" in result.stdout
    assert (tmp_path / "shelf").is_dir()


def test_its_own_pytest_runs_the_kit(venv: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(PROJECT / "tests")],
        env=env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # skipped: ranged get, rename and cleaning temporaries, which the example does not offer
    assert f"{len(CHECKS) - 3} passed, 3 skipped" in result.stdout


def test_the_guide_shows_the_example_verbatim() -> None:
    guide = (TOP / "docs" / "backends" / "writing-a-backend.md").read_text()
    module = (PROJECT / "pannier_backend_example.py").read_text()
    assert f"```python\n{module}```" in guide

"""Helpers that write real plugin files for the discovery, registry and hook tests.

Everything is written under a test's ``tmp_path``: plugin modules, ``rdb_meta_*``
modules, ``pannier/plugins/<kind>/`` directories and ``*.dist-info`` directories with
``entry_points.txt``, so the tests exercise the same files a user installs.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

#: A metadata plugin class body (rdiff-backup's contract), named ``{cls}``.
META_CLASS = """
class {cls}:
    plugin_api_version = {api}

    @classmethod
    def get_name(cls):
        return "{cls}"

    @classmethod
    def get_desc(cls):
        return "test metadata plugin"

    @classmethod
    def get_version(cls):
        return "1"

    @classmethod
    def get_prefix(cls):
        return "{cls}"

    @classmethod
    def is_active(cls, *args):
        return True

    @classmethod
    def is_main_meta(cls):
        return False

    @classmethod
    def join_iter(cls, *args):
        return iter(())

    def write_object(self, record):
        pass

    def get_objects(self, restrict_index=None):
        return iter(())

    def close(self):
        pass
"""

#: A backend plugin class, named ``{cls}``, serving the scheme ``{scheme}``.
BACKEND_CLASS = """
from pannier.backend import Backend


class {cls}(Backend):
    plugin_api_version = {api}
    schemes = ("{scheme}",)
"""

#: A source plugin class named ``{cls}``.
SOURCE_CLASS = """
class {cls}:
    plugin_api_version = {api}

    def scan(self):
        return iter(())
"""


def plugin_module(template: str, cls: str = "Plugin", api: int = 1, scheme: str = "x") -> str:
    """Source of a plugin module with ``get_plugin_class()`` returning the class ``cls``."""
    body = template.format(cls=cls, api=api, scheme=scheme)
    return f"{body}\n\ndef get_plugin_class():\n    return {cls}\n"


def write(path: Path, text: str) -> Path:
    """Write ``text`` (dedented) to ``path``, creating its directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def namespace_dir(site: Path, kind: str) -> Path:
    """``site/pannier/plugins/<kind>``: where a module joins the namespace package."""
    return site / "pannier" / "plugins" / kind


def write_dist(
    site: Path, name: str, version: str, entry_points: dict[str, dict[str, str]]
) -> Path:
    """A ``<name>-<version>.dist-info`` in ``site`` declaring ``entry_points``.

    ``entry_points`` maps a group to ``{entry-point name: value}``.
    """
    dist = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
    lines = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{ep_name} = {value}" for ep_name, value in eps.items())
        lines.append("")
    (dist / "entry_points.txt").write_text("\n".join(lines))
    return dist


def unique_name() -> str:
    """A fresh identifier to keep test modules' names apart in ``sys.modules``."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(autouse=True)
def isolated_imports(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Each test gets its own entry-point cache, and modules it imports are forgotten."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    for variable in (
        "PANNIER_LOAD_PLUGINS",
        "PANNIER_DISABLE_PLUGINS",
        "PANNIER_STRICT_PLUGINS",
        "PANNIER_TRACE_PLUGINS",
    ):
        monkeypatch.delenv(variable, raising=False)
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None) or ""
        if str(tmp_path_factory.getbasetemp()) in file:
            del sys.modules[name]

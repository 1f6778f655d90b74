"""The per-kind contract checks run when a plugin is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from pannier.discovery import PluginOrigin
from pannier.errors import PluginAPIVersionError, PluginContractError
from pannier.plugin import PluginKind
from pannier.plugin_contract import META_METHODS, check_plugin
from pannier.registry import PluginManager

from tests.core.plugin_files import (
    BACKEND_CLASS,
    META_CLASS,
    SOURCE_CLASS,
    isolated_imports,  # noqa: F401 - autouse fixture
    namespace_dir,
    plugin_module,
    unique_name,
    write,
    write_dist,
)

META = PluginKind.META
ORIGIN = PluginOrigin("explicit", "tests", None, None, None)


@pytest.fixture
def uniq() -> str:
    return unique_name()


def manager(site: Path) -> PluginManager:
    return PluginManager(search_path=[str(site)])


def _class(source: str, name: str) -> type:
    namespace: dict[str, object] = {}
    exec(source, namespace)
    cls = namespace[name]
    assert isinstance(cls, type)
    return cls


# --- contract checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "source", "error", "reason"),
    [
        (
            "meta",
            plugin_module(META_CLASS, "V", api=7),
            PluginAPIVersionError,
            "written for plugin API version 7; this pannier supports 1",
        ),
        (
            "meta",
            "class V:\n    pass\n\ndef get_plugin_class():\n    return V\n",
            PluginAPIVersionError,
            "V declares no plugin_api_version (supported: 1)",
        ),
        (
            "sources",
            "class V:\n    plugin_api_version = '1'\n    def scan(self): ...\n"
            "def get_plugin_class():\n    return V\n",
            PluginAPIVersionError,
            "plugin_api_version '1' is not an int",
        ),
        (
            "meta",
            "class M:\n    plugin_api_version = 1\n    def get_name(cls): ...\n"
            "def get_plugin_class():\n    return M\n",
            PluginContractError,
            "M lacks the metadata-plugin methods: get_desc, get_version, get_prefix",
        ),
        (
            "backends",
            "class B:\n    plugin_api_version = 1\n    schemes = ('b',)\n"
            "def get_plugin_class():\n    return B\n",
            PluginContractError,
            "B is not a subclass of pannier.Backend",
        ),
        (
            "backends",
            plugin_module(BACKEND_CLASS, "B").replace('schemes = ("x",)', "schemes = ()"),
            PluginContractError,
            "B.schemes must be a non-empty tuple of URL schemes",
        ),
        (
            "sources",
            "class S:\n    plugin_api_version = 1\n\ndef get_plugin_class():\n    return S\n",
            PluginContractError,
            "S has no scan() method",
        ),
        (
            "sources",
            "def get_plugin_class():\n    return 'S'\n",
            PluginContractError,
            "get_plugin_class() returned str 'S', not a class",
        ),
        (
            "meta",
            plugin_module(META_CLASS, "M").replace("return M", "return M()"),
            PluginContractError,
            "get_plugin_class() returned an instance of M, not a class",
        ),
    ],
)
def test_contract_checks_refuse_a_broken_class_with_a_one_line_reason(
    tmp_path: Path,
    uniq: str,
    kind: str,
    source: str,
    error: type[Exception],
    reason: str,
) -> None:
    write(namespace_dir(tmp_path, kind) / f"{uniq}.py", source)
    plugin_kind = {"meta": META, "backends": PluginKind.BACKEND, "sources": PluginKind.SOURCE}[kind]
    pm = manager(tmp_path)
    with pytest.raises(error) as info:
        pm.get(plugin_kind, uniq)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{plugin_kind.value} plugin {uniq!r} (namespace module")
    rec = next(r for r in pm.records(plugin_kind) if r.name == uniq)
    assert rec.status == "failed"
    assert rec.error is not None and rec.error.startswith(reason)


def test_good_plugins_of_each_kind_pass_the_checks(tmp_path: Path, uniq: str) -> None:
    write(namespace_dir(tmp_path, "meta") / f"{uniq}.py", plugin_module(META_CLASS, "M"))
    write(
        namespace_dir(tmp_path, "backends") / f"{uniq}.py",
        plugin_module(BACKEND_CLASS, "B", scheme=uniq),
    )
    write(namespace_dir(tmp_path, "sources") / f"{uniq}.py", plugin_module(SOURCE_CLASS, "S"))
    pm = manager(tmp_path)
    assert pm.get(META, uniq).__name__ == "M"
    assert pm.get(PluginKind.BACKEND, uniq).schemes == (uniq,)
    assert pm.get(PluginKind.SOURCE, uniq).__name__ == "S"


def test_an_entry_point_naming_a_function_is_refused(
    tmp_path: Path, uniq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / f"{uniq}_mod.py", "def factory():\n    return None\n")
    write_dist(tmp_path, "ext", "1", {"pannier.sources": {uniq: f"{uniq}_mod:factory"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginContractError) as info:
        manager(tmp_path).get(PluginKind.SOURCE, uniq)
    assert info.value.reason == (  # type: ignore[attr-defined]
        f"{uniq}_mod:factory is the callable factory, not a class"
    )


def test_hooks_may_be_any_object() -> None:
    check_plugin(PluginKind.HOOK, "h", object(), ORIGIN)
    check_plugin(PluginKind.HOOK, "h", PluginKind, ORIGIN)


def test_every_meta_method_is_required() -> None:
    full = _class(plugin_module(META_CLASS, "Full"), "Full")
    check_plugin(META, "full", full, ORIGIN)
    for method in META_METHODS:
        lacking = type("Lacking", (full,), {method: None})
        with pytest.raises(
            PluginContractError, match=f"lacks the metadata-plugin methods: {method}$"
        ):
            check_plugin(META, "lacking", lacking, ORIGIN)


def test_a_bool_is_not_an_api_version() -> None:
    cls = _class(plugin_module(SOURCE_CLASS, "S"), "S")
    with pytest.raises(PluginAPIVersionError, match="plugin_api_version True is not an int"):
        check_plugin(
            PluginKind.SOURCE, "s", type("B", (cls,), {"plugin_api_version": True}), ORIGIN
        )


def test_backend_schemes_must_be_strings() -> None:
    backend = _class(plugin_module(BACKEND_CLASS, "B"), "B")
    for schemes, problem in (("file", "non-empty tuple"), (("ok", ""), "invalid entries")):
        with pytest.raises(PluginContractError, match=problem):
            check_plugin(
                PluginKind.BACKEND, "b", type("X", (backend,), {"schemes": schemes}), ORIGIN
            )

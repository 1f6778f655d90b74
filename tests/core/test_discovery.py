"""The three discovery channels and what they record as a plugin's origin."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pannier.discovery import (
    CHANNEL_ENTRY_POINT,
    CHANNEL_NAMESPACE,
    CHANNEL_RDB_META,
    builtin_directory,
    discover,
    discover_all,
    namespace_directories,
)
from pannier.plugin import PluginKind

from tests.core.plugin_files import (
    isolated_imports,  # noqa: F401 - autouse fixture
    namespace_dir,
    unique_name,
    write,
    write_dist,
)

EXPLODES = 'raise RuntimeError("imported during discovery")\n'


@pytest.fixture
def uniq() -> str:
    return unique_name()


def names(found: list, channel: str | None = None) -> list[str]:
    return [p.name for p in found if channel is None or p.origin.channel == channel]


# --- namespace channel -----------------------------------------------------------------


def test_namespace_modules_are_found_by_module_name_without_import(
    tmp_path: Path, uniq: str
) -> None:
    meta = namespace_dir(tmp_path, "meta")
    write(meta / f"{uniq}_mod.py", EXPLODES)
    write(meta / f"{uniq}_pkg" / "__init__.py", EXPLODES)
    write(meta / f"_{uniq}_private.py", EXPLODES)
    write(meta / f"{uniq}-not-a-module.py", EXPLODES)
    write(meta / f"{uniq}_nopkg" / "data.txt", "no __init__ here")
    write(meta / "README.txt", "not python")

    found = discover(PluginKind.META, entry_points=False, search_path=[str(tmp_path)])

    mine = sorted(n for n in names(found, CHANNEL_NAMESPACE) if uniq in n)
    assert mine == [f"{uniq}_mod", f"{uniq}_pkg"]
    plugin = next(p for p in found if p.name == f"{uniq}_mod")
    assert plugin.origin.module == f"pannier.plugins.meta.{uniq}_mod"
    assert plugin.origin.file == str(meta / f"{uniq}_mod.py")
    assert plugin.origin.distribution is None
    assert not plugin.origin.builtin
    assert not any(uniq in m for m in sys.modules)


def test_namespace_directories_of_every_search_path_entry_are_scanned(
    tmp_path: Path, uniq: str
) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    write(namespace_dir(first, "backends") / f"{uniq}_a.py", EXPLODES)
    write(namespace_dir(second, "backends") / f"{uniq}_b.py", EXPLODES)

    search = [str(first), str(tmp_path / "missing"), str(second)]
    found = discover(PluginKind.BACKEND, entry_points=False, search_path=search)

    assert [n for n in names(found) if uniq in n] == [f"{uniq}_a", f"{uniq}_b"]
    directories = namespace_directories(PluginKind.BACKEND, search)
    assert directories[0] == builtin_directory(PluginKind.BACKEND)
    assert directories[1:] == [
        str(namespace_dir(first, "backends")),
        str(namespace_dir(second, "backends")),
    ]


def test_builtins_are_namespace_modules_of_pannier_itself() -> None:
    directory = builtin_directory(PluginKind.META)
    assert directory is not None and Path(directory).is_dir()
    modules = sorted(p.stem for p in Path(directory).glob("*.py") if not p.name.startswith("_"))
    found = discover(PluginKind.META, entry_points=False, search_path=[])
    builtins = [p for p in found if p.origin.builtin]
    assert sorted(p.name for p in builtins) == modules
    for plugin in builtins:
        assert plugin.origin.channel == CHANNEL_NAMESPACE
        assert plugin.origin.distribution == "pannier"
        assert plugin.origin.version
    assert builtin_directory(PluginKind.HOOK) is None


def test_hooks_have_no_namespace_package(tmp_path: Path) -> None:
    write(tmp_path / "pannier" / "plugins" / "hooks" / "x.py", EXPLODES)
    assert discover(PluginKind.HOOK, entry_points=False, search_path=[str(tmp_path)]) == []


# --- rdb_meta channel ------------------------------------------------------------------


def test_rdb_meta_modules_anywhere_on_the_path_are_meta_plugins(tmp_path: Path, uniq: str) -> None:
    write(tmp_path / "a" / f"rdb_meta_{uniq}.py", EXPLODES)
    write(tmp_path / "b" / f"rdb_meta_{uniq}pkg" / "__init__.py", EXPLODES)
    write(tmp_path / "b" / "rdb_meta_.py", EXPLODES)  # no name: ignored
    write(tmp_path / "b" / f"rdb_meta__{uniq}.py", EXPLODES)  # private: ignored
    write(tmp_path / "b" / f"rdb_metaX{uniq}.py", EXPLODES)  # not the prefix

    search = [str(tmp_path / "a"), str(tmp_path / "b")]
    meta = discover(PluginKind.META, entry_points=False, search_path=search)

    found = [p for p in meta if p.origin.channel == CHANNEL_RDB_META]
    assert [p.name for p in found] == [uniq, f"{uniq}pkg"]
    assert found[0].origin.module == f"rdb_meta_{uniq}"
    assert found[0].origin.file == str(tmp_path / "a" / f"rdb_meta_{uniq}.py")
    for kind in (PluginKind.BACKEND, PluginKind.SOURCE, PluginKind.HOOK):
        assert uniq not in names(discover(kind, entry_points=False, search_path=search))
    assert not any(uniq in m for m in sys.modules)


# --- entry-point channel ---------------------------------------------------------------


def test_entry_points_give_name_distribution_and_version(tmp_path: Path, uniq: str) -> None:
    write_dist(
        tmp_path,
        "pannier-ext-test",
        "2.5",
        {
            "pannier.meta": {f"{uniq}_m": f"{uniq}_mod:Meta"},
            "pannier.backends": {f"{uniq}_b": f"{uniq}_mod"},
            "pannier.hooks": {f"{uniq}_h": f"{uniq}_hooks"},
            "console_scripts": {f"{uniq}_c": f"{uniq}_mod:main"},
        },
    )
    found = discover_all(search_path=[str(tmp_path)])

    meta = [p for p in found[PluginKind.META] if p.origin.channel == CHANNEL_ENTRY_POINT]
    assert [(p.name, p.target) for p in meta] == [(f"{uniq}_m", f"{uniq}_mod:Meta")]
    origin = meta[0].origin
    assert (origin.distribution, origin.version) == ("pannier-ext-test", "2.5")
    assert origin.file == str(tmp_path / "pannier_ext_test-2.5.dist-info")
    assert names(found[PluginKind.BACKEND], CHANNEL_ENTRY_POINT) == [f"{uniq}_b"]
    assert names(found[PluginKind.HOOK], CHANNEL_ENTRY_POINT) == [f"{uniq}_h"]
    assert uniq + "_c" not in str(found)


def test_entry_points_false_ignores_installed_distributions(tmp_path: Path, uniq: str) -> None:
    write_dist(tmp_path, "ext", "1", {"pannier.meta": {uniq: f"{uniq}:X"}})
    found = discover(PluginKind.META, entry_points=False, search_path=[str(tmp_path)])
    assert uniq not in names(found)


def test_a_distribution_seen_earlier_on_the_path_hides_a_later_copy(
    tmp_path: Path, uniq: str
) -> None:
    write_dist(tmp_path / "new", "ext", "2.0", {"pannier.meta": {uniq: "new_mod:X"}})
    write_dist(tmp_path / "old", "ext", "1.0", {"pannier.meta": {uniq: "old_mod:X"}})
    found = discover(PluginKind.META, search_path=[str(tmp_path / "new"), str(tmp_path / "old")])
    assert [(p.target, p.origin.version) for p in found if p.name == uniq] == [("new_mod:X", "2.0")]


def test_egg_info_directories_count_too(tmp_path: Path, uniq: str) -> None:
    egg = tmp_path / "legacy.egg-info"
    write(egg / "PKG-INFO", "Metadata-Version: 1.1\nName: legacy\nVersion: 0.3\n\n")
    write(egg / "entry_points.txt", f"[pannier.sources]\n{uniq} = legacy_mod:Source\n")
    found = discover(PluginKind.SOURCE, search_path=[str(tmp_path)])
    plugin = next(p for p in found if p.name == uniq)
    assert (plugin.origin.distribution, plugin.origin.version) == ("legacy", "0.3")


# --- precedence order ------------------------------------------------------------------


def test_channels_come_in_precedence_order(tmp_path: Path, uniq: str) -> None:
    write(namespace_dir(tmp_path, "meta") / f"{uniq}.py", EXPLODES)
    write(tmp_path / f"rdb_meta_{uniq}.py", EXPLODES)
    write_dist(tmp_path, "ext", "1", {"pannier.meta": {uniq: f"{uniq}_ep:X"}})
    found = discover(PluginKind.META, search_path=[str(tmp_path)])
    assert [p.origin.channel for p in found if p.name == uniq] == [
        CHANNEL_ENTRY_POINT,
        CHANNEL_RDB_META,
        CHANNEL_NAMESPACE,
    ]


def test_the_default_search_path_is_sys_path(
    tmp_path: Path, uniq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / f"rdb_meta_{uniq}.py", EXPLODES)
    write(namespace_dir(tmp_path, "sources") / f"{uniq}.py", EXPLODES)
    assert uniq not in names(discover(PluginKind.META, entry_points=False))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert uniq in names(discover(PluginKind.META, entry_points=False))
    assert uniq in names(discover(PluginKind.SOURCE, entry_points=False))
    assert str(namespace_dir(tmp_path, "sources")) in namespace_directories(PluginKind.SOURCE)

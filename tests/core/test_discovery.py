"""The three discovery channels, what they record as origin, and importing one plugin."""

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
    import_plugin,
    namespace_directories,
)
from pannier.errors import PluginLoadError
from pannier.plugin import PluginKind

from tests.core.plugin_files import (
    META_CLASS,
    isolated_imports,  # noqa: F401 - autouse fixture
    namespace_dir,
    plugin_module,
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


# --- importing one plugin --------------------------------------------------------------


def _one(kind: PluginKind, search: list[str], name: str):  # type: ignore[no-untyped-def]
    return next(p for p in discover(kind, search_path=search) if p.name == name)


def test_import_plugin_returns_the_class_from_a_module_off_the_import_path(
    tmp_path: Path, uniq: str
) -> None:
    write(namespace_dir(tmp_path, "meta") / f"{uniq}.py", plugin_module(META_CLASS, "Good"))
    write(tmp_path / f"rdb_meta_{uniq}r.py", plugin_module(META_CLASS, "GoodRdb"))
    search = [str(tmp_path)]  # not on sys.path: loaded from its file

    cls = import_plugin(_one(PluginKind.META, search, uniq))
    assert isinstance(cls, type) and cls.__name__ == "Good"
    assert sys.modules[f"pannier.plugins.meta.{uniq}"].__file__ == str(
        namespace_dir(tmp_path, "meta") / f"{uniq}.py"
    )
    rdb = import_plugin(_one(PluginKind.META, search, f"{uniq}r"))
    assert isinstance(rdb, type) and rdb.__name__ == "GoodRdb"


def test_import_plugin_from_an_entry_point_attribute_or_module(
    tmp_path: Path, uniq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / f"{uniq}_mod.py", plugin_module(META_CLASS, "ViaModule") + "\nAttr = 42\n")
    write_dist(
        tmp_path,
        "ext",
        "1",
        {
            "pannier.meta": {"a": f"{uniq}_mod:ViaModule", "b": f"{uniq}_mod"},
            "pannier.hooks": {"h": f"{uniq}_mod"},
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    search = [str(tmp_path)]
    assert import_plugin(_one(PluginKind.META, search, "a")).__name__ == "ViaModule"  # type: ignore[attr-defined]
    assert import_plugin(_one(PluginKind.META, search, "b")).__name__ == "ViaModule"  # type: ignore[attr-defined]
    assert import_plugin(_one(PluginKind.HOOK, search, "h")) is sys.modules[f"{uniq}_mod"]


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("def broken(:\n    pass\n", "import failed: SyntaxError:"),
        (
            "import pannier_no_such_dependency_xyz\n",
            "No module named 'pannier_no_such_dependency_xyz'",
        ),
        ("X = 1\n", "has no get_plugin_class()"),
        ("get_plugin_class = 3\n", "get_plugin_class is not callable"),
        (
            "def get_plugin_class():\n    raise KeyError('boom')\n",
            "get_plugin_class() raised KeyError",
        ),
        ("import sys\nsys.exit(3)\n", "import failed: SystemExit: 3"),
    ],
)
def test_a_plugin_that_cannot_be_imported_raises_plugin_load_error(
    tmp_path: Path, uniq: str, source: str, reason: str
) -> None:
    file = write(namespace_dir(tmp_path, "sources") / f"{uniq}.py", source)
    plugin = _one(PluginKind.SOURCE, [str(tmp_path)], uniq)

    with pytest.raises(PluginLoadError) as info:
        import_plugin(plugin)

    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"source plugin {uniq!r} (namespace module")
    assert str(file) in message
    assert reason in message
    assert reason in info.value.reason  # type: ignore[attr-defined]
    if "import failed" in reason or "No module" in reason:  # nothing half-imported is kept
        assert f"pannier.plugins.sources.{uniq}" not in sys.modules


def test_a_same_named_module_already_imported_from_elsewhere_is_not_taken_for_it(
    tmp_path: Path, uniq: str
) -> None:
    for site in ("one", "two"):
        write(tmp_path / site / f"rdb_meta_{uniq}.py", plugin_module(META_CLASS, site.title()))
    first = _one(PluginKind.META, [str(tmp_path / "one")], uniq)
    second = _one(PluginKind.META, [str(tmp_path / "two")], uniq)
    assert import_plugin(first).__name__ == "One"  # type: ignore[attr-defined]
    assert import_plugin(first).__name__ == "One"  # type: ignore[attr-defined]
    with pytest.raises(PluginLoadError, match=f"another module rdb_meta_{uniq} is already"):
        import_plugin(second)


def test_syntax_error_names_file_and_line(tmp_path: Path, uniq: str) -> None:
    write(tmp_path / f"rdb_meta_{uniq}.py", '"""doc"""\n\n\nx = (\n')
    plugin = _one(PluginKind.META, [str(tmp_path)], uniq)
    with pytest.raises(PluginLoadError, match=rf"rdb_meta_{uniq}\.py, line 4"):
        import_plugin(plugin)


def test_entry_point_to_a_missing_attribute(
    tmp_path: Path, uniq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / f"{uniq}_mod.py", "X = 1\n")
    write_dist(tmp_path, "ext", "1", {"pannier.backends": {uniq: f"{uniq}_mod:Nope"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginLoadError, match=r"entry point of ext 1 .*has no attribute 'Nope'"):
        import_plugin(_one(PluginKind.BACKEND, [str(tmp_path)], uniq))

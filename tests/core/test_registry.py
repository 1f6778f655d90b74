"""The plugin manager: lazy loading, isolation, precedence, filters, contract checks."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from pannier.errors import (
    PluginAPIVersionError,
    PluginContractError,
    PluginLoadError,
    PluginNotFoundError,
)
from pannier.plugin import PluginKind
from pannier.registry import (
    PluginManager,
    PluginRecord,
    get_plugin_manager,
    reset_plugin_manager,
)

from tests.core.plugin_files import (
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


@pytest.fixture
def uniq() -> str:
    return unique_name()


def manager(site: Path, **options: object) -> PluginManager:
    """A manager that sees ``site`` (and pannier's built-ins) and nothing ambient."""
    return PluginManager(search_path=[str(site)], **options)  # type: ignore[arg-type]


def record(pm: PluginManager, kind: PluginKind, name: str) -> PluginRecord:
    [found] = [r for r in pm.records(kind) if r.name == name and r.enabled]
    return found


def builtin_meta_name() -> str:
    pm = PluginManager(entry_points=False, search_path=[])
    return next(r.name for r in pm.records(META) if r.builtin)


# --- laziness --------------------------------------------------------------------------


def test_records_import_nothing_and_get_imports_only_the_plugin_asked_for(
    tmp_path: Path, uniq: str
) -> None:
    meta = namespace_dir(tmp_path, "meta")
    write(meta / f"{uniq}_good.py", plugin_module(META_CLASS, "Good"))
    write(meta / f"{uniq}_other.py", plugin_module(META_CLASS, "Other"))
    pm = manager(tmp_path)

    statuses = {r.name: r.status for r in pm.records(META) if uniq in r.name}
    assert statuses == {f"{uniq}_good": "available", f"{uniq}_other": "available"}
    assert not any(uniq in m for m in sys.modules)

    cls = pm.get(META, f"{uniq}_good")
    assert cls.__name__ == "Good"
    assert record(pm, META, f"{uniq}_good").status == "loaded"
    assert record(pm, META, f"{uniq}_good").plugin_class is cls
    assert record(pm, META, f"{uniq}_other").status == "available"
    assert f"pannier.plugins.meta.{uniq}_other" not in sys.modules
    assert pm.get(META, f"{uniq}_good") is cls


# --- isolation -------------------------------------------------------------------------


def test_load_all_records_a_failure_and_loads_the_others(tmp_path: Path, uniq: str) -> None:
    src = namespace_dir(tmp_path, "sources")
    write(src / f"{uniq}_good.py", plugin_module(SOURCE_CLASS, "GoodSource"))
    write(src / f"{uniq}_bad.py", "import pannier_missing_dependency_qq\n")
    pm = manager(tmp_path)

    loaded = pm.load_all(PluginKind.SOURCE)

    assert loaded[f"{uniq}_good"].__name__ == "GoodSource"
    assert f"{uniq}_bad" not in loaded
    bad = record(pm, PluginKind.SOURCE, f"{uniq}_bad")
    assert bad.status == "failed"
    assert bad.error == (
        "import failed: ModuleNotFoundError: No module named 'pannier_missing_dependency_qq'"
    )
    assert bad in pm.failed(PluginKind.SOURCE)


def test_strict_mode_raises_after_trying_every_plugin(tmp_path: Path, uniq: str) -> None:
    src = namespace_dir(tmp_path, "sources")
    write(src / f"{uniq}_a_bad.py", "raise ValueError('nope')\n")
    write(src / f"{uniq}_b_good.py", plugin_module(SOURCE_CLASS, "GoodSource"))
    pm = manager(tmp_path, strict=True)

    with pytest.raises(PluginLoadError, match="ValueError: nope"):
        pm.load_all(PluginKind.SOURCE)
    assert record(pm, PluginKind.SOURCE, f"{uniq}_b_good").status == "loaded"
    assert pm.load_all(PluginKind.SOURCE, strict=False)[f"{uniq}_b_good"].__name__ == "GoodSource"


def test_get_of_a_broken_plugin_names_plugin_origin_and_cause_every_time(
    tmp_path: Path, uniq: str
) -> None:
    file = write(tmp_path / f"rdb_meta_{uniq}.py", "def get_plugin_class(:\n")
    pm = manager(tmp_path)

    for _ in range(2):
        with pytest.raises(PluginLoadError) as info:
            pm.get(META, uniq)
        message = str(info.value)
        assert f"meta plugin {uniq!r}" in message
        assert f"rdb_meta module rdb_meta_{uniq} ({file})" in message
        assert "SyntaxError" in message


def test_not_found_lists_available_and_failed_names(tmp_path: Path, uniq: str) -> None:
    src = namespace_dir(tmp_path, "sources")
    write(src / f"{uniq}_ok.py", plugin_module(SOURCE_CLASS, "Ok"))
    write(src / f"{uniq}_bad.py", "raise OSError('disk on fire')\n")
    pm = manager(tmp_path)
    pm.load_all(PluginKind.SOURCE)

    with pytest.raises(PluginNotFoundError) as info:
        pm.get(PluginKind.SOURCE, "nosuch")
    message = str(info.value)
    assert message.startswith("no source plugin named 'nosuch'; available: ")
    assert f"{uniq}_ok" in message.split("; failed")[0]
    assert f"failed to load: {uniq}_bad (import failed: OSError: disk on fire)" in message


# --- precedence and shadowing ----------------------------------------------------------


def test_precedence_explicit_entry_point_rdb_meta_namespace(
    tmp_path: Path, uniq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(namespace_dir(tmp_path, "meta") / f"{uniq}.py", plugin_module(META_CLASS, "FromNs"))
    write(tmp_path / f"rdb_meta_{uniq}.py", plugin_module(META_CLASS, "FromRdb"))
    write(tmp_path / f"{uniq}_ep.py", plugin_module(META_CLASS, "FromEp"))
    write_dist(tmp_path, "ext", "1", {"pannier.meta": {uniq: f"{uniq}_ep:FromEp"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = manager(tmp_path)

    assert pm.get(META, uniq).__name__ == "FromEp"
    mine = [r for r in pm.records(META) if r.name == uniq]
    assert [(r.origin.channel, r.status) for r in mine] == [
        ("entry-point", "loaded"),
        ("rdb_meta", "shadowed"),
        ("namespace", "shadowed"),
    ]
    assert mine[1].shadowed_by == mine[0].origin
    assert mine[2].shadowed_by == mine[0].origin

    explicit = type("Explicit", (pm.get(META, uniq),), {})
    pm.register(META, uniq, explicit)
    assert pm.get(META, uniq) is explicit
    mine = [r for r in pm.records(META) if r.name == uniq]
    assert [(r.origin.channel, r.status) for r in mine] == [
        ("explicit", "loaded"),
        ("entry-point", "shadowed"),
        ("rdb_meta", "shadowed"),
        ("namespace", "shadowed"),
    ]
    assert {r.shadowed_by for r in mine[1:]} == {mine[0].origin}


def test_first_on_the_search_path_wins_within_a_channel(tmp_path: Path, uniq: str) -> None:
    write(tmp_path / "a" / f"rdb_meta_{uniq}.py", plugin_module(META_CLASS, "First"))
    write(tmp_path / "b" / f"rdb_meta_{uniq}.py", plugin_module(META_CLASS, "Second"))
    pm = PluginManager(search_path=[str(tmp_path / "a"), str(tmp_path / "b")])
    assert pm.get(META, uniq).__name__ == "First"
    second = [r for r in pm.records(META) if r.name == uniq][1]
    assert second.status == "shadowed"
    assert second.origin.file == str(tmp_path / "b" / f"rdb_meta_{uniq}.py")


def test_a_builtin_shadows_a_namespace_module_of_the_same_name_elsewhere(
    tmp_path: Path,
) -> None:
    name = builtin_meta_name()
    write(namespace_dir(tmp_path, "meta") / f"{name}.py", plugin_module(META_CLASS, "Impostor"))
    pm = manager(tmp_path)
    records = [r for r in pm.records(META) if r.name == name]
    assert [r.builtin for r in records] == [True, False]
    assert records[1].status == "shadowed"
    assert records[1].shadowed_by == records[0].origin


# --- disabling and PANNIER_LOAD_PLUGINS ------------------------------------------------


def test_disable_by_name_or_kind_and_name(tmp_path: Path, uniq: str) -> None:
    write(namespace_dir(tmp_path, "meta") / f"{uniq}.py", plugin_module(META_CLASS, "M"))
    write(namespace_dir(tmp_path, "sources") / f"{uniq}.py", plugin_module(SOURCE_CLASS, "S"))
    pm = manager(tmp_path, disabled=[f"meta:{uniq}"])

    assert record(pm, PluginKind.SOURCE, uniq).status == "available"
    [meta] = [r for r in pm.records(META) if r.name == uniq]
    assert (meta.status, meta.reason) == (
        "disabled",
        "disabled with --disable-plugin or PANNIER_DISABLE_PLUGINS",
    )
    with pytest.raises(PluginNotFoundError, match=f"meta plugin '{uniq}' is disabled"):
        pm.get(META, uniq)
    assert uniq not in pm.load_all(META)

    pm.disable(uniq)
    assert [r.status for r in pm.records() if r.name == uniq] == ["disabled", "disabled"]


def test_disabling_the_winner_does_not_resurrect_a_shadowed_one(tmp_path: Path, uniq: str) -> None:
    write(tmp_path / f"rdb_meta_{uniq}.py", plugin_module(META_CLASS, "Rdb"))
    write(namespace_dir(tmp_path, "meta") / f"{uniq}.py", plugin_module(META_CLASS, "Ns"))
    pm = manager(tmp_path, disabled=[uniq])
    assert {r.status for r in pm.records(META) if r.name == uniq} == {"disabled"}


def test_load_plugins_empty_keeps_only_builtins(tmp_path: Path, uniq: str) -> None:
    write(tmp_path / f"rdb_meta_{uniq}.py", plugin_module(META_CLASS, "Third"))
    pm = manager(tmp_path, load_plugins=[])

    [third] = [r for r in pm.records(META) if r.name == uniq]
    assert (third.status, third.reason) == ("disabled", "not listed in PANNIER_LOAD_PLUGINS")
    builtins = [r for r in pm.records(META) if r.builtin]
    assert builtins and all(r.status == "available" for r in builtins)


def test_load_plugins_list_adds_the_named_ones(tmp_path: Path, uniq: str) -> None:
    write(tmp_path / f"rdb_meta_{uniq}a.py", plugin_module(META_CLASS, "A"))
    write(tmp_path / f"rdb_meta_{uniq}b.py", plugin_module(META_CLASS, "B"))
    pm = manager(tmp_path, load_plugins=[f"{uniq}a"])
    assert pm.get(META, f"{uniq}a").__name__ == "A"
    with pytest.raises(PluginNotFoundError, match="not listed in PANNIER_LOAD_PLUGINS"):
        pm.get(META, f"{uniq}b")


def test_a_third_party_override_left_out_by_load_plugins_restores_the_builtin(
    tmp_path: Path,
) -> None:
    name = builtin_meta_name()
    write(tmp_path / f"rdb_meta_{name}.py", plugin_module(META_CLASS, "Override"))
    assert manager(tmp_path).record(META, name).origin.channel == "rdb_meta"  # type: ignore[union-attr]
    pm = manager(tmp_path, load_plugins=[])
    winner = pm.record(META, name)
    assert winner is not None and winner.builtin


def test_concurrent_gets_import_a_plugin_once(tmp_path: Path, uniq: str) -> None:
    counter = tmp_path / "imports.txt"
    source = f"open({str(counter)!r}, 'a').write('x')\n" + plugin_module(META_CLASS, "Once")
    write(tmp_path / f"rdb_meta_{uniq}.py", source)
    pm = manager(tmp_path)
    results: list[type] = []

    def worker() -> None:
        results.append(pm.get(META, uniq))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert counter.read_text() == "x"


# --- explicit registration -------------------------------------------------------------


def _meta_class(name: str) -> type:
    namespace: dict[str, object] = {}
    exec(plugin_module(META_CLASS, name), namespace)
    cls = namespace[name]
    assert isinstance(cls, type)
    return cls


def test_register_checks_the_contract_at_once() -> None:
    pm = PluginManager(entry_points=False, search_path=[])
    with pytest.raises(PluginContractError, match="lacks the metadata-plugin methods"):
        pm.register(META, "half", type("Half", (), {"plugin_api_version": 1}))
    with pytest.raises(PluginAPIVersionError):
        pm.register(META, "old", type("Old", (_meta_class("Base"),), {"plugin_api_version": 0}))
    assert pm.record(META, "half") is None and pm.record(META, "old") is None


def test_a_later_registration_wins_and_the_same_class_twice_changes_nothing() -> None:
    pm = PluginManager(entry_points=False, search_path=[])
    first, second = _meta_class("First"), _meta_class("Second")
    pm.register(META, "x", first)
    pm.register(META, "x", first)
    assert [r.status for r in pm.records(META) if r.name == "x"] == ["loaded"]
    pm.register(META, "x", second)
    assert pm.get(META, "x") is second
    assert [r.status for r in pm.records(META) if r.name == "x"] == ["loaded", "shadowed"]
    assert {r.origin.channel for r in pm.records(META) if r.name == "x"} == {"explicit"}


def test_registered_plugins_ignore_load_plugins_but_not_disable() -> None:
    pm = PluginManager(entry_points=False, search_path=[], load_plugins=[], disabled=["gone"])
    pm.register(META, "kept", _meta_class("Kept"))
    pm.register(META, "gone", _meta_class("Gone"))
    assert pm.get(META, "kept").__name__ == "Kept"
    with pytest.raises(PluginNotFoundError, match="disabled"):
        pm.get(META, "gone")


# --- the process-wide manager ----------------------------------------------------------


def test_get_plugin_manager_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    reset_plugin_manager()
    monkeypatch.setenv("PANNIER_LOAD_PLUGINS", " a, b ,,")
    monkeypatch.setenv("PANNIER_DISABLE_PLUGINS", "c,meta:d")
    monkeypatch.setenv("PANNIER_STRICT_PLUGINS", "1")
    try:
        pm = get_plugin_manager()
        assert pm is get_plugin_manager()
        assert pm.load_plugins == ["a", "b"]
        assert pm.disabled == {"c", "meta:d"}
        assert pm.strict is True
        monkeypatch.setenv("PANNIER_LOAD_PLUGINS", "")
        monkeypatch.delenv("PANNIER_STRICT_PLUGINS")
        assert get_plugin_manager() is pm
        reset_plugin_manager()
        fresh = get_plugin_manager()
        assert fresh is not pm
        assert fresh.load_plugins == []
        assert fresh.strict is False
        monkeypatch.delenv("PANNIER_LOAD_PLUGINS")
        reset_plugin_manager()
        assert get_plugin_manager().load_plugins is None
    finally:
        reset_plugin_manager()

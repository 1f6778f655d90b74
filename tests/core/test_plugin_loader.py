"""Importing one discovered plugin, and the one-line errors when that fails."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pannier.discovery import discover
from pannier.errors import PluginLoadError
from pannier.plugin import PluginKind
from pannier.plugin_loader import import_plugin, one_line

from tests.core.plugin_files import (
    META_CLASS,
    isolated_imports,  # noqa: F401 - autouse fixture
    namespace_dir,
    plugin_module,
    unique_name,
    write,
    write_dist,
)


@pytest.fixture
def uniq() -> str:
    return unique_name()


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


def test_one_line_flattens_messages() -> None:
    assert one_line(ValueError("a\n  b")) == "ValueError: a b"
    assert one_line(KeyError()) == "KeyError"
    error = SyntaxError("bad", ("/x/y.py", 3, 1, "x"))
    assert one_line(error) == "SyntaxError: bad (y.py, line 3)"

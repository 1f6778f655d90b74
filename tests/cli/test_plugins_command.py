"""``pannier plugins`` in real subprocesses, next to real broken plugins of every kind.

The fixtures (tests/fixtures/broken_plugins) are two search-path roots:

* ``site/`` -- top-level modules: ``rdb_meta_*`` plugins, hook plugins, and a
  ``*.dist-info`` whose entry points publish hooks and plugins of every kind;
* ``namespace/`` -- ``pannier/plugins/{backends,meta,sources}/`` modules that join the
  namespace packages: one broken plugin per failure and kind, working ones, and duplicates.

With pannier installed as a regular package (a wheel), both roots go on ``PYTHONPATH``.
With an editable install, a ``pannier/`` directory on ``PYTHONPATH`` would be taken for
pannier itself by Python's import system (the editable finder runs after the path
finder), so ``namespace/`` is appended to ``sys.path`` once pannier is imported -- the
same directory scanned the same way.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "broken_plugins"
SITE = FIXTURES / "site"
NAMESPACE = FIXTURES / "namespace"

LATE_NAMESPACE = (
    "import sys, pannier\n"
    f"sys.path.append({str(NAMESPACE)!r})\n"
    "from pannier.cli import main\n"
    "sys.exit(main())\n"
)

#: name -> (kind, the one-line reason `pannier plugins` must give)
BROKEN = {
    **{
        f"broken_syntax_{k}": (k, "import failed: SyntaxError: expected ':' (")
        for k in ("backend", "meta", "source")
    },
    **{
        f"broken_import_{k}": (
            k,
            "import failed: ModuleNotFoundError: "
            "No module named 'pannier_fixture_dependency_that_does_not_exist'",
        )
        for k in ("backend", "meta", "source")
    },
    **{
        f"broken_noclass_{k}": (
            k,
            f"module pannier.plugins.{k}s.broken_noclass_{k} has no get_plugin_class()",
        )
        if k != "meta"
        else (k, "module pannier.plugins.meta.broken_noclass_meta has no get_plugin_class()")
        for k in ("backend", "meta", "source")
    },
    **{
        f"broken_apiversion_{k}": (k, "written for plugin API version 99; this pannier supports 1")
        for k in ("backend", "meta", "source")
    },
    "broken_wrongtype_backend": (
        "backend",
        "get_plugin_class() returned str 'FileBackend', not a class",
    ),
    "broken_wrongtype_meta": ("meta", "get_plugin_class() returned an instance of FixtureGoodMeta"),
    "broken_wrongtype_source": ("source", "get_plugin_class() returned NoneType None, not a class"),
    "broken_contract_backend": ("backend", "NotABackend is not a subclass of pannier.Backend"),
    "broken_contract_meta": ("meta", "HalfMeta lacks the metadata-plugin methods: get_desc"),
    "broken_contract_source": ("source", "NoScan has no scan() method"),
    "broken_ep_backend": (
        "backend",
        "import failed: ModuleNotFoundError: No module named 'pannier_fixture_missing_module'",
    ),
    "broken_ep_attr_meta": ("meta", "module fixture_ep_meta has no attribute 'NoSuchClass'"),
    "broken_ep_source": ("source", "module fixture_ep_meta has no get_plugin_class()"),
    "fixture_rdb_syntax": (
        "meta",
        "import failed: SyntaxError: invalid syntax (rdb_meta_fixture_rdb_syntax.py, line 3)",
    ),
    "fixture_hooks_broken": (
        "hook",
        "import failed: RuntimeError: fixture hook plugin refuses to import",
    ),
    "fixture_hooks_unknown": ("hook", "implements unknown hook(s): pannier_bakup_start"),
}

WORKING = {
    ("backend", "fixture_good"),
    ("meta", "fixture_good"),
    ("source", "fixture_good"),
    ("hook", "fixture_hooks_good"),
    ("meta", "fixture_dup"),
}


#: Every plugin name the fixtures define: the runs allow these (and the built-ins) only, so
#: a plugin installed on the machine cannot change what the tests see.
FIXTURE_NAMES = sorted({*BROKEN, *(name for _, name in WORKING), "file"})


def needs_an_extra(record: dict[str, Any]) -> bool:
    """A built-in backend whose optional dependency is not installed (not a broken plugin:
    its error says which extra to install)."""
    return bool(record["builtin"] and "pip install 'pannier[" in (record["error"] or ""))


def pannier_is_a_regular_package() -> bool:
    spec = importlib.util.find_spec("pannier")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent.name == "pannier"


def pannier(
    tmp_path: Path, *args: str, fixtures: bool = True, **env_extra: str
) -> subprocess.CompletedProcess[str]:
    """Run ``pannier ARGS`` in a subprocess, with the broken-plugin fixtures on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANNIER_")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    if fixtures:
        env["PANNIER_LOAD_PLUGINS"] = ",".join(FIXTURE_NAMES)
    env.update(env_extra)
    command = [sys.executable, "-m", "pannier", *args]
    if fixtures:
        if pannier_is_a_regular_package():
            env["PYTHONPATH"] = os.pathsep.join([str(SITE), str(NAMESPACE)])
        else:
            env["PYTHONPATH"] = str(SITE)
            command = [sys.executable, "-c", LATE_NAMESPACE, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)


def listing(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    return data


def by_name(records: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault((r["kind"], r["name"]), []).append(r)
    return out


@pytest.fixture(scope="module")
def broken_listing(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    return pannier(tmp_path_factory.mktemp("listing"), "plugins", "--json")


def test_every_broken_plugin_gets_its_one_line_reason(
    broken_listing: subprocess.CompletedProcess[str],
) -> None:
    assert broken_listing.returncode == 0, broken_listing.stderr
    records = by_name(listing(broken_listing))
    for name, (kind, reason) in BROKEN.items():
        [record] = records[(kind, name)]
        assert record["status"] == "failed", record
        assert "\n" not in record["error"]
        assert record["error"].startswith(reason), (name, record["error"])


def test_everything_else_still_works(broken_listing: subprocess.CompletedProcess[str]) -> None:
    records = listing(broken_listing)
    builtins = [r for r in records if r["builtin"]]
    assert {r["kind"] for r in builtins} >= {"backend", "meta", "source"}
    assert [r for r in builtins if r["status"] != "loaded" and not needs_an_extra(r)] == []
    grouped = by_name(records)
    for key in WORKING:
        assert grouped[key][0]["status"] == "loaded", grouped[key]
    failed = {r["name"] for r in records if r["status"] == "failed" and not needs_an_extra(r)}
    assert failed == set(BROKEN)


def test_duplicate_names_are_shadowed_by_precedence(
    broken_listing: subprocess.CompletedProcess[str],
) -> None:
    grouped = by_name(listing(broken_listing))
    dup = grouped[("meta", "fixture_dup")]
    assert [(r["origin"]["channel"], r["status"]) for r in dup] == [
        ("entry-point", "loaded"),
        ("rdb_meta", "shadowed"),
        ("namespace", "shadowed"),
    ]
    for loser in dup[1:]:
        assert loser["shadowed_by"]["channel"] == "entry-point"
        assert loser["shadowed_by"]["distribution"] == "fixture-entry-points"
    file_backends = grouped[("backend", "file")]
    assert [(r["builtin"], r["status"]) for r in file_backends] == [
        (True, "loaded"),
        (False, "shadowed"),
    ]
    assert file_backends[1]["shadowed_by"]["builtin"] is True


def test_entry_point_origin_names_distribution_and_version(
    broken_listing: subprocess.CompletedProcess[str],
) -> None:
    [hook] = by_name(listing(broken_listing))[("hook", "fixture_hooks_good")]
    assert hook["origin"]["channel"] == "entry-point"
    assert (hook["origin"]["distribution"], hook["origin"]["version"]) == (
        "fixture-entry-points",
        "1.0",
    )
    assert hook["origin"]["module"] == "fixture_hooks_good"
    assert hook["hooks"] == ["pannier_register_commands"]
    assert by_name(listing(broken_listing))[("meta", "fixture_good")][0]["hooks"] is None


def test_the_table_shows_one_line_per_plugin(tmp_path: Path) -> None:
    result = pannier(tmp_path, "plugins", "--kind", "source")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "ORIGIN", "DISTRIBUTION", "FILE", "STATUS", "ERROR"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "failed" in rows["broken_contract_source"]
    assert rows["broken_contract_source"].endswith("NoScan has no scan() method")
    assert "built-in" in rows["filesystem"] and "loaded" in rows["filesystem"]
    assert {line.split()[1] for line in lines[1:]} == {"source"}


def test_the_table_says_who_shadows_and_why_disabled(tmp_path: Path) -> None:
    result = pannier(tmp_path, "plugins", "--kind", "backend", "--disable-plugin", "fixture_good")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[1:]
    [impostor] = [r for r in rows if r.startswith("file ") and "shadowed" in r]
    assert "shadowed  shadowed by built-in module pannier.plugins.backends.file" in impostor
    [disabled] = [r for r in rows if r.startswith("fixture_good ")]
    assert disabled.endswith("disabled  disabled with --disable-plugin or PANNIER_DISABLE_PLUGINS")


def test_strict_plugins_exits_non_zero_naming_the_failures(tmp_path: Path) -> None:
    result = pannier(tmp_path, "plugins", "--json", "--strict-plugins")
    assert result.returncode == 1
    failed = [r for r in listing(result) if r["status"] == "failed"]
    assert len(failed) >= len(BROKEN)
    [line] = result.stderr.splitlines()
    assert line.startswith(
        f"pannier: error: {len(failed)} plugin(s) failed to load (strict mode): "
    )
    for name, (kind, _) in BROKEN.items():
        assert f"{kind}:{name}" in line


def test_strict_environment_variable_fails_too(tmp_path: Path) -> None:
    result = pannier(tmp_path, "plugins", "--json", PANNIER_STRICT_PLUGINS="1")
    assert result.returncode != 0
    assert result.stderr.startswith("pannier: error: ")
    assert "Traceback" not in result.stderr


def test_load_plugins_empty_keeps_builtins_only_even_in_strict_mode(tmp_path: Path) -> None:
    result = pannier(tmp_path, "plugins", "--json", "--strict-plugins", PANNIER_LOAD_PLUGINS="")
    records = listing(result)
    extras_missing = any(needs_an_extra(r) for r in records)
    assert result.returncode == (1 if extras_missing else 0), result.stderr
    for record in records:
        if record["builtin"]:
            assert record["status"] in ("loaded", "shadowed") or needs_an_extra(record), record
        else:
            assert record["status"] == "disabled", record
            assert record["reason"] == "not listed in PANNIER_LOAD_PLUGINS"


def test_load_plugins_names_and_disable_plugin(tmp_path: Path) -> None:
    result = pannier(
        tmp_path,
        "--disable-plugin",
        "broken_syntax_meta",
        "plugins",
        "--json",
        "--kind",
        "meta",
        "--disable-plugin",
        "meta:broken_import_meta",
        PANNIER_LOAD_PLUGINS="fixture_good,broken_syntax_meta,broken_import_meta",
    )
    assert result.returncode == 0, result.stderr
    grouped = by_name(listing(result))
    assert {k for k, _ in grouped} == {"meta"}
    assert grouped[("meta", "fixture_good")][0]["status"] == "loaded"
    assert grouped[("meta", "broken_import_meta")][0]["status"] == "disabled"
    assert grouped[("meta", "broken_contract_meta")][0]["status"] == "disabled"


def test_disable_plugin_given_before_the_command_counts(tmp_path: Path) -> None:
    result = pannier(
        tmp_path, "--disable-plugin", "broken_syntax_meta", "plugins", "--json", "--kind", "meta"
    )
    grouped = by_name(listing(result))
    assert grouped[("meta", "broken_syntax_meta")][0]["status"] == "disabled"


def test_no_load_lists_without_importing(tmp_path: Path) -> None:
    result = pannier(tmp_path, "plugins", "--json", "--no-load", "--kind", "backend")
    assert result.returncode == 0, result.stderr
    statuses = {r["status"] for r in listing(result)}
    assert statuses <= {"available", "shadowed"}


def test_a_working_hook_plugin_still_adds_its_command(tmp_path: Path) -> None:
    result = pannier(tmp_path, "fixture-hello")
    assert (result.returncode, result.stdout) == (0, "hello from a hook plugin\n"), result.stderr


def test_without_extra_plugins_every_builtin_is_listed_with_its_origin(tmp_path: Path) -> None:
    result = pannier(tmp_path, "plugins", "--json", fixtures=False, PANNIER_LOAD_PLUGINS="")
    assert result.returncode == 0, result.stderr
    records = listing(result)
    spec = importlib.util.find_spec("pannier.plugins")
    assert spec is not None and spec.origin is not None
    plugins_dir = Path(spec.origin).parent
    on_disk = {
        (kind.rstrip("s"), p.stem)
        for kind in ("backends", "meta", "sources")
        for p in (plugins_dir / kind).glob("*.py")
        if not p.name.startswith("_")
    }
    listed = {(r["kind"], r["name"]) for r in records if r["builtin"]}
    assert listed == on_disk
    for record in records:
        if record["builtin"]:
            assert record["origin"]["channel"] == "namespace"
            assert record["origin"]["distribution"] == "pannier"
            assert Path(record["origin"]["file"]).parent.parent == plugins_dir
            assert record["status"] == "loaded" or needs_an_extra(record), record

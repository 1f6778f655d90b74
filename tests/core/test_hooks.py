"""Hooks: real hook plugins published through ``pannier.hooks`` entry points, isolated."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pluggy
import pytest
from pannier import hookspecs
from pannier.hooks import build_hook_manager, call_hook, get_hook_manager, hookimpl
from pannier.plugin import PluginKind
from pannier.registry import PluginManager, reset_plugin_manager

from tests.core.plugin_files import (
    META_CLASS,
    isolated_imports,  # noqa: F401 - autouse fixture
    plugin_module,
    unique_name,
    write,
    write_dist,
)

RECORDER = """
from pannier import hookimpl

CALLS = []


@hookimpl
def pannier_backup_start(info):
    CALLS.append(("start", info))


@hookimpl
def pannier_file_error(path, error):
    CALLS.append(("file_error", path, error))
"""

FAILING = """
from pannier import hookimpl

CALLS = []


@hookimpl
def pannier_backup_start(info):
    CALLS.append("start")
    raise RuntimeError("hook blew up")
"""


@pytest.fixture
def uniq() -> str:
    return unique_name()


def hook_site(
    tmp_path: Path, uniq: str, modules: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A site directory whose distribution publishes ``modules`` as hook plugins."""
    site = tmp_path / "site"
    for name, source in modules.items():
        write(site / f"{uniq}_{name}.py", source)
    write_dist(
        site,
        f"hooks-{uniq}",
        "0.7",
        {"pannier.hooks": {f"{uniq}_{name}": f"{uniq}_{name}" for name in modules}},
    )
    monkeypatch.syspath_prepend(str(site))
    return site


def module(uniq: str, name: str) -> ModuleType:
    return sys.modules[f"{uniq}_{name}"]


def test_hook_calls_reach_every_plugin_and_a_failing_one_is_isolated(
    tmp_path: Path, uniq: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    site = hook_site(tmp_path, uniq, {"a_fail": FAILING, "b_rec": RECORDER}, monkeypatch)
    pm = PluginManager(search_path=[str(site)])
    hooks = pm.hooks

    with caplog.at_level(logging.WARNING, logger="pannier.hooks"):
        hooks.hook.pannier_backup_start(info={"n": 1})
        hooks.hook.pannier_backup_start(info={"n": 2})
        hooks.hook.pannier_file_error(path="a/b", error="unreadable")

    assert module(uniq, "b_rec").CALLS == [
        ("start", {"n": 1}),
        ("start", {"n": 2}),
        ("file_error", "a/b", "unreadable"),
    ]
    assert module(uniq, "a_fail").CALLS == ["start", "start"]
    failing = pm.record(PluginKind.HOOK, f"{uniq}_a_fail")
    assert failing is not None
    assert failing.status == "loaded"
    assert failing.error == "pannier_backup_start raised RuntimeError: hook blew up"
    warnings = [r.getMessage() for r in caplog.records if r.name == "pannier.hooks"]
    assert len(warnings) == 1
    assert f"hook plugin '{uniq}_a_fail' failed in pannier_backup_start" in warnings[0]


def test_broken_hook_plugins_are_recorded_and_left_out(
    tmp_path: Path, uniq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = hook_site(
        tmp_path,
        uniq,
        {
            "import": "raise ImportError('no such thing')\n",
            "typo": "from pannier import hookimpl\n\n"
            "@hookimpl\ndef pannier_bakup_end(summary):\n    pass\n",
            "args": "from pannier import hookimpl\n\n"
            "@hookimpl\ndef pannier_backup_end(summary, colour):\n    pass\n",
            "good": RECORDER,
        },
        monkeypatch,
    )
    pm = PluginManager(search_path=[str(site)])
    hooks = pm.hooks

    status = {r.name.removeprefix(uniq + "_"): (r.status, r.error) for r in pm.records()}
    assert status["import"] == ("failed", "import failed: ImportError: no such thing")
    assert status["typo"] == ("failed", "implements unknown hook(s): pannier_bakup_end")
    assert status["args"][0] == "failed"
    assert "colour" in (status["args"][1] or "")
    assert status["good"] == ("loaded", None)
    assert [hooks.get_name(p) for p in hooks.get_plugins()] == [f"{uniq}_good"]
    hooks.hook.pannier_backup_start(info={})
    assert module(uniq, "good").CALLS == [("start", {})]


def test_a_registered_hook_object_replaces_a_discovered_one_of_the_same_name(
    tmp_path: Path, uniq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = hook_site(tmp_path, uniq, {"rec": RECORDER}, monkeypatch)
    pm = PluginManager(search_path=[str(site)])
    calls: list[dict[str, object]] = []

    class Replacement:
        @hookimpl
        def pannier_backup_start(self, info: dict[str, object]) -> None:
            calls.append(info)

    pm.hooks.hook.pannier_backup_start(info={"n": 1})
    pm.register(PluginKind.HOOK, f"{uniq}_rec", Replacement())
    pm.hooks.hook.pannier_backup_start(info={"n": 2})
    assert module(uniq, "rec").CALLS == [("start", {"n": 1})]
    assert calls == [{"n": 2}]
    statuses = [r.status for r in pm.records(PluginKind.HOOK) if r.name == f"{uniq}_rec"]
    assert statuses == ["loaded", "shadowed"]


def test_strict_mode_raises_when_a_hook_plugin_fails_to_load(
    tmp_path: Path, uniq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = hook_site(tmp_path, uniq, {"bad": "raise ValueError('x')\n"}, monkeypatch)
    with pytest.raises(Exception, match=f"hook plugin '{uniq}_bad'"):
        build_hook_manager(PluginManager(search_path=[str(site)], strict=True))


def test_disabling_a_hook_plugin_unregisters_it(
    tmp_path: Path, uniq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = hook_site(tmp_path, uniq, {"rec": RECORDER}, monkeypatch)
    pm = PluginManager(search_path=[str(site)])
    pm.hooks.hook.pannier_backup_start(info={})
    pm.disable(f"{uniq}_rec")
    pm.hooks.hook.pannier_backup_start(info={})
    assert module(uniq, "rec").CALLS == [("start", {})]
    assert not pm.hooks.has_plugin(f"{uniq}_rec")


REGISTERING = """
from pannier import hookimpl
from pannier.plugin import PluginKind

{meta}

class Broken:
    plugin_api_version = 1


@hookimpl
def pannier_register_plugins(register):
    register(PluginKind.META, "{uniq}_broken", Broken)
    register(PluginKind.META, "{uniq}_registered", Registered)
"""


def test_register_plugins_hook_adds_plugins_with_the_hook_distribution_as_origin(
    tmp_path: Path, uniq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = plugin_module(META_CLASS, "Registered").split("\n\ndef get_plugin_class")[0]
    source = REGISTERING.format(meta=meta, uniq=uniq)
    site = hook_site(tmp_path, uniq, {"reg": source}, monkeypatch)
    pm = PluginManager(search_path=[str(site)])

    assert pm.get(PluginKind.META, f"{uniq}_registered").__name__ == "Registered"
    registered = pm.record(PluginKind.META, f"{uniq}_registered")
    assert registered is not None
    assert registered.origin.channel == "explicit"
    assert (registered.origin.distribution, registered.origin.version) == (f"hooks-{uniq}", "0.7")
    assert pm.record(PluginKind.META, f"{uniq}_broken") is None
    hook_record = pm.record(PluginKind.HOOK, f"{uniq}_reg")
    assert hook_record is not None and hook_record.error is not None
    assert hook_record.error.startswith("pannier_register_plugins raised PluginContractError")


def test_call_hook_uses_the_process_wide_manager(
    tmp_path: Path, uniq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook_site(tmp_path, uniq, {"a_fail": FAILING, "b_rec": RECORDER}, monkeypatch)
    monkeypatch.setenv("PANNIER_LOAD_PLUGINS", f"{uniq}_a_fail,{uniq}_b_rec")
    reset_plugin_manager()
    try:
        assert call_hook("pannier_file_error", path="p", error="e") == []
        assert call_hook("pannier_backup_start", info={"x": 1}) == []
        assert module(uniq, "b_rec").CALLS == [("file_error", "p", "e"), ("start", {"x": 1})]
        assert isinstance(get_hook_manager(), pluggy.PluginManager)
        with pytest.raises(ValueError, match="no pannier hook named 'pannier_nope'"):
            call_hook("pannier_nope")
    finally:
        reset_plugin_manager()


def test_hookimpl_marks_for_the_pannier_project() -> None:
    @hookimpl
    def pannier_backup_end(summary: dict[str, object]) -> None:
        pass

    assert hasattr(pannier_backup_end, f"{hookspecs.PROJECT_NAME}_impl")


def test_the_docs_hooks_reference_matches_hookspecs() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    start, end = "<!-- hooks-reference:start -->\n", "<!-- hooks-reference:end -->"
    assert start in doc and end in doc
    section = doc[doc.index(start) + len(start) : doc.index(end)].strip("\n") + "\n"
    assert section == hookspecs.reference(), (
        "docs/plugins.md's hooks reference is out of date: "
        "paste the output of `python -m pannier.hookspecs` between its markers"
    )
    specs = {n for n in dir(hookspecs) if n.startswith("pannier_")}
    assert set(hookspecs.HOOK_NAMES) == specs
    for name in specs:
        assert f"### `{name}(" in section


def test_every_hookspec_is_documented_and_named_pannier() -> None:
    specs = [n for n in hookspecs.__all__ if n.startswith("pannier_")]
    assert specs
    for name in specs:
        function = getattr(hookspecs, name)
        assert hasattr(function, "pannier_spec")
        assert function.__doc__ and len(function.__doc__.strip()) > 40


def _run(
    site: Path, code: str, env_extra: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(env_extra)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def test_trace_plugins_writes_hook_calls_to_stderr(
    tmp_path: Path, uniq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = hook_site(tmp_path, uniq, {"rec": RECORDER}, monkeypatch)
    code = (
        "from pannier.hooks import call_hook; call_hook('pannier_file_error', path='x', error='y')"
    )
    traced = _run(
        site,
        code,
        {"PANNIER_TRACE_PLUGINS": "1", "PANNIER_LOAD_PLUGINS": f"{uniq}_rec"},
        tmp_path,
    )
    assert traced.returncode == 0, traced.stderr
    assert "pannier_file_error" in traced.stderr
    assert f"loaded hook plugin '{uniq}_rec'" in traced.stderr
    [summary] = [x for x in traced.stderr.splitlines() if "plugins: discovered " in x]
    assert " entry-point" in summary and " namespace" in summary
    quiet = _run(site, code, {"PANNIER_LOAD_PLUGINS": f"{uniq}_rec"}, tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""


COMMAND = """
from pannier import hookimpl


def run(args, ctx):
    ctx.out("hello " + args.who)
    return 7


@hookimpl
def pannier_register_commands(subparsers, parents):
    parser = subparsers.add_parser("{uniq}-hello", parents=parents, help="say hello")
    parser.add_argument("who")
    parser.set_defaults(func=run)
"""


def test_a_hook_plugin_adds_a_command_to_the_cli(
    tmp_path: Path, uniq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = hook_site(tmp_path, uniq, {"cmd": COMMAND.format(uniq=uniq)}, monkeypatch)
    code = f"import sys; from pannier.cli import main; sys.exit(main(['{uniq}-hello', 'world']))"
    result = _run(site, code, {"PANNIER_LOAD_PLUGINS": f"{uniq}_cmd"}, tmp_path)
    assert (result.returncode, result.stdout) == (7, "hello world\n"), result.stderr
    hidden = _run(site, code, {"PANNIER_LOAD_PLUGINS": ""}, tmp_path)
    assert hidden.returncode == 2
    assert "invalid choice" in hidden.stderr

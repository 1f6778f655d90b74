"""The public API: one facade, `pannier`, with an explicit `__all__` that pydoc shows whole."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pannier


def test_every_exported_name_resolves_and_is_documented() -> None:
    undocumented = []
    for name in pannier.__all__:
        value = getattr(pannier, name)
        if (inspect.isclass(value) or inspect.isfunction(value)) and not inspect.getdoc(value):
            undocumented.append(name)
    assert undocumented == []


def test_public_classes_present_themselves_as_pannier() -> None:
    for name in pannier.__all__:
        value = getattr(pannier, name)
        if inspect.isclass(value):
            assert value.__module__ == "pannier", name


def test_all_is_sorted_and_unique() -> None:
    assert len(set(pannier.__all__)) == len(pannier.__all__)
    assert "__version__" in pannier.__all__


def test_pydoc_shows_the_whole_public_api() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pydoc", "pannier"], capture_output=True, text=True, check=True
    )
    text = done.stdout
    missing = [
        name
        for name in pannier.__all__
        if inspect.isclass(getattr(pannier, name)) and f"class {name}(" not in text
    ]
    assert missing == []
    for name in ("get_backend", "get_meta_manager", "get_plugin_manager", "register_backend"):
        assert f"\n    {name}(" in text


def test_import_pannier_is_cheap() -> None:
    code = (
        "import sys, pannier; heavy = ['boto3', 'paramiko', 'swiftclient', 'requests', "
        "'zstandard', 'cryptography', 'pluggy', 'msgpack']; "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""

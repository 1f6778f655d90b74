"""Layering, checked on the source's syntax trees (no import needed).

* Nothing under ``core/`` (the ``pannier`` package) imports ``pannier.plugins``: the
  built-ins are found by discovery exactly like a third party's plugins.
* A built-in plugin under ``plugins/`` imports pannier only through the public facade:
  ``import pannier`` or ``from pannier import NAME`` with ``NAME`` in ``pannier.__all__``,
  never a submodule of core (``pannier.url``, ``pannier.meta``...).

Only static ``import`` statements are checked; discovery's own dynamic import of a plugin
by name is how plugins are meant to be loaded.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pannier

TOP = Path(__file__).resolve().parent.parent
CORE = TOP / "core"
PLUGINS = TOP / "plugins"


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(file: Path, root: Path, package: str) -> str:
    parts = list(file.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def imports(file: Path, root: Path, package: str) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module, names imported from it) for every import in ``file``."""
    tree = ast.parse(file.read_text(), filename=str(file))
    this = module_name(file, root, package)
    is_package = file.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level:
                base = this.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module, names


def test_the_trees_exist() -> None:
    assert python_files(CORE) and python_files(PLUGINS)


def test_core_never_imports_the_plugins() -> None:
    offences = []
    for file in python_files(CORE):
        for line, module, names in imports(file, CORE, "pannier"):
            imported = [module] + [f"{module}.{n}" for n in names]
            if any(m == "pannier.plugins" or m.startswith("pannier.plugins.") for m in imported):
                offences.append(f"core/{file.relative_to(CORE)}:{line} imports {module}")
    assert offences == []


def test_plugins_import_only_the_public_pannier_facade() -> None:
    public = set(pannier.__all__)
    offences = []
    for file in python_files(PLUGINS):
        where = f"plugins/{file.relative_to(PLUGINS)}"
        for line, module, names in imports(file, PLUGINS, "pannier.plugins"):
            if module == "pannier":
                private = [n for n in names if n not in public]
                if private:
                    offences.append(f"{where}:{line} imports non-public {', '.join(private)}")
            elif module.startswith("pannier.") and not module.startswith("pannier.plugins"):
                offences.append(
                    f"{where}:{line} imports {module} ({', '.join(names) or 'the module'}); "
                    "use `from pannier import ...`"
                )
    assert offences == [], "\n".join(offences)


def test_the_checker_sees_relative_and_absolute_forms(tmp_path: Path) -> None:
    pkg = tmp_path / "cli"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from ..plugins import meta\n")
    (pkg / "mod.py").write_text(
        "import pannier.plugins.backends.file\nfrom ...x import y\nfrom . import z\n"
    )
    found = [m for _, m, _ in imports(pkg / "__init__.py", tmp_path, "pannier")]
    assert found == ["pannier.plugins"]
    found = [m for _, m, _ in imports(pkg / "mod.py", tmp_path, "pannier")]
    assert found == ["pannier.plugins.backends.file", "x", "pannier.cli"]

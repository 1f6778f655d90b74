"""Import a plugin's heavy dependency on first use, while still failing early when absent.

Discovery imports a plugin's module to check its contract, so a module that imports its
SDK at the top makes ``pannier plugins`` (and every command) pay for it. A plugin writes
instead::

    from typing import TYPE_CHECKING
    from pannier import lazy_import

    if TYPE_CHECKING:
        import paramiko
    else:
        paramiko = lazy_import("paramiko", "the sftp backend needs paramiko")

The module is then imported on the first attribute access. If it is not installed at all,
:func:`lazy_import` raises ImportError at once, so the plugin is listed as failed with
that reason instead of failing later, in the middle of a backup.
"""

from __future__ import annotations

import importlib
import importlib.util
import types
from typing import Any

__all__ = ["lazy_import"]


class _LazyModule(types.ModuleType):
    """A stand-in that imports the real module on first attribute access."""

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)
        return getattr(module, attr)


def lazy_import(name: str, missing_hint: str) -> types.ModuleType:
    """Return a module object for ``name`` that imports it on first use.

    Raises ImportError with ``missing_hint`` (say which extra to install) when the module
    cannot be found; nothing of the module itself is executed until it is used.
    """
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as e:
        raise ImportError(f"{missing_hint} ({e})") from e
    if spec is None:
        raise ImportError(f"{missing_hint} (no module named {name!r})")
    return _LazyModule(name)

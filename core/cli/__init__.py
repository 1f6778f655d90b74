"""The ``pannier`` command line.

Every command lives in its own module under ``pannier.cli.commands`` and is found there
by name, so adding a command never edits a shared file; hook implementations can add
more through the ``pannier_register_commands`` hook.
"""

from __future__ import annotations

from .main import main

__all__ = ["main"]

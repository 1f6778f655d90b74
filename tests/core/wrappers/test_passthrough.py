"""Every wrapper, and every prefix backend, passes every backend method through.

A wrapper that forgot, say, ``_get_range`` would silently fall back to the base class's
default (reading the whole object); this test lists the contract's underscore methods and
requires each wrapping class to define them all."""

from __future__ import annotations

import inspect

import pytest
from pannier.backend import Backend
from pannier.plugins.backends.faulty import FaultyBackend
from pannier.wrappers import BackendWrapper

CONTRACT = sorted(
    name
    for name, member in vars(Backend).items()
    if name.startswith("_") and not name.startswith("__") and name != "_name"
    and inspect.isfunction(member)
)  # fmt: skip


def test_the_contract_is_what_the_docs_list() -> None:
    documented = {
        "_put", "_get", "_list", "_delete", "_put_stream", "_get_stream", "_get_range",
        "_query", "_query_list", "_delete_list", "_move", "_rename", "_validate", "_test",
        "_create_folder", "_retry_cleanup", "_error_code", "_close", "_clean_temporaries",
    }  # fmt: skip
    assert set(CONTRACT) == documented


@pytest.mark.parametrize("name", CONTRACT)
def test_backend_wrapper_delegates(name: str) -> None:
    assert name in vars(BackendWrapper), f"BackendWrapper does not delegate {name}"


@pytest.mark.parametrize("name", sorted(set(CONTRACT) - {"_rename"}))
def test_faulty_passes_through(name: str) -> None:
    # _rename is Backend's alias of _move, which faulty passes through.
    assert name in vars(FaultyBackend), f"faulty+ does not pass {name} through"

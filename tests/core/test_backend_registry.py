"""The backend registry: explicit registration, discovery through the plugin manager,
unknown schemes that name the plugins that failed, and the wrapped backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pannier.registry as registry
import pytest
from pannier.backend import Backend, BackendCapabilities, ListEntry
from pannier.backend_registry import (
    available_schemes,
    get_backend,
    get_backend_class,
    get_backend_object,
    register_backend,
    register_backend_prefix,
    unregister_backend,
)
from pannier.errors import (
    ConfigError,
    PermanentBackendError,
    PluginAPIVersionError,
    PluginContractError,
    PluginLoadError,
    PluginNotFoundError,
)
from pannier.url import BackendURL
from pannier.wrappers import BackendWrapper

BROKEN = """
import pannier_test_no_such_sdk  # the SDK is not installed

def get_plugin_class():
    raise AssertionError("never reached")
"""

TWO_SCHEMES = """
from pannier.backend import Backend

class Twin(Backend):
    plugin_api_version = 1
    schemes = ("twina", "twinb")
    description = "two schemes, one module"

    def __init__(self, url):
        self.url = url

def get_plugin_class():
    return Twin
"""


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A plugin manager that sees the built-ins and the modules written to the returned
    directory's pannier/plugins/backends/, and no installed entry points."""
    plugin_dir = tmp_path / "site" / "pannier" / "plugins" / "backends"
    plugin_dir.mkdir(parents=True)
    manager = registry.PluginManager(entry_points=False, search_path=[str(tmp_path / "site")])
    monkeypatch.setattr(registry, "_default", manager)
    yield plugin_dir


class Memory(Backend):
    """A tiny backend for registry tests (one dict per instance)."""

    plugin_api_version = 1
    schemes = ("memtest",)
    capabilities = BackendCapabilities(connections=2)

    def __init__(self, url: BackendURL) -> None:
        self.url = url
        self.store: dict[str, bytes] = {}

    def _put(self, source_path: str, remote_filename: str) -> None:
        with open(source_path, "rb") as f:
            self.store[remote_filename] = f.read()

    def _get(self, remote_filename: str, local_path: str) -> None:
        with open(local_path, "wb") as f:
            f.write(self.store[remote_filename])

    def _list(self) -> Iterator[ListEntry]:
        for name, data in self.store.items():
            yield ListEntry(name, len(data))

    def _delete(self, filename: str) -> None:
        self.store.pop(filename, None)


@pytest.fixture
def memtest() -> Iterator[None]:
    register_backend("memtest", Memory)
    yield
    unregister_backend("memtest")


def test_builtin_file_scheme_is_found(manager: Path, tmp_path: Path) -> None:
    backend = get_backend_object(f"file://{tmp_path}")
    assert type(backend).__name__ == "FileBackend"
    assert backend.url.path == str(tmp_path)


def test_explicit_registration_wins_and_is_unregistered(manager: Path, memtest: None) -> None:
    assert get_backend_class("memtest") is Memory
    assert isinstance(get_backend_object("memtest://x"), Memory)
    assert available_schemes()["memtest"] == "Memory"


def test_registration_refuses_a_non_backend_and_a_wrong_api_version() -> None:
    with pytest.raises(PluginContractError, match=r"not a subclass of pannier\.Backend"):
        register_backend("nope", dict)  # type: ignore[arg-type]

    class Future(Memory):
        plugin_api_version = 99

    with pytest.raises(PluginAPIVersionError, match="plugin API version 99"):
        register_backend("future", Future)


def test_prefix_registration(manager: Path, memtest: None) -> None:
    class Tag(Backend):
        plugin_api_version = 1
        schemes = ("tag",)
        is_prefix = True

        def __init__(self, url: BackendURL) -> None:
            assert url.inner is not None
            self.url = url
            self.inner = get_backend_object(url.inner)

    register_backend_prefix("tag", Tag)
    try:
        backend = get_backend_object("tag+memtest://x")
        assert isinstance(backend, Tag)
        assert isinstance(backend.inner, Memory)
        assert "tag+" in available_schemes()
    finally:
        unregister_backend("tag")


def test_unknown_scheme_lists_schemes_and_names_the_failed_plugin(manager: Path) -> None:
    (manager / "brokensdk.py").write_text(BROKEN)
    with pytest.raises(PluginNotFoundError) as info:
        get_backend_object("nosuch://x")
    message = str(info.value)
    assert "no backend serves nosuch:// URLs" in message
    assert "file://" in message and "faulty+" in message
    assert "brokensdk" in message and "pannier_test_no_such_sdk" in message
    assert "\n" not in message


def test_asking_for_the_broken_plugin_by_name_raises_its_load_error(manager: Path) -> None:
    (manager / "brokensdk.py").write_text(BROKEN)
    with pytest.raises(PluginLoadError, match="pannier_test_no_such_sdk"):
        get_backend_object("brokensdk://x")


def test_a_broken_plugin_does_not_stop_the_others(manager: Path, tmp_path: Path) -> None:
    (manager / "brokensdk.py").write_text(BROKEN)
    assert "file" in available_schemes()
    get_backend_object(f"file://{tmp_path}")


def test_scheme_served_by_a_module_of_another_name(manager: Path) -> None:
    (manager / "twin.py").write_text(TWO_SCHEMES)
    assert get_backend_object("twinb://x").url.scheme == "twinb"
    assert available_schemes()["twina"] == "two schemes, one module"


def test_constructor_failure_becomes_a_redacted_backend_error(manager: Path) -> None:
    class Exploding(Memory):
        def __init__(self, url: BackendURL) -> None:
            raise RuntimeError(f"cannot connect to {url.raw}")

    register_backend("boom", Exploding)
    try:
        with pytest.raises(PermanentBackendError) as info:
            get_backend_object("boom://user:hunter2@h/x")
    finally:
        unregister_backend("boom")
    assert "hunter2" not in str(info.value)
    assert "cannot open the boom backend" in str(info.value)


def test_get_backend_wraps_the_stack_in_order(manager: Path, memtest: None) -> None:
    backend = get_backend("memtest://x?retries=2", connections=1)
    layers = []
    layer = backend
    while isinstance(layer, BackendWrapper):
        layers.append(type(layer).__name__)
        layer = layer.inner
    assert layers == [
        "LoggingWrapper",
        "RetryWrapper",
        "ConnectionLimitWrapper",
        "BandwidthWrapper",
        "ValidationWrapper",
    ]
    assert isinstance(backend.unwrap(), Memory)
    assert backend.get_capabilities() == Memory.capabilities
    backend.put_bytes("a", b"data")
    assert backend.get_bytes("a") == b"data"
    assert backend.unwrap().url.option("connections") == "1"


def test_get_backend_query_wins_over_keywords(manager: Path, memtest: None) -> None:
    backend = get_backend("memtest://x?retries=2", retries=9)
    assert backend.unwrap().url.int_option("retries", 0) == 2


def test_get_backend_bad_wrapper_option_is_a_config_error(manager: Path, memtest: None) -> None:
    with pytest.raises(ConfigError, match="option retries"):
        get_backend("memtest://x?retries=many")
    with pytest.raises(ConfigError, match="bandwidth schedule"):
        get_backend("memtest://x?bwlimit=25:00-26:00=1M")


def test_malformed_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="malformed URL"):
        get_backend_object("not a url")


def test_a_disabled_backend_is_named_as_such(
    manager: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.get_plugin_manager().disable("faulty")
    with pytest.raises(PluginNotFoundError) as info:
        get_backend_object("faulty+file:///x")
    assert "no backend serves faulty+ URLs" in str(info.value)
    assert "the backend plugin 'faulty' is disabled" in str(info.value)


def test_strict_mode_raises_the_broken_plugins_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_dir = tmp_path / "site" / "pannier" / "plugins" / "backends"
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "brokensdk.py").write_text(BROKEN)
    strict = registry.PluginManager(
        entry_points=False, strict=True, search_path=[str(tmp_path / "site")]
    )
    monkeypatch.setattr(registry, "_default", strict)
    get_backend_object(f"file://{tmp_path}")  # asked by name: the broken one is not imported
    with pytest.raises(PluginLoadError, match="pannier_test_no_such_sdk"):
        get_backend_object("nosuch://x")

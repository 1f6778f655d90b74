"""The backend conformance kit: the checks every storage backend must pass.

Two ways to run it, with the same checks:

* from pytest, in a backend author's own test module::

      import pytest
      from pannier.testing.backend_suite import BackendConformance

      class TestMyBackend(BackendConformance):
          @pytest.fixture
          def make_backend(self, tmp_path):
              return lambda: MyBackend(parse_url(f"my://{tmp_path}"))

  ``make_backend`` returns a factory: each call gives a *new* instance for the same,
  initially empty location (a URL string is accepted too). Each check is one test.

* from the command line, ``pannier backend test URL``, which calls
  :func:`run_conformance` and prints its :class:`Report`.

The kit refuses a location that already holds objects (it would delete them), unless
told to clean it first. It uses names starting with ``kit-`` and deletes what it wrote.

The checks themselves, and the :class:`~pannier.testing.backend_checks.Kit` they get, are in
:mod:`pannier.testing.backend_checks`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs

from ..errors import PannierError
from ..url import BackendURL, redact
from .backend_checks import CHECKS, BackendFactory, Check, Kit, KitFailure, KitSkip

__all__ = [
    "CHECKS",
    "BackendConformance",
    "CheckResult",
    "Kit",
    "KitFailure",
    "Report",
    "run_conformance",
]


@attrs.frozen
class CheckResult:
    """The outcome of one check: ``status`` is passed, failed or skipped; ``seconds`` is
    how long it took, clean-up included."""

    name: str
    status: str
    detail: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        """The result as one line: status, name, time, detail."""
        detail = f"  {self.detail}" if self.detail else ""
        return f"{self.status.upper():7} {self.name} ({self.seconds:.1f}s){detail}"


@attrs.define
class Report:
    """What :func:`run_conformance` found: a result per check, the declared capabilities
    and the facts observed.

    :ivar target: the redacted URL (or backend class) tested.
    """

    target: str
    results: list[CheckResult] = attrs.field(factory=list)
    capabilities: dict[str, object] = attrs.field(factory=dict)
    notes: dict[str, str] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(r.status != "failed" for r in self.results)

    def as_dict(self) -> dict[str, object]:
        """The report as plain data, for ``--json``."""
        return {
            "target": self.target,
            "ok": self.ok,
            "results": [attrs.asdict(r) for r in self.results],
            "capabilities": self.capabilities,
            "notes": self.notes,
        }

    def format(self) -> str:
        """The report as text: one line per check, then the capability report."""
        lines = [f"conformance of {self.target}"]
        lines += [f"  {r.line()}" for r in self.results]
        lines.append("capabilities:")
        lines += [f"  {k}: {v}" for k, v in self.capabilities.items()]
        if self.notes:
            lines.append("observed:")
            lines += [f"  {k}: {v}" for k, v in sorted(self.notes.items())]
        failed = sum(r.status == "failed" for r in self.results)
        lines.append(
            f"{'FAILED' if failed else 'OK'}: {failed} of {len(self.results)} checks failed"
        )
        return "\n".join(lines)


def _factory_for(
    target: str | BackendURL | BackendFactory,
) -> tuple[BackendFactory, BackendURL | None]:
    from ..backend_registry import get_backend_object
    from ..url import parse_url

    if callable(target) and not isinstance(target, str | BackendURL):
        return target, None
    url = target if isinstance(target, BackendURL) else parse_url(target)
    return (lambda: get_backend_object(url)), url


def prepare_location(factory: BackendFactory, clean: bool, target: str) -> None:
    """Refuse a non-empty location (PannierError naming how many objects it holds)
    unless ``clean``, in which case delete everything in it."""
    backend = factory()
    try:
        names = [e.name for e in backend.iter_list()]
        if names and not clean:
            raise PannierError(
                f"{target} holds {len(names)} objects (e.g. {names[0]}); the kit runs only "
                "on an empty location: use another one, or --clean to delete them first"
            )
        if names:
            backend.delete_list(names)
    finally:
        backend.close()


def run_check(check: Check, factory: BackendFactory, url: BackendURL | None = None) -> CheckResult:
    """Run one check on a fresh kit; exceptions become a failed result."""
    start = time.monotonic()
    kit = Kit(factory, url)
    status, detail = "failed", "interrupted"
    try:
        check.run(kit)
        status, detail = "passed", ""
    except KitSkip as e:
        status, detail = "skipped", str(e)
    except KitFailure as e:
        status, detail = "failed", str(e)
    except Exception as e:
        status, detail = "failed", f"{type(e).__name__}: {redact(str(e))}"
    finally:
        try:
            kit.cleanup()
        except Exception as e:
            if status != "failed":
                status, detail = "failed", f"clean-up failed: {type(e).__name__}: {redact(str(e))}"
    return CheckResult(check.name, status, detail, round(time.monotonic() - start, 3))


def run_conformance(
    url: str | BackendURL | BackendFactory,
    clean: bool = False,
    *,
    only: list[str] | None = None,
    progress: Callable[[CheckResult], None] | None = None,
) -> Report:
    """Run every check (or those named in ``only``) on ``url`` -- a URL, or a factory of
    backend instances -- and return the :class:`Report`. Raises PannierError when the
    location is not empty and ``clean`` is false."""
    factory, parsed = _factory_for(url)
    probe = factory()
    try:
        target = parsed.redacted if parsed is not None else type(probe.unwrap()).__name__
        caps = probe.get_capabilities().as_dict()
    finally:
        probe.close()
    prepare_location(factory, clean, target)
    report = Report(target, capabilities=caps)
    for check in CHECKS:
        if only and check.name not in only:
            continue
        kit_notes: dict[str, str] = {}
        result = _run_with_notes(check, factory, parsed, kit_notes)
        report.results.append(result)
        report.notes.update(kit_notes)
        if progress is not None:
            progress(result)
    return report


def _run_with_notes(
    check: Check, factory: BackendFactory, url: BackendURL | None, notes: dict[str, str]
) -> CheckResult:
    def noting(kit: Kit) -> None:
        try:
            check.run(kit)
        finally:
            notes.update(kit.notes)

    return run_check(Check(check.name, noting), factory, url)


# --- pytest ----------------------------------------------------------------------------


class BackendConformance:
    """Subclass in a pytest module and provide a ``make_backend`` fixture (a factory of
    fresh instances for one empty location, or a URL string); every check of the kit
    becomes a test method. A skipped check (capability not declared) is a pytest skip."""

    def _kit_run(self, make_backend: Any, name: str) -> None:
        import pytest

        factory, url = _factory_for(make_backend)
        check = next(c for c in CHECKS if c.name == name)
        prepare_location(factory, False, url.redacted if url else "the location")
        result = run_check(check, factory, url)
        if result.status == "skipped":
            pytest.skip(result.detail)
        if result.status == "failed":
            pytest.fail(f"{name}: {result.detail}", pytrace=False)

    def test_folder(self, make_backend: Any) -> None:
        """test passes on the location."""
        self._kit_run(make_backend, "folder")

    def test_names(self, make_backend: Any) -> None:
        """Allowed characters, the longest name, invalid names refused."""
        self._kit_run(make_backend, "names")

    def test_sizes(self, make_backend: Any) -> None:
        """0 B, 1 B, several MiB, above the multipart threshold."""
        self._kit_run(make_backend, "sizes")

    def test_overwrite(self, make_backend: Any) -> None:
        """A put replaces an existing object."""
        self._kit_run(make_backend, "overwrite")

    def test_list(self, make_backend: Any) -> None:
        """Each name once, with its size, across pages."""
        self._kit_run(make_backend, "list")

    def test_validate(self, make_backend: Any) -> None:
        """validate accepts the right size and refuses others."""
        self._kit_run(make_backend, "validate")

    def test_missing(self, make_backend: Any) -> None:
        """A missing name raises FileMissingError."""
        self._kit_run(make_backend, "missing")

    def test_delete(self, make_backend: Any) -> None:
        """Deletes tolerate missing names; delete_list and query_list."""
        self._kit_run(make_backend, "delete")

    def test_range(self, make_backend: Any) -> None:
        """Ranged gets where declared."""
        self._kit_run(make_backend, "range")

    def test_rename(self, make_backend: Any) -> None:
        """move where declared."""
        self._kit_run(make_backend, "rename")

    def test_stream(self, make_backend: Any) -> None:
        """Non-seekable streams."""
        self._kit_run(make_backend, "stream")

    def test_failed_put(self, make_backend: Any) -> None:
        """A failed put leaves no visible partial object."""
        self._kit_run(make_backend, "failed-put")

    def test_connections(self, make_backend: Any) -> None:
        """Several instances at once."""
        self._kit_run(make_backend, "connections")

    def test_temporaries(self, make_backend: Any) -> None:
        """clean_temporaries(0) removes only temporaries."""
        self._kit_run(make_backend, "temporaries")

    def test_wrappers(self, make_backend: Any) -> None:
        """Wrappers and prefixes pass through."""
        self._kit_run(make_backend, "wrappers")

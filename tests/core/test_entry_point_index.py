"""The on-disk entry-point cache: used when valid, never trusted stale."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from pannier.entry_point_index import (
    PRUNE_DAYS,
    RACY_SECONDS,
    cache_directory,
    read_entry_points,
)

from tests.core.plugin_files import (
    isolated_imports,  # noqa: F401 - autouse fixture
    write,
    write_dist,
)

OLD = time.time() - 10 * RACY_SECONDS  # a time-stamp safely older than the racy window


def age(*paths: Path) -> None:
    """Give ``paths`` an old modification time, as files installed a while ago have."""
    for path in paths:
        os.utime(path, (OLD, OLD))


def eps(site: Path) -> list[tuple[str, str, str, str, str]]:
    return [
        (e.group, e.name, e.value, e.distribution, e.version)
        for e in read_entry_points([str(site)])
    ]


def cache_files() -> list[Path]:
    return sorted((Path(cache_directory()) / "entry-points").glob("*.json"))


def test_cache_lives_under_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_directory() == str(tmp_path / "xdg" / "pannier")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_directory() == os.path.join(os.path.expanduser("~"), ".cache", "pannier")


def test_only_pannier_groups_are_read_and_the_result_is_cached(tmp_path: Path) -> None:
    dist = write_dist(
        tmp_path,
        "ext",
        "1.2",
        {"pannier.meta": {"m": "ext.m:M"}, "console_scripts": {"ext": "ext:main"}},
    )
    write_dist(tmp_path, "other", "3", {"console_scripts": {"other": "other:main"}})
    age(tmp_path, dist / "entry_points.txt")

    assert eps(tmp_path) == [("pannier.meta", "m", "ext.m:M", "ext", "1.2")]
    [cache_file] = cache_files()
    record = json.loads(cache_file.read_text())
    assert record["entry"] == str(tmp_path)
    assert [d[1] for d in record["dists"]] == ["ext-1.2.dist-info", "other-3.dist-info"]


def test_the_cache_is_what_a_warm_read_uses(tmp_path: Path) -> None:
    """Proof the cache is read: a change that keeps every time-stamp is not seen.

    (That is the one change the cache cannot see; real installs and edits change
    time-stamps, as the following tests show.)
    """
    dist = write_dist(tmp_path, "ext", "1", {"pannier.meta": {"m": "old:M"}})
    ep_file = dist / "entry_points.txt"
    age(tmp_path, ep_file)
    assert eps(tmp_path)[0][2] == "old:M"

    ep_file.write_text("[pannier.meta]\nm = new:M\n")
    age(tmp_path, ep_file)
    assert eps(tmp_path)[0][2] == "old:M"


def test_editing_entry_points_in_place_is_seen(tmp_path: Path) -> None:
    dist = write_dist(tmp_path, "ext", "1", {"pannier.meta": {"m": "old:M"}})
    ep_file = dist / "entry_points.txt"
    age(tmp_path, ep_file)
    assert eps(tmp_path)[0][2] == "old:M"

    ep_file.write_text("[pannier.meta]\nm = new:M\n")  # fresh mtime
    assert eps(tmp_path)[0][2] == "new:M"


def test_installing_and_removing_a_distribution_is_seen(tmp_path: Path) -> None:
    write_dist(tmp_path, "first", "1", {"pannier.meta": {"a": "a:A"}})
    age(tmp_path)
    assert [e[1] for e in eps(tmp_path)] == ["a"]

    second = write_dist(tmp_path, "second", "1", {"pannier.sources": {"b": "b:B"}})
    assert [e[1] for e in eps(tmp_path)] == ["a", "b"]

    for file in second.iterdir():
        file.unlink()
    second.rmdir()
    assert [e[1] for e in eps(tmp_path)] == ["a"]


def test_adding_entry_points_to_a_distribution_without_them_is_seen(tmp_path: Path) -> None:
    dist = write_dist(tmp_path, "ext", "1", {})
    (dist / "entry_points.txt").unlink()
    age(tmp_path, dist)
    assert eps(tmp_path) == []

    write(dist / "entry_points.txt", "[pannier.backends]\nb = ext:B\n")
    age(dist)  # even with an old time-stamp on the directory
    assert [e[1] for e in eps(tmp_path)] == ["b"]


def test_a_change_within_the_racy_window_is_rescanned(tmp_path: Path) -> None:
    """A file changed in the same time-stamp tick as the scan must not be trusted."""
    dist = write_dist(tmp_path, "ext", "1", {"pannier.meta": {"m": "old:M"}})
    ep_file = dist / "entry_points.txt"
    now = time.time()
    os.utime(ep_file, (now, now))
    assert eps(tmp_path)[0][2] == "old:M"

    ep_file.write_text("[pannier.meta]\nm = new:M\n")
    os.utime(ep_file, (now, now))  # the same time-stamp as when it was scanned
    assert eps(tmp_path)[0][2] == "new:M"


def test_a_corrupt_cache_is_ignored_and_rewritten(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_dist(site, "ext", "1", {"pannier.meta": {"m": "x:M"}})
    age(site)
    assert len(eps(site)) == 1
    [cache_file] = cache_files()
    cache_file.write_text("{not json")
    assert len(eps(site)) == 1
    assert json.loads(cache_file.read_text())["format"] == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"files": [[1]], "dists": []},
        {"files": [], "dists": [["too", "short"]]},
        {"files": [], "dists": [["k", "d", "n", "v", [["only-two", "x"]]]]},
        {"files": "nope", "dists": []},
        {"mtime": "yesterday", "files": [], "dists": []},
    ],
)
def test_a_cache_file_of_the_wrong_shape_is_rescanned(tmp_path: Path, bad: dict) -> None:
    site = tmp_path / "site"
    write_dist(site, "ext", "1", {"pannier.meta": {"m": "x:M"}})
    age(site)
    assert len(eps(site)) == 1
    [cache_file] = cache_files()
    record = json.loads(cache_file.read_text())
    record.update(bad)
    cache_file.write_text(json.dumps(record))
    assert [e[1] for e in eps(site)] == ["m"]


def test_an_unwritable_cache_directory_only_costs_speed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    site = tmp_path / "site"
    write_dist(site, "ext", "1", {"pannier.meta": {"m": "x:M"}})
    assert [e[1] for e in eps(site)] == ["m"]


def test_stale_cache_files_are_pruned_once_a_day(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_dist(site, "ext", "1", {"pannier.meta": {"m": "x:M"}})
    eps(site)
    cache_dir = Path(cache_directory()) / "entry-points"
    old_file = cache_dir / "gone-00000000.json"
    old_file.write_text("{}")
    month_ago = time.time() - (PRUNE_DAYS + 1) * 86400
    os.utime(old_file, (month_ago, month_ago))
    marker = cache_dir / ".pruned"
    assert marker.exists()  # the first save pruned already: not again today
    eps(tmp_path / "other")  # a save
    assert old_file.exists()
    os.utime(marker, (month_ago, month_ago))
    eps(tmp_path / "third")  # a save, a day after the last pruning
    assert not old_file.exists()
    assert len(list(cache_dir.glob("*.json"))) == 3


def test_missing_and_file_entries_on_the_path(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\nVersion: 1.0\n\n")
        z.writestr("zipped-1.0.dist-info/entry_points.txt", "[pannier.meta]\nz = zmod:Z\n")
    found = read_entry_points([str(tmp_path / "missing"), str(archive)])
    assert [(e.name, e.distribution, e.version) for e in found] == [("z", "zipped", "1.0")]

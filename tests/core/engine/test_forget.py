"""Retention policies: which snapshots each rule keeps."""

from __future__ import annotations

import datetime

import pytest
from pannier.engine.forget import Policy, apply_policy, group_snapshots, parse_duration
from pannier.errors import ConfigError
from pannier.repo import Snapshot

UTC = datetime.timezone.utc


def snaps_at(*times: datetime.datetime, tags: dict[int, list[str]] | None = None) -> list[Snapshot]:
    out = []
    for i, t in enumerate(times):
        out.append(
            Snapshot(
                time=t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z"),
                hostname="h",
                paths=["/p"],
                tags=(tags or {}).get(i, []),
                id=f"{i:064x}",
            )
        )
    return out


def kept(decisions: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(d.snapshot.id[-2:] for d in decisions if d.keep)


def local(*args: int) -> datetime.datetime:
    return datetime.datetime(*args).astimezone()  # the policy buckets in local time


def test_keep_last() -> None:
    snaps = snaps_at(*(local(2026, 1, d) for d in range(1, 6)))
    decisions = apply_policy(snaps, Policy(last=2))
    assert kept(decisions) == ["03", "04"]
    assert [d.snapshot.id[-2:] for d in decisions][:2] == ["04", "03"]  # newest first
    assert decisions[0].reasons == ["last snapshot"] and decisions[-1].reasons == []


def test_keep_daily_takes_the_newest_of_each_day() -> None:
    snaps = snaps_at(
        local(2026, 1, 1, 9),
        local(2026, 1, 1, 18),
        local(2026, 1, 2, 9),
        local(2026, 1, 4, 9),
        local(2026, 1, 4, 10),
    )
    assert kept(apply_policy(snaps, Policy(daily=2))) == ["02", "04"]
    assert kept(apply_policy(snaps, Policy(daily=10))) == ["01", "02", "04"]


def test_keep_hourly_weekly_monthly_yearly() -> None:
    snaps = snaps_at(
        local(2024, 6, 1),
        local(2025, 3, 1),
        local(2025, 3, 20),
        local(2026, 1, 5, 10, 5),
        local(2026, 1, 5, 10, 50),
    )
    assert kept(apply_policy(snaps, Policy(hourly=1))) == ["04"]
    assert kept(apply_policy(snaps, Policy(monthly=3))) == ["00", "02", "04"]
    assert kept(apply_policy(snaps, Policy(monthly=2))) == ["02", "04"]
    assert kept(apply_policy(snaps, Policy(yearly=3))) == ["00", "02", "04"]
    assert kept(apply_policy(snaps, Policy(weekly=2))) == ["02", "04"]


def test_keep_within_counts_back_from_the_newest() -> None:
    newest = local(2026, 3, 31, 12)
    snaps = snaps_at(local(2026, 2, 27, 12), local(2026, 3, 1, 12), local(2026, 3, 30), newest)
    assert kept(apply_policy(snaps, Policy(within="1m"))) == ["01", "02", "03"]
    assert kept(apply_policy(snaps, Policy(within="2d"))) == ["02", "03"]
    assert parse_duration("1y2m3w4d5h") == (14, 25, 5)
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration("3 days")


def test_keep_tag_and_union_of_rules() -> None:
    snaps = snaps_at(*(local(2026, 1, d) for d in range(1, 6)), tags={0: ["release"]})
    decisions = apply_policy(snaps, Policy(last=1, tags=["release"]))
    assert kept(decisions) == ["00", "04"]
    assert next(d for d in decisions if d.snapshot.id.endswith("00")).reasons == ["has tag release"]


def test_no_rule_is_refused() -> None:
    with pytest.raises(ConfigError, match="no retention rule"):
        apply_policy(snaps_at(local(2026, 1, 1)), Policy())


def test_grouping() -> None:
    a, b = snaps_at(local(2026, 1, 1), local(2026, 1, 2))
    b.hostname = "other"
    assert len(group_snapshots([a, b], ["host", "paths"])) == 2
    assert len(group_snapshots([a, b], [])) == 1
    with pytest.raises(ConfigError, match="--group-by"):
        group_snapshots([a], ["colour"])

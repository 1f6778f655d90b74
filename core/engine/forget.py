"""Retention policies: which snapshots ``pannier forget`` keeps and which it removes.

The rules follow restic's. Snapshots are grouped (by default by host and paths) and the
policy is applied to each group separately, newest first. A snapshot is kept when any rule
keeps it, and :class:`Decision.reasons` says which:

``last N``
    the N newest snapshots;
``hourly/daily/weekly/monthly/yearly N``
    for the N newest hours (days, ISO weeks, months, years) that have snapshots, the
    newest snapshot of each; times are taken in the local time zone;
``within DURATION``
    every snapshot younger than DURATION (``1y2m3w4d5h``: years, months, weeks, days,
    hours) counted back from the newest snapshot of the group;
``tag T``
    every snapshot carrying the tag T.

A policy with no rule at all is refused (:class:`~pannier.ConfigError`): it would remove
everything.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from ..errors import ConfigError
from .snapshots import snapshot_time

__all__ = ["Decision", "Policy", "apply_policy", "group_snapshots", "parse_duration"]

_DURATION = re.compile(r"(\d+)([ymwdh])")


def parse_duration(text: str) -> tuple[int, int, int]:
    """``"1y2m3w4d5h"`` -> (months, days, hours) = (14, 25, 5).

    Raises :class:`~pannier.ConfigError` for anything else.
    """
    t = text.strip().lower()
    if not t or _DURATION.sub("", t):
        raise ConfigError(f"{text!r} is not a duration like 1y2m3w4d5h")
    months = days = hours = 0
    for n, unit in _DURATION.findall(t):
        v = int(n)
        if unit == "y":
            months += 12 * v
        elif unit == "m":
            months += v
        elif unit == "w":
            days += 7 * v
        elif unit == "d":
            days += v
        else:
            hours += v
    return months, days, hours


def _minus(t: datetime.datetime, months: int, days: int, hours: int) -> datetime.datetime:
    y, m = divmod(t.month - 1 - months, 12)
    year, month = t.year + y, m + 1
    day = t.day
    while True:
        try:
            shifted = t.replace(year=year, month=month, day=day)
            break
        except ValueError:  # 31 March minus one month
            day -= 1
    return shifted - datetime.timedelta(days=days, hours=hours)


@attrs.define
class Policy:
    """The rules of one ``forget`` run (0 / empty = rule not used)."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: str | None = None
    tags: list[str] = attrs.field(factory=list)

    def empty(self) -> bool:
        """True when no rule is set."""
        return not (
            self.last
            or self.hourly
            or self.daily
            or self.weekly
            or self.monthly
            or self.yearly
            or self.within
            or self.tags
        )


@attrs.define
class Decision:
    """The fate of one snapshot: kept (with the reasons) or removed."""

    snapshot: Any
    keep: bool
    reasons: list[str] = attrs.field(factory=list)


_BUCKETS: list[tuple[str, Callable[[datetime.datetime], tuple[int, ...]]]] = [
    ("hourly", lambda t: (t.year, t.month, t.day, t.hour)),
    ("daily", lambda t: (t.year, t.month, t.day)),
    ("weekly", lambda t: tuple(t.isocalendar()[:2])),
    ("monthly", lambda t: (t.year, t.month)),
    ("yearly", lambda t: (t.year,)),
]


def apply_policy(snapshots: Iterable[Any], policy: Policy) -> list[Decision]:
    """Decide, for one group of snapshots, which to keep; newest first."""
    if policy.empty():
        raise ConfigError(
            "no retention rule given (--keep-last, --keep-daily, ..., --keep-within, "
            "--keep-tag): refusing to remove every snapshot"
        )
    snaps = sorted(snapshots, key=lambda s: (snapshot_time(s), s.id or ""), reverse=True)
    decisions = [Decision(s, False) for s in snaps]
    if not snaps:
        return decisions
    local = [snapshot_time(s).astimezone() for s in snaps]
    for i, d in enumerate(decisions):
        if i < policy.last:
            d.reasons.append("last snapshot")
    for name, bucket in _BUCKETS:
        n = getattr(policy, name)
        if not n:
            continue
        last_bucket: tuple[int, ...] | None = None
        count = 0
        for d, t in zip(decisions, local, strict=False):
            if count >= n:
                break
            b = bucket(t)
            if b != last_bucket:
                last_bucket = b
                count += 1
                d.reasons.append(f"{name} snapshot")
    if policy.within:
        months, days, hours = parse_duration(policy.within)
        newest = snapshot_time(snaps[0])
        limit = _minus(newest, months, days, hours)
        for d in decisions:
            if snapshot_time(d.snapshot) > limit:
                d.reasons.append(f"within {policy.within}")
    for tag in policy.tags:
        for d in decisions:
            if tag in (d.snapshot.tags or ()):
                d.reasons.append(f"has tag {tag}")
    for d in decisions:
        d.keep = bool(d.reasons)
    return decisions


def group_snapshots(
    snapshots: Iterable[Any], group_by: Sequence[str]
) -> dict[tuple[Any, ...], list[Any]]:
    """Group snapshots by the fields named in ``group_by`` (``host``, ``paths``, ``tags``);
    an empty ``group_by`` puts them all in one group."""
    unknown = set(group_by) - {"host", "paths", "tags"}
    if unknown:
        raise ConfigError(
            f"--group-by takes host, paths and tags, not {', '.join(sorted(unknown))}"
        )
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for s in snapshots:
        key: list[Any] = []
        if "host" in group_by:
            key.append(("host", s.hostname))
        if "paths" in group_by:
            key.append(("paths", tuple(sorted(s.paths or ()))))
        if "tags" in group_by:
            key.append(("tags", tuple(sorted(s.tags or ()))))
        groups.setdefault(tuple(key), []).append(s)
    return groups

"""Which checks an instance runs when `cluster.sharding` is on: the share rules, as pure
functions over plain records (the keeper in monitor/cluster/shards.py does the I/O).

Every configured check has one row in the shard table: its owner and an expiry by the
database's clock. Each instance keeps at most its fair share, `ceil(checks / live members)`:
it renews that many of its rows, releases the rest (so an instance that joins gets work
within one renewal), and claims expired or unowned rows up to the share.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Judgement:
    """An instance's health of a check after its thresholds, as it last published it (the
    reason is redacted before it leaves the instance)."""

    health: str  # healthy | unhealthy | unknown
    reason: str
    since: datetime
    kind: str = ""  # the failure kind (monitor/core/result.py) while unhealthy


@dataclass(frozen=True)
class ShardRow:
    """One check's row in the shard table, with its owner's judgement of it (if any)."""

    check: str
    owner: str | None
    generation: int  # grows whenever the row changes owner
    live: bool  # unexpired by the database's clock
    judged: Judgement | None = None


@dataclass(frozen=True)
class SharePlan:
    """What one instance does with the shard table in one round."""

    keep: tuple[str, ...]  # its rows it renews
    release: tuple[str, ...]  # its rows above the fair share, given up now
    claim: int  # how many free rows it takes (SKIP LOCKED picks which)


def fair_share(checks: int, live_members: int) -> int:
    """The most checks one instance keeps: `ceil(checks / live members)` (at least one
    member: the one asking)."""
    return math.ceil(checks / max(1, live_members))


def plan_share(me: str, rows: Sequence[ShardRow], live_members: Collection[str]) -> SharePlan:
    """This instance's round: keep its rows up to the fair share (by name, so the choice is
    stable from round to round), release the surplus, claim free rows up to the share.

    A row is free when nobody owns it or its owner let it expire; a row this instance owns
    stays its own even if it expired meanwhile (nobody else took it, so nobody else ran it)."""
    share = fair_share(len(rows), len(set(live_members) | {me}))
    mine = sorted(row.check for row in rows if row.owner == me)
    free = sum(1 for row in rows if row.owner != me and (row.owner is None or not row.live))
    keep, release = mine[:share], mine[share:]
    return SharePlan(tuple(keep), tuple(release), max(0, min(share - len(keep), free)))


def sharded_checks(labels: Iterable[str | None], configured: Collection[str]) -> list[str]:
    """The sharded checks a notification speaks about (its alerts' `check` labels that name a
    configured check; discovered checks and instance alerts are not sharded)."""
    return sorted({name for name in labels if name is not None and name in configured})


def owners(rows: Iterable[ShardRow]) -> dict[str, int]:
    """Live owner -> how many checks it owns (what `opsmon cluster status` shows)."""
    counts: dict[str, int] = {}
    for row in rows:
        if row.owner is not None and row.live:
            counts[row.owner] = counts.get(row.owner, 0) + 1
    return dict(sorted(counts.items()))

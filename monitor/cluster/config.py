"""The `cluster:` config section: where the shared store is and how long a leader's lease lasts.

Without it opsmon runs alone (SQLite, every page sent by this process). With it, instances
that name the same `store` elect one leader through a lease row in PostgreSQL; only the
leader pages and rolls back (docs/cluster.md).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.checks.postgres import parse_dsn, password_candidates
from monitor.core.duration_fields import PositiveDuration
from monitor.secrets import Secret


class Aggregate(StrEnum):
    """How the instances' judgements of a check combine (`cluster.aggregate`)."""

    ANY = "any"  # failing when any live instance judges it failing
    MAJORITY = "majority"  # failing when more than half of the live instances do


# A lease shorter than this cannot be renewed reliably over a network (three renewals per
# lease, each with its own timeout).
MIN_LEASE = 1.0


class ClusterConfig(BaseModel):
    """`cluster:`: the shared PostgreSQL store, this instance's name, the leader lease."""

    # The DSN holds a password: validation errors must not echo it back.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    store: Annotated[str, Secret(parts=password_candidates), Field(min_length=1)]
    instance: str = Field(default_factory=socket.gethostname, min_length=1, max_length=200)
    lease: PositiveDuration = 15.0
    # Spread the configured checks over the live instances (monitor/cluster/shards.py).
    sharding: bool = False
    aggregate: Aggregate = Aggregate.ANY

    @field_validator("store")
    @classmethod
    def _store_parses(cls, value: str) -> str:
        parse_dsn(value)
        return value

    @field_validator("lease")
    @classmethod
    def _lease_long_enough(cls, value: float) -> float:
        if value < MIN_LEASE:
            raise ValueError(f"must be at least {MIN_LEASE:g}s")
        return value

    @property
    def renew_every(self) -> float:
        """Seconds between lease renewals: three tries within one lease."""
        return self.lease / 3

    @property
    def act_within(self) -> float:
        """How long after a renewal was *sent* this instance may still act as leader.

        Patroni's rule: stop acting before the lease can have expired in the store, with a
        margin of one renewal period for clock rate differences and the round trip."""
        return self.lease - self.renew_every


def cross_check(
    cluster: ClusterConfig | None, group_by: tuple[str, ...] | None
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Problems that need the whole config. With sharding, each check runs on one instance,
    so no majority of instances can judge it; and its pages come from its owner, so a
    notification group must not span checks that different instances own (each would tell
    the receivers its own half, and one half could supersede the other)."""
    if cluster is None or not cluster.sharding:
        return
    if cluster.aggregate is not Aggregate.ANY:
        yield (
            ("cluster", "aggregate"),
            f"{cluster.aggregate.value} needs every instance to probe every check: with "
            "cluster.sharding: true each check runs on one instance (use `any`, the default)",
        )
    if group_by is not None and "check" not in group_by:
        yield (
            ("alerting", "group_by"),
            "must include `check` with cluster.sharding: true (each check is paged by the "
            f"instance that owns it), e.g. group_by: [{', '.join([*group_by, 'check'])}]",
        )

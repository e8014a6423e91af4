"""Warnings about a valid config that probably does not do what its author meant."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.config import Config


def config_warnings(config: Config) -> list[str]:
    """What to warn about (an empty list when nothing looks off); each is one sentence."""
    warnings: list[str] = []
    if not config.checks and not config.docker.discovery:
        warnings.append(
            "no checks and no container discovery: nothing will be watched"
            " (add checks under `checks:`, see docs/getting-started.md)"
        )
    cluster, rollback = config.cluster, config.rollback
    if cluster is not None and cluster.sharding and rollback is not None and rollback.services:
        warnings.append(
            "cluster.sharding with rollback: the leader judges a service only by the checks it"
            " runs itself, so a service whose checks other instances own is not rolled back"
            " automatically (docs/cluster.md, Sharding)"
        )
    return warnings

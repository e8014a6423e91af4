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
    return warnings

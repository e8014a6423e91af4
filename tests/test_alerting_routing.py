"""Routing: the first matching route picks the channels; unmatched alerts go everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.alerting.routing import Router
from tests.support.alerting import Harness, alerting_config, http_check
from tests.support.receiver import Receiver


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    """One receiver per channel."""
    servers = {name: Receiver().start() for name in ("oncall", "frontend-team", "audit")}
    yield servers
    for server in servers.values():
        server.stop()


def _config(receivers: dict[str, Receiver]) -> object:
    return alerting_config(
        group_wait="0s",
        channels=[
            {"name": name, "type": "webhook", "url": server.url()}
            for name, server in receivers.items()
        ],
        routes=[
            {
                "match": {"severity": "critical", "service": ["backend", "db"]},
                "channels": ["oncall"],
            },
            {"match": {"service": "frontend"}, "channels": ["frontend-team", "audit"]},
        ],
    )


async def test_alerts_reach_the_channels_of_their_route(
    tmp_path: Path, receivers: dict[str, Receiver]
) -> None:
    """Critical backend alerts page on-call; frontend ones go to its team; the rest to all."""
    checks = [
        http_check("backend-health", "backend"),
        http_check("frontend", "frontend"),
        http_check("backend-ready", "backend"),  # ServiceNotReady is a warning
    ]
    h = Harness(tmp_path, _config(receivers), checks)  # type: ignore[arg-type]
    for name in ("backend-health", "frontend", "backend-ready"):
        h.fail(name)
        await h.step(1)
    got = {
        name: sorted(a["labels"]["check"] for r in server.accepted() for a in r.json["alerts"])
        for name, server in receivers.items()
    }
    assert got == {
        "oncall": ["backend-health", "backend-ready"],
        "frontend-team": ["backend-ready", "frontend"],
        "audit": ["backend-ready", "frontend"],
    }
    await h.close()


def test_route_matching_uses_every_matcher(receivers: dict[str, Receiver]) -> None:
    """All matchers must hold; a list matches any of its values; no match means every channel."""
    router = Router(_config(receivers))  # type: ignore[arg-type]
    assert router.route({"severity": "critical", "service": "db"}).channels == ("oncall",)
    assert router.route({"severity": "warning", "service": "db"}).channels == (
        "oncall",
        "frontend-team",
        "audit",
    )
    assert router.route({"severity": "critical", "service": "frontend"}).key == "1"

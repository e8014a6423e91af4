"""A real Alertmanager (Debian's prometheus-alertmanager) on a free loopback port, with its own
storage, a route to a webhook receiver of the test's choice, and clustering on loopback only
when asked (`cluster_port`, `peers`)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.environment import free_port, missing
from tests.support.waiting import wait_until

BINARY = "prometheus-alertmanager"


class Alertmanager:
    """A running Alertmanager and its v2 API."""

    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log

    def alerts(self, **params: str) -> list[dict[str, Any]]:
        """`GET /api/v2/alerts` (active, unresolved alerts)."""
        response = httpx.get(f"{self.url}/api/v2/alerts", params=params, timeout=5)
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()
        return alerts


def _cluster_arguments(port: int | None, peers: Sequence[int]) -> list[str]:
    if port is None:
        return ["--cluster.listen-address="]
    return [
        f"--cluster.listen-address=127.0.0.1:{port}",
        f"--cluster.advertise-address=127.0.0.1:{port}",
        *(f"--cluster.peer=127.0.0.1:{peer}" for peer in peers),
        # The second peer waits this long for the first one's notification log entry.
        "--cluster.peer-timeout=2s",
        "--cluster.settle-timeout=5s",
        "--cluster.gossip-interval=50ms",
    ]


@contextmanager
def running_alertmanager(
    workdir: Path, webhook_url: str, cluster_port: int | None = None, peers: Sequence[int] = ()
) -> Iterator[Alertmanager]:
    """Start Alertmanager routing everything to `webhook_url` at once; stop it after. With
    `cluster_port` it gossips on 127.0.0.1 with the Alertmanagers on `peers` (their ports)."""
    binary = shutil.which(BINARY)
    if binary is None:
        missing(BINARY)
    config = {
        "route": {
            "receiver": "hook",
            "group_by": ["alertname"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {"name": "hook", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}
        ],
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = workdir / "alertmanager.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                *_cluster_arguments(cluster_port, peers),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    manager = Alertmanager(f"http://127.0.0.1:{port}", process, log)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"alertmanager exited: {log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{manager.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, timeout=20)
        yield manager
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

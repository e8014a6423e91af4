"""A real Prometheus server (the Debian package's binary) on a free loopback port."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.environment import free_port
from tests.support.waiting import wait_until


class Prometheus:
    """A running Prometheus and its HTTP API."""

    def __init__(self, url: str, process: subprocess.Popen[str], log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log
        self._client = httpx.Client(base_url=url, timeout=10)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result; fails the test with Prometheus's error on a bad query."""
        response = self._client.get("/api/v1/query", params={"query": expr})
        body = response.json()
        assert body.get("status") == "success", f"{expr!r}: {body.get('error', body)}"
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def rule_groups(self) -> list[dict[str, Any]]:
        """The loaded rule groups with each rule's health and last error."""
        groups: list[dict[str, Any]] = self._client.get("/api/v1/rules").json()["data"]["groups"]
        return groups

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets."""
        active: list[dict[str, Any]] = self._client.get("/api/v1/targets").json()["data"][
            "activeTargets"
        ]
        return active

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


@contextmanager
def running_prometheus(config: dict[str, Any], workdir: Path) -> Iterator[Prometheus]:
    """Prometheus with `config`, its data in `workdir`; stopped (by its pid) afterwards."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed"
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("w") as log_stream:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=log_stream,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", process, log)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited: {log.read_text()}")
            try:
                return httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=30, interval=0.1)
        yield server
    finally:
        server.close()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

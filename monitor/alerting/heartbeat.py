"""Dead man's switch: call a URL (healthchecks.io style) every interval while opsmon is
healthy, so that opsmon itself going quiet is noticed elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from monitor.alerting.config import HeartbeatSpec
from monitor.logs import get_logger
from monitor.net.errors import describe_transport_error

Healthy = Callable[[], bool]


class Heartbeat:
    """Pings `spec.url` every `spec.interval` while `healthy()` holds."""

    def __init__(self, spec: HeartbeatSpec, client: httpx.AsyncClient, healthy: Healthy) -> None:
        self.spec = spec
        self._client = client
        self._healthy = healthy
        self._log = get_logger("heartbeat")
        self.sent = 0

    async def beat(self) -> bool:
        """One ping (skipped while unhealthy); whether the receiver accepted it."""
        if not self._healthy():
            self._log.warning("heartbeat_skipped", why="opsmon is not healthy")
            return False
        parts = urlsplit(self.spec.url)
        try:
            response = await self._client.request(
                self.spec.method, self.spec.url, timeout=self.spec.timeout
            )
        except httpx.TimeoutException:
            self._log.warning("heartbeat_failed", error=f"no answer within {self.spec.timeout:g}s")
            return False
        except httpx.HTTPError as exc:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            _kind, reason = describe_transport_error(exc, parts.hostname or "?", port)
            self._log.warning("heartbeat_failed", error=reason)
            return False
        if not 200 <= response.status_code < 300:
            self._log.warning("heartbeat_failed", error=f"HTTP {response.status_code}")
            return False
        self.sent += 1
        self._log.debug("heartbeat_sent")
        return True

    async def run(self) -> None:
        """Beat forever: once at start, then every interval."""
        while True:
            await self.beat()
            await asyncio.sleep(self.spec.interval)

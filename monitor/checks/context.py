"""What a check may use, handed in by the daemon so tests can build their own."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from monitor.clock import Clock, SystemClock
from monitor.metrics import Metrics


class HttpClients:
    """One shared connection pool per TLS-verification setting (httpx fixes `verify` per client)."""

    def __init__(self, max_connections: int = 500) -> None:
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._clients = {
            verify: httpx.AsyncClient(verify=verify, limits=limits, trust_env=False)
            for verify in (True, False)
        }

    def get(self, verify: bool) -> httpx.AsyncClient:
        """The shared client for this verification setting."""
        return self._clients[verify]

    async def aclose(self) -> None:
        """Close every pooled connection."""
        for client in self._clients.values():
            await client.aclose()


@dataclass
class CheckContext:
    """Shared dependencies of all checks."""

    metrics: Metrics
    http: HttpClients = field(default_factory=HttpClients)
    clock: Clock = field(default_factory=SystemClock)

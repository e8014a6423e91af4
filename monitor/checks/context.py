"""What a check may use, handed in by the daemon so tests can build their own."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from monitor.checks.http_client import SharedClient
from monitor.clock import Clock, SystemClock
from monitor.metrics import Metrics

if TYPE_CHECKING:
    from monitor.docker.access import DockerAccess


class HttpClients:
    """Shared connection pools, one per TLS setting (httpx fixes verification per client)."""

    def __init__(self, max_connections: int = 500) -> None:
        self._max_connections = max_connections
        self._clients: dict[tuple[bool, str | None], httpx.AsyncClient] = {}

    def get(self, verify: bool, ca_file: str | None = None) -> httpx.AsyncClient:
        """The shared client that verifies (against `ca_file`, else the system store) or not."""
        key = (verify, ca_file if verify else None)
        client = self._clients.get(key)
        if client is None:
            tls: bool | ssl.SSLContext = verify
            if verify and ca_file:
                tls = ssl.create_default_context(cafile=ca_file)
            # httpx's own pool rescans every connection per request; see http_transport.
            ssl_context = httpx.create_ssl_context(verify=tls, trust_env=False)
            client = SharedClient(ssl_context, self._max_connections)
            self._clients[key] = client
        return client

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
    # Set by the Docker watcher when container checks or discovery are configured.
    docker: DockerAccess | None = None

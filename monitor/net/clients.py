"""Shared HTTP connection pools, one per TLS setting, for checks and notifiers alike."""

from __future__ import annotations

import ssl

import httpx

from monitor.net.http_client import SharedClient


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

"""The `listen` address (`host:port`, `[v6]:port`), checked when it is read, not when bound.

The messages match those of the IPv6 listen work on the `polish` branch (monitor/listen.py),
so that either module can serve once both are merged."""

from __future__ import annotations

import ipaddress

EXAMPLE = "e.g. 127.0.0.1:9110 or [::1]:9110"
MAX_PORT = 65535


def parse_listen(text: str) -> tuple[str, int]:
    """`(host, port)` of a listen address (no brackets; "" is every interface, port 0 any
    port); ValueError saying what is wrong."""
    if not text or any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError(f"must be HOST:PORT without spaces, {EXAMPLE}")
    host, colon, port = text.rpartition(":")
    if not colon:
        raise ValueError(f"must be HOST:PORT, {EXAMPLE}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"[{host}] is not an IPv6 address ({EXAMPLE})") from None
    elif ":" in host:
        raise ValueError(f"an IPv6 host goes in brackets, as in [{host}]:{port}")
    elif "[" in host or "]" in host:
        raise ValueError(f"must be HOST:PORT, {EXAMPLE}")
    if not port.isascii() or not port.isdigit() or int(port) > MAX_PORT:
        raise ValueError(f"the port must be a number from 0 to {MAX_PORT} (got {port!r})")
    return host, int(port)


def check_listen(text: str) -> str:
    """`text` unchanged if it is a valid listen address (a pydantic after-validator)."""
    parse_listen(text)
    return text

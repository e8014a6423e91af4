"""The `listen` address (`host:port`, `[v6]:port`), checked when it is read, not when bound."""

from __future__ import annotations

import ipaddress
import re

_HOST = re.compile(r"^[A-Za-z0-9._-]*$")
MAX_PORT = 65535


def parse_listen(text: str) -> tuple[str, int]:
    """`(host, port)` of a listen address; ValueError naming what is wrong (port 0 = any)."""
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or len(port) > 6:
        raise ValueError("must be host:port, e.g. 127.0.0.1:9110")
    if int(port) > MAX_PORT:
        raise ValueError(f"port {int(port)} is out of range (0-{MAX_PORT})")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError("the address in brackets must be an IPv6 address") from None
        return host[1:-1], int(port)
    if not _HOST.match(host):
        raise ValueError("the host must be a name or an IPv4 address (IPv6 in brackets)")
    return host, int(port)


def check_listen(text: str) -> str:
    """`text` unchanged if it is a valid listen address (a pydantic after-validator)."""
    parse_listen(text)
    return text

"""Listen addresses: `HOST:PORT`, an IPv6 host in brackets (`[::1]:9110`), as in URLs."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

EXAMPLE = "e.g. 127.0.0.1:9110 or [::1]:9110"
MAX_PORT = 65535


@dataclass(frozen=True)
class ListenAddress:
    """A parsed listen address; `host` has no brackets ("" means every interface)."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> ListenAddress:
        """`127.0.0.1:9110`, `[::1]:9110`, `:9110`; raises ValueError saying what is wrong."""
        if not text or any(c.isspace() for c in text):
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
        return cls(host, int(port))

    @property
    def is_ipv6(self) -> bool:
        """Whether the host is an IPv6 address."""
        return ":" in self.host

    def with_port(self, port: int) -> ListenAddress:
        """The same host on another port."""
        return ListenAddress(self.host, port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if self.is_ipv6 else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """`http://HOST:PORT`: where this machine reaches a server listening here (a wildcard
        host is reached on loopback)."""
        loopback = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}
        return f"http://{ListenAddress(loopback.get(self.host, self.host), self.port)}"


def _valid(text: str) -> str:
    ListenAddress.parse(text)
    return text


# The type of a config field holding a listen address (validated, kept as written).
ListenText = Annotated[str, AfterValidator(_valid)]

"""A listen address as a record: `HOST:PORT`, an IPv6 host in brackets (`[::1]:9110`), as in
URLs; parsed and checked by `monitor.addresses` (the config's rules)."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.addresses import parse_listen


@dataclass(frozen=True)
class ListenAddress:
    """A parsed listen address; `host` has no brackets ("" means every interface)."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> ListenAddress:
        """`127.0.0.1:9110`, `[::1]:9110`, `:9110`; raises ValueError saying what is wrong."""
        return cls(*parse_listen(text))

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

"""Listen addresses as records: IPv4, bracketed IPv6 and wildcard hosts, as text and as URLs."""

from __future__ import annotations

import re

import pytest

from monitor.listen import ListenAddress


@pytest.mark.parametrize(
    ("text", "host", "port", "url"),
    [
        ("127.0.0.1:9110", "127.0.0.1", 9110, "http://127.0.0.1:9110"),
        ("[::1]:9110", "::1", 9110, "http://[::1]:9110"),
        ("localhost:80", "localhost", 80, "http://localhost:80"),
        ("0.0.0.0:9110", "0.0.0.0", 9110, "http://127.0.0.1:9110"),
        ("[::]:9110", "::", 9110, "http://[::1]:9110"),
        (":9110", "", 9110, "http://127.0.0.1:9110"),
    ],
)
def test_parse_and_url(text: str, host: str, port: int, url: str) -> None:
    """Each form parses to host and port, prints back as written, and gives the URL a local
    client reaches it at (a wildcard host on loopback)."""
    address = ListenAddress.parse(text)
    assert (address.host, address.port) == (host, port)
    assert str(address) == text
    assert address.url == url


def test_mistakes_are_explained_by_the_config_rules() -> None:
    """A wrong address is refused with the config's message (monitor.addresses)."""
    with pytest.raises(
        ValueError, match=re.escape("an IPv6 host goes in brackets, as in [::1]:9110")
    ):
        ListenAddress.parse("::1:9110")


def test_with_port_keeps_the_host() -> None:
    """Moving to another port keeps the host (and the brackets of an IPv6 host)."""
    assert str(ListenAddress.parse("[::1]:4000").with_port(0)) == "[::1]:0"

"""Listen addresses: IPv4, bracketed IPv6 and wildcard hosts parse; mistakes say how to fix them."""

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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("::1:9110", "an IPv6 host goes in brackets, as in [::1]:9110"),
        ("[nope]:9110", "[nope] is not an IPv6 address"),
        ("127.0.0.1", "must be HOST:PORT"),
        ("127.0.0.1:http", "the port must be a number from 0 to 65535 (got 'http')"),
        ("127.0.0.1:70000", "the port must be a number from 0 to 65535 (got '70000')"),
        ("127.0.0.1: 9110", "without spaces"),
    ],
)
def test_mistakes_are_explained(text: str, message: str) -> None:
    """A wrong address is refused with a message that says what to write instead."""
    with pytest.raises(ValueError, match=re.escape(message)):
        ListenAddress.parse(text)


def test_with_port_keeps_the_host() -> None:
    """Moving to another port keeps the host (and the brackets of an IPv6 host)."""
    assert str(ListenAddress.parse("[::1]:4000").with_port(0)) == "[::1]:0"

"""The listen address is checked when the config or environment is read, not at bind."""

from __future__ import annotations

import pytest

from monitor.addresses import parse_listen


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:9110", ("127.0.0.1", 9110)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        (":9110", ("", 9110)),
        ("monitor-1.internal:65535", ("monitor-1.internal", 65535)),
        ("[::1]:9110", ("::1", 9110)),
    ],
)
def test_valid_addresses(text: str, parsed: tuple[str, int]) -> None:
    """Host and port come apart; an empty host means every interface, port 0 any port."""
    assert parse_listen(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("localhost", "must be HOST:PORT, e.g."),
        ("127.0.0.1:", "the port must be a number"),
        ("127.0.0.1:http", "the port must be a number"),
        ("127.0.0.1:99999", r"the port must be a number from 0 to 65535 \(got '99999'\)"),
        ("::1:9110", "an IPv6 host goes in brackets"),
        ("[nope]:9110", r"\[nope\] is not an IPv6 address"),
        ("bad host:80", "without spaces"),
        ("host\r\n:80", "without spaces"),
        ("host\x00:80", "without spaces"),
    ],
)
def test_invalid_addresses_say_what_is_wrong(text: str, message: str) -> None:
    """Each malformed address gets a reason a person can act on."""
    with pytest.raises(ValueError, match=message):
        parse_listen(text)

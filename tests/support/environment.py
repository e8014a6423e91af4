"""What a test needs from the machine: in CI a missing piece fails the test, elsewhere it skips."""

from __future__ import annotations

import os
import socket
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> NoReturn:
    """Skip locally, fail in CI: a skipped integration test in CI hides a missing install step."""
    message = f"{what} is not available (scripts/test-env.sh installs and starts it)"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ipv6_loopback() -> str:
    """`::1` if this machine can listen on the IPv6 loopback (else skip, or fail in CI)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        missing("IPv6 loopback (::1)")
    return "::1"


def free_port_v6() -> int:
    """A TCP port on ::1 that is free right now."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.bind((ipv6_loopback(), 0))
        port: int = sock.getsockname()[1]
        return port

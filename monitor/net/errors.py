"""Readable reasons for network errors: one bounded kind and one sentence per failure."""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def describe_transport_error(exc: Exception, host: str, port: int) -> tuple[str, str]:
    """A bounded kind and a readable reason for an exception raised while talking to a target."""
    import httpx  # loaded already: the exception came from it

    where = f"{host}:{port}"
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "tls", f"TLS certificate of {where} rejected: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return "tls", f"TLS handshake with {where} failed: {cause.reason or cause}"
        if isinstance(cause, socket.gaierror):
            return "dns", f"DNS lookup of {host} failed: {cause.strerror or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection_refused", f"connection refused by {where}"
        if isinstance(cause, ConnectionResetError):
            return "connection_reset", f"connection reset by {where}"
    text = str(exc)
    if isinstance(exc, httpx.TooManyRedirects):
        return "redirects", "too many redirects (a redirect loop?)"
    if isinstance(exc, httpx.ConnectError):
        if "Name or service not known" in text or "nodename nor servname" in text:
            return "dns", f"DNS lookup of {host} failed"
        if "refused" in text.lower():
            return "connection_refused", f"connection refused by {where}"
        return "connect", f"cannot connect to {where}: {text or type(exc).__name__}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "protocol", f"invalid HTTP response from {where}: {text}"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "config", f"cannot request this URL: {text}"
    return "network", f"network error talking to {where}: {text or type(exc).__name__}"

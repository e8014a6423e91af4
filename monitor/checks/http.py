"""`type: http`: request a URL, judge the answer by conditions (status, body, latency, TLS)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from pydantic import Field, field_validator

from monitor.checks.base import CheckResult, CheckSpec, judge
from monitor.checks.context import CheckContext
from monitor.conditions import Facts
from monitor.durations import format_duration
from monitor.secrets import SECRET

DEFAULT_MAX_BODY = 1024 * 1024


class HttpSpec(CheckSpec):
    """An HTTP(S) endpoint and how to call it."""

    type: Literal["http"]
    url: str
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: Annotated[dict[str, str], SECRET] = Field(default_factory=dict)
    body: str | None = None
    follow_redirects: bool = True
    verify_tls: bool = True
    ca_file: str | None = None  # a private CA's PEM bundle, instead of the system store
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, gt=0)

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        try:
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError as exc:
            raise ValueError(f"invalid port in URL ({exc})") from None
        return value

    @field_validator("ca_file")
    @classmethod
    def _ca_file_loads(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ssl.create_default_context(cafile=value)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"cannot load CA bundle {value}: {exc}") from None
        return value


class BodyTooLarge(Exception):
    """The response body passed the configured cap; reading stopped there."""


def _certificate_expiry(response: httpx.Response) -> datetime | None:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    ssl_object = stream.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    return x509.load_der_x509_certificate(der).not_valid_after_utc


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def describe_transport_error(exc: Exception, host: str, port: int) -> tuple[str, str]:
    """A bounded kind and a readable reason for an exception raised while talking to a target."""
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


class HttpCheck:
    """Requests `spec.url` once per run through the shared pool and judges the response."""

    def __init__(self, spec: HttpSpec, context: CheckContext) -> None:
        self.spec = spec
        self._client = context.http.get(spec.verify_tls, spec.ca_file)
        self._clock = context.clock
        parts = urlsplit(spec.url)
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._https = parts.scheme == "https"
        # Parsed once: each run would otherwise parse the URL and build the timeout again.
        self._url = httpx.URL(spec.url)
        self._timeout = httpx.Timeout(spec.timeout)

    async def run(self) -> CheckResult:
        spec = self.spec
        started = time.perf_counter()
        phase = "connecting"
        try:
            async with asyncio.timeout(spec.timeout):
                request = self._client.build_request(
                    spec.method,
                    self._url,
                    headers=spec.headers,
                    content=spec.body,
                    timeout=self._timeout,
                )
                response = await self._client.send(
                    request, stream=True, follow_redirects=spec.follow_redirects
                )
                try:
                    phase = "reading the response body"
                    body = await self._read_capped(response)
                finally:
                    await response.aclose()
        except BodyTooLarge:
            return CheckResult.failure(
                "body_too_large",
                f"response body larger than {spec.max_body_bytes} bytes (reading stopped there)",
                duration=time.perf_counter() - started,
                connected=True,
            )
        except (TimeoutError, httpx.TimeoutException) as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                phase = "connecting"
            elif isinstance(exc, httpx.PoolTimeout):
                phase = "waiting for a free connection in the pool"
            elif phase == "connecting" and isinstance(exc, httpx.ReadTimeout):
                phase = "waiting for the response"
            return CheckResult.failure(
                "timeout",
                f"timed out after {format_duration(spec.timeout)} {phase}"
                f" ({self._host}:{self._port})",
                duration=time.perf_counter() - started,
                connected=phase != "connecting",
            )
        except httpx.HTTPError as exc:
            kind, reason = describe_transport_error(exc, self._host, self._port)
            return CheckResult.failure(kind, reason, duration=time.perf_counter() - started)
        elapsed = time.perf_counter() - started
        facts: dict[str, Any] = {
            "STATUS": response.status_code,
            "RESPONSE_TIME": round(elapsed * 1000, 1),
            "CONNECTED": True,
        }
        if self._https:
            expiry = _certificate_expiry(response)
            if expiry is not None:
                remaining = (expiry - self._clock.now().astimezone(UTC)).total_seconds()
                facts["CERTIFICATE_EXPIRATION"] = round(remaining * 1000)
        values = dict(facts, BODY=body)
        if spec.conditions:
            return judge(spec.conditions, facts, Facts(values), duration=elapsed, connected=True)
        if 200 <= response.status_code < 300:
            return CheckResult(ok=True, duration=elapsed, facts=facts, connected=True)
        return CheckResult.failure(
            "condition",
            f"[STATUS] ({response.status_code}) is not 2xx",
            duration=elapsed,
            facts=facts,
            connected=True,
        )

    async def _read_capped(self, response: httpx.Response) -> str:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.spec.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")


def build(spec: HttpSpec, context: CheckContext) -> HttpCheck:
    """Registry entry point."""
    return HttpCheck(spec, context)

"""`type: http`: request a URL, judge the answer by conditions (status, body, latency, TLS)."""

from __future__ import annotations

import asyncio
import ssl
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from monitor.checks.base import judge
from monitor.conditions import Facts, Kind, PlaceholderTable
from monitor.core.durations import format_duration
from monitor.core.result import CheckResult, FailureKind
from monitor.core.spec import CheckSpec
from monitor.net.errors import describe_transport_error
from monitor.secrets import SECRET

if TYPE_CHECKING:
    import httpx

    from monitor.checks.context import CheckContext

DEFAULT_MAX_BODY = 1024 * 1024
PLACEHOLDERS: PlaceholderTable = {
    "STATUS": Kind.NUMBER,
    "BODY": Kind.DOCUMENT,
    "RESPONSE_TIME": Kind.MILLISECONDS,
    "CONNECTED": Kind.BOOLEAN,
    "CERTIFICATE_EXPIRATION": Kind.MILLISECONDS,
    "IP": Kind.TEXT,
}


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

    @model_validator(mode="after")
    def _certificate_needs_https(self) -> HttpSpec:
        if urlsplit(self.url).scheme == "http":
            for condition in self.conditions:
                if "CERTIFICATE_EXPIRATION" in condition.placeholders:
                    raise ValueError(
                        f"{condition.text!r}: an http:// URL has no certificate"
                        " ([CERTIFICATE_EXPIRATION] needs https://)"
                    )
        return self

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
    from cryptography import x509

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


def _peer_address(response: httpx.Response) -> str | None:
    """The IP address the request went to (`[IP]`), as the connection's socket reports it."""
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    peer = stream.get_extra_info("peername")
    if isinstance(peer, tuple) and peer and isinstance(peer[0], str):
        return peer[0]
    return None


class HttpCheck:
    """Requests `spec.url` once per run through the shared pool and judges the response."""

    def __init__(self, spec: HttpSpec, context: CheckContext) -> None:
        import httpx  # here, not at the top: validating a config needs no HTTP library

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
        import httpx

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
                address = _peer_address(response)
                try:
                    phase = "reading the response body"
                    body = await self._read_capped(response)
                finally:
                    await response.aclose()
        except BodyTooLarge:
            return CheckResult.failure(
                FailureKind.BODY_TOO_LARGE,
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
                FailureKind.TIMEOUT,
                f"timed out after {format_duration(spec.timeout)} {phase}"
                f" ({self._host}:{self._port})",
                duration=time.perf_counter() - started,
                connected=phase != "connecting",
            )
        except httpx.HTTPError as exc:
            kind, reason = describe_transport_error(exc, self._host, self._port)
            return CheckResult.failure(
                FailureKind(kind), reason, duration=time.perf_counter() - started
            )
        elapsed = time.perf_counter() - started
        facts: dict[str, object] = {
            "STATUS": response.status_code,
            "RESPONSE_TIME": round(elapsed * 1000, 1),
            "CONNECTED": True,
        }
        if address is not None:
            facts["IP"] = address
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
            FailureKind.CONDITION,
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

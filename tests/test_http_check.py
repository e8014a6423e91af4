"""The HTTP check against real servers on 127.0.0.1: answers, conditions and every bad input."""

from __future__ import annotations

import asyncio
import datetime as dt
import resource
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from monitor.checks.context import CheckContext
from monitor.checks.http import HttpCheck, HttpSpec
from monitor.core.result import CheckResult
from monitor.metrics import Metrics
from monitor.net.clients import HttpClients
from tests.support.certs import self_signed
from tests.support.http_target import Answer, Target, serve

HEALTHY = {
    "status": "ok",
    "timestamp": "2026-11-26T00:00:00Z",
    "services": {"database": "ok", "mastra": "ok"},
}


@pytest.fixture
def target() -> Iterator[Target]:
    with serve() as server:
        yield server


@pytest.fixture
async def context() -> AsyncIterator[CheckContext]:
    ctx = CheckContext(Metrics(), HttpClients())
    yield ctx
    await ctx.http.aclose()


async def run(context: CheckContext, **spec: Any) -> CheckResult:
    fields: dict[str, Any] = {"name": "target", "type": "http", "timeout": 2, "interval": 10}
    return await HttpCheck(HttpSpec.model_validate(fields | spec), context).run()


async def test_healthy_json_body_passes_all_conditions(
    target: Target, context: CheckContext
) -> None:
    """A 200 with the reference health body satisfies status, body and latency conditions."""
    target.routes["/api/health"] = Answer(body=HEALTHY)
    result = await run(
        context,
        url=target.url("/api/health"),
        conditions=[
            "[STATUS] == 200",
            "[BODY].status == ok",
            "[BODY].services.database == ok",
            "[RESPONSE_TIME] < 1500",
            "[CONNECTED] == true",
        ],
    )
    assert result.ok, result.reason
    assert result.facts["STATUS"] == 200
    assert result.facts["RESPONSE_TIME"] < 1500


async def test_failed_conditions_name_actual_values(target: Target, context: CheckContext) -> None:
    """A 503 with services.database=error reports each failed condition with the value seen."""
    target.routes["/api/health"] = Answer(
        status=503, body={"status": "error", "services": {"database": "error"}}
    )
    result = await run(
        context,
        url=target.url("/api/health"),
        conditions=[
            "[STATUS] == 200",
            "[BODY].services.database == ok",
            "[BODY].services.mastra == ok",
        ],
    )
    assert not result.ok
    assert result.kind == "condition"
    assert "[STATUS] (503) == 200" in result.reason
    assert "[BODY].services.database (error) == ok" in result.reason
    assert "[BODY].services.mastra (<missing>) == ok" in result.reason
    assert len(result.failed_conditions) == 3


async def test_no_conditions_means_2xx(target: Target, context: CheckContext) -> None:
    """Without conditions a 2xx passes and anything else fails with the status."""
    target.routes["/ok"] = Answer(status=204, body=b"")
    target.routes["/bad"] = Answer(status=500, body=b"boom")
    assert (await run(context, url=target.url("/ok"))).ok
    bad = await run(context, url=target.url("/bad"))
    assert not bad.ok and "500" in bad.reason


async def test_method_headers_and_body_are_sent(target: Target, context: CheckContext) -> None:
    """The configured method, headers and request body reach the target."""
    target.routes["/hook"] = Answer(status=200)
    result = await run(
        context,
        url=target.url("/hook"),
        method="POST",
        headers={"X-Probe": "opsmon"},
        body='{"ping": 1}',
    )
    assert result.ok
    method, path, headers = target.requests[-1]
    assert (method, path, headers.get("X-Probe")) == ("POST", "/hook", "opsmon")


async def test_connection_refused(context: CheckContext) -> None:
    """A port nobody listens on is a failure saying 'connection refused' with the address."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await run(context, url=f"http://127.0.0.1:{port}/api/health")
    assert not result.ok
    assert result.kind == "connection_refused"
    assert f"connection refused by 127.0.0.1:{port}" in result.reason


async def test_dns_failure(context: CheckContext) -> None:
    """An unresolvable host (the .invalid TLD never resolves) is a DNS failure naming the host."""
    result = await run(context, url="http://backend.invalid:4000/api/health")
    assert not result.ok
    assert result.kind == "dns"
    assert "backend.invalid" in result.reason


async def test_timeout_waiting_for_response(target: Target, context: CheckContext) -> None:
    """A server slower than the timeout fails by timeout, within about the timeout."""
    target.routes["/slow"] = Answer(delay=5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await run(context, url=target.url("/slow"), timeout=0.5)
    assert not result.ok and result.kind == "timeout"
    assert "timed out after 500ms" in result.reason
    assert loop.time() - started < 2


async def test_headers_then_stall(target: Target, context: CheckContext) -> None:
    """Headers followed by silence fails by timeout while reading the body."""
    target.routes["/stall"] = Answer(body=b"x" * 100, stall_after_headers=5)
    result = await run(context, url=target.url("/stall"), timeout=0.5)
    assert not result.ok and result.kind == "timeout"
    assert "reading the response body" in result.reason


async def test_huge_body_is_capped(target: Target, context: CheckContext) -> None:
    """A 50 MB body fails at the 1 MiB cap without the process holding 50 MB."""
    target.routes["/huge"] = Answer(stream_bytes=50 * 1024 * 1024)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = await run(context, url=target.url("/huge"), timeout=5)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert not result.ok and result.kind == "body_too_large"
    assert "larger than 1048576 bytes" in result.reason
    assert grown_kib < 20 * 1024


async def test_non_json_body_with_body_condition(target: Target, context: CheckContext) -> None:
    """An HTML error page where JSON is expected fails with 'is not JSON', not a crash."""
    target.routes["/api/health"] = Answer(status=200, body=b"<html>Bad gateway</html>")
    result = await run(
        context,
        url=target.url("/api/health"),
        conditions=["[STATUS] == 200", "[BODY].status == ok"],
    )
    assert not result.ok
    assert "[BODY] is not JSON" in result.reason
    assert "[STATUS]" not in result.reason


async def test_redirect_loop(target: Target, context: CheckContext) -> None:
    """A redirect loop fails with a reason that says so."""
    target.routes["/a"] = Answer(status=302, headers={"Location": "/b"})
    target.routes["/b"] = Answer(status=302, headers={"Location": "/a"})
    result = await run(context, url=target.url("/a"))
    assert not result.ok and result.kind == "redirects"
    assert "redirect" in result.reason


async def test_redirects_can_be_turned_off(target: Target, context: CheckContext) -> None:
    """With follow_redirects off the 302 itself is judged."""
    target.routes["/old"] = Answer(status=302, headers={"Location": "/new"})
    target.routes["/new"] = Answer(status=200)
    assert (await run(context, url=target.url("/old"))).ok
    result = await run(
        context, url=target.url("/old"), follow_redirects=False, conditions=["[STATUS] == 302"]
    )
    assert result.ok, result.reason


async def test_self_signed_certificate_rejected(tmp_path: Path, context: CheckContext) -> None:
    """A self-signed certificate fails verification with the verifier's reason."""
    with serve(self_signed(tmp_path)) as tls:
        tls.routes["/"] = Answer()
        result = await run(context, url=tls.url("/"))
    assert not result.ok and result.kind == "tls"
    assert "self-signed certificate" in result.reason


async def test_expired_certificate_rejected(tmp_path: Path, context: CheckContext) -> None:
    """An expired certificate from a trusted CA fails verification saying it has expired."""
    ca = trustme.CA()
    now = dt.datetime.now(dt.UTC)
    leaf = ca.issue_cert(
        "127.0.0.1", not_before=now - dt.timedelta(days=9), not_after=now - dt.timedelta(days=1)
    )
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(server_context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with serve(server_context) as tls:
        tls.routes["/"] = Answer()
        result = await run(context, url=tls.url("/"), ca_file=str(tmp_path / "ca.pem"))
    assert not result.ok and result.kind == "tls"
    assert "certificate has expired" in result.reason


async def test_private_ca_is_trusted_with_ca_file(tmp_path: Path, context: CheckContext) -> None:
    """A certificate from a private CA passes when the check names that CA's bundle."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with serve(server_context) as tls:
        tls.routes["/"] = Answer()
        result = await run(context, url=tls.url("/"), ca_file=str(tmp_path / "ca.pem"))
    assert result.ok, result.reason


async def test_certificate_expiration_condition(tmp_path: Path, context: CheckContext) -> None:
    """[CERTIFICATE_EXPIRATION] compares with durations: 3 days left fails '> 168h', 30 passes."""
    for days, expected in ((30, True), (3, False)):
        with serve(self_signed(tmp_path, days_valid=days)) as tls:
            tls.routes["/"] = Answer()
            result = await run(
                context,
                url=tls.url("/"),
                verify_tls=False,
                conditions=["[CERTIFICATE_EXPIRATION] > 168h"],
            )
        assert result.ok is expected, result.reason
        left_days = result.facts["CERTIFICATE_EXPIRATION"] / 86_400_000
        assert days - 1 < left_days <= days


async def test_server_closing_connection_midway(context: CheckContext) -> None:
    """A server that accepts and closes without answering is a readable failure."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def accept_and_close() -> None:
        conn, _ = listener.accept()
        conn.recv(1024)
        conn.close()

    thread = threading.Thread(target=accept_and_close)
    thread.start()
    try:
        result = await run(context, url=f"http://127.0.0.1:{port}/")
    finally:
        thread.join(5)
        listener.close()
    assert not result.ok
    assert result.kind in ("protocol", "network", "connection_reset")
    assert f"127.0.0.1:{port}" in result.reason


def test_invalid_url_is_a_config_error() -> None:
    """A URL without http(s) scheme or host is rejected when the config is validated."""
    with pytest.raises(ValueError, match="http:// or https://"):
        HttpSpec.model_validate({"name": "x", "type": "http", "url": "ftp://example"})


async def test_ip_placeholder_is_the_address_answering(
    target: Target, context: CheckContext
) -> None:
    """`[IP]` is the address the request went to (Gatus's placeholder), shown in facts too."""
    target.routes["/"] = Answer(status=200)
    result = await run(context, url=target.url("/"), conditions=["[IP] == 127.0.0.1"])
    assert result.ok, result.reason
    assert result.facts["IP"] == "127.0.0.1"
    miss = await run(context, url=target.url("/"), conditions=["[IP] == pat(10.*)"])
    assert miss.reason == "[IP] (127.0.0.1) == pat(10.*)"


async def test_deeply_nested_json_body_is_a_failed_condition(
    target: Target, context: CheckContext
) -> None:
    """A target answering JSON nested 100,000 deep fails the check with a reason, run after run."""
    target.routes["/deep"] = Answer(body="[" * 100_000 + "]" * 100_000)
    for _ in range(2):
        result = await run(context, url=target.url("/deep"), conditions=["[BODY][0] == 1"])
        assert not result.ok and result.kind == "condition"
        assert "[BODY] is nested deeper than 64 levels" in result.reason


def test_certificate_expiration_needs_https() -> None:
    """`[CERTIFICATE_EXPIRATION]` on an http:// URL is a config error (Gatus would read 0)."""
    with pytest.raises(ValueError, match=r"needs https://"):
        HttpSpec.model_validate(
            {
                "name": "plain",
                "type": "http",
                "url": "http://127.0.0.1:1/",
                "conditions": ["[CERTIFICATE_EXPIRATION] > 48h"],
            }
        )

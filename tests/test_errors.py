"""Sentry: the daemon's own errors reach Sentry with secrets scrubbed; no DSN, no sending."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator

import pytest
import sentry_sdk

from monitor import __version__
from monitor.errors import init_sentry
from monitor.logs import configure_logging, get_logger
from monitor.redaction import Redactor
from tests.support.http_target import Answer, Target, serve
from tests.support.waiting import wait_until

CANARY = "canary-sentry-secret-31c7"


@pytest.fixture
def sentry() -> Iterator[Target]:
    with serve() as receiver:
        receiver.routes["/api/1/envelope/"] = Answer(status=200, body=b"{}")
        yield receiver
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


def decoded(receiver: Target) -> str:
    texts = []
    for (_, _, headers), body in zip(receiver.requests, receiver.bodies, strict=True):
        encoding = headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli  # type: ignore[import-not-found]

            body = brotli.decompress(body)
        texts.append(body.decode("utf-8", "replace"))
    return "\n".join(texts)


def test_unexpected_exception_reaches_sentry_scrubbed(sentry: Target) -> None:
    """An exception the daemon logs as an error is sent with release and environment, and the
    secrets in its message are masked before it leaves the process."""
    redactor = Redactor([CANARY])
    configure_logging(redactor, "INFO", "json")
    dsn = f"http://publickey@127.0.0.1:{sentry.port}/1"
    assert init_sentry(dsn, "staging", redactor)
    try:
        raise RuntimeError(f"lost connection with password {CANARY}")
    except RuntimeError:
        get_logger("daemon").exception("job_failed", dsn=f"postgresql://app:{CANARY}@db/app")
    sentry_sdk.flush(timeout=5)
    wait_until(lambda: sentry.requests)
    text = decoded(sentry)
    assert "RuntimeError" in text
    assert f"opsmon@{__version__}" in text and "staging" in text
    assert CANARY not in text


def test_no_dsn_sends_nothing() -> None:
    """Without SENTRY_DSN, Sentry is not started."""
    assert init_sentry(None, "production", Redactor()) is False
    assert sentry_sdk.get_client().dsn is None

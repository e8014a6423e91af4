"""The email channel against a real SMTP server (aiosmtpd): TLS modes, AUTH, and the message
an on-call engineer reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from monitor.alerting.model import Status
from monitor.alerting.notifiers import DeliveryError, NotifierDeps
from monitor.alerting.notifiers.email import EmailSpec, build
from monitor.net.clients import HttpClients
from tests.support.alerting import FakeClock
from tests.support.smtp import SmtpServer
from tests.test_notifier_webhook import T0, _alert, notification

# aiosmtpd warns about AUTH without STARTTLS even when the whole connection is TLS.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

PASSWORD = "smtp-canary-Pa55"


@pytest.fixture
async def http() -> AsyncIterator[HttpClients]:
    """Unused by email, but part of the notifier dependencies."""
    clients = HttpClients()
    yield clients
    await clients.aclose()


def _spec(server: SmtpServer, **smtp: Any) -> EmailSpec:
    return EmailSpec.model_validate(
        {
            "name": "oncall-email",
            "type": "email",
            "smtp": {**server.smtp_config(), **smtp},
            "from": "opsmon@example.com",
            "to": ["oncall@example.com", "lead@example.com"],
        }
    )


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_mail_over_tls_with_auth_reads_well(
    tmp_path: Path, http: HttpClients, mode: str
) -> None:
    """STARTTLS or implicit TLS with AUTH: the subject, headers and both parts are right."""
    server = SmtpServer(tmp_path, mode, password=PASSWORD).start()
    try:
        notifier = build(_spec(server), NotifierDeps(http, FakeClock(T0), timeout=5))
        await notifier.send(notification(_alert("database")))
        (message,) = server.wait_messages(1)
    finally:
        server.stop()
    assert message["Subject"] == "[FIRING] DatabaseConnectionFailing: database (backend)"
    assert message["From"] == "opsmon@example.com"
    assert message["To"] == "oncall@example.com, lead@example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"] == "<0f1e2d3c@opsmon>"
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    runbook = "http://opsmon:9110/runbooks/database-connection-failing"
    for part in (plain, html):
        assert runbook in part
        assert "connection refused by 127.0.0.1:5432" in part
        assert "backend-health (backend)" in part
    assert f"<a href='{runbook}'>Runbook</a>" in html
    assert server.handler.envelopes == [
        ("opsmon@example.com", ["oncall@example.com", "lead@example.com"])
    ]


async def test_resolved_subject_and_plain_smtp(tmp_path: Path, http: HttpClients) -> None:
    """Plain SMTP without AUTH works, and a resolve says RESOLVED in the subject."""
    server = SmtpServer(tmp_path, "plain").start()
    try:
        notifier = build(_spec(server), NotifierDeps(http, FakeClock(T0), timeout=5))
        await notifier.send(
            notification(_alert("database", Status.RESOLVED), status=Status.RESOLVED)
        )
        (message,) = server.wait_messages(1)
    finally:
        server.stop()
    assert message["Subject"] == "[RESOLVED] DatabaseConnectionFailing: database (backend)"
    plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Resolved: 2026-03-02 09:05:00 UTC" in plain


async def test_rejected_login_fails_without_revealing_the_password(
    tmp_path: Path, http: HttpClients
) -> None:
    """A wrong password is a failed delivery; the reason never contains a password."""
    server = SmtpServer(tmp_path, "starttls", password="the-right-one").start()
    try:
        notifier = build(
            _spec(server, password=PASSWORD), NotifierDeps(http, FakeClock(T0), timeout=5)
        )
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(notification(_alert("database")))
    finally:
        server.stop()
    assert caught.value.reason.startswith("email oncall-email (127.0.0.1:")
    assert "535" in caught.value.reason
    assert PASSWORD not in caught.value.reason
    assert server.messages == []


async def test_untrusted_certificate_is_refused(tmp_path: Path, http: HttpClients) -> None:
    """Without the CA, the server's certificate is rejected: no mail goes to an impostor."""
    server = SmtpServer(tmp_path, "tls").start()
    try:
        spec = _spec(server)
        spec = spec.model_copy(update={"smtp": spec.smtp.model_copy(update={"ca_file": None})})
        notifier = build(spec, NotifierDeps(http, FakeClock(T0), timeout=5))
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(notification(_alert("database")))
    finally:
        server.stop()
    assert "certificate" in caught.value.reason.lower()


def test_starttls_and_tls_together_are_a_config_error() -> None:
    """Choosing both TLS modes is rejected with a clear message."""
    with pytest.raises(ValueError, match="either starttls"):
        EmailSpec.model_validate(
            {
                "name": "m",
                "type": "email",
                "smtp": {"host": "x", "starttls": True, "tls": True},
                "from": "a@b.c",
                "to": ["d@e.f"],
            }
        )

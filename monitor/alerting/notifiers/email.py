"""`type: email`: SMTP through aiosmtplib (plain, STARTTLS, implicit TLS, auth). A multipart
message (plain text and HTML, the runbook link in both) with `Auto-Submitted: auto-generated`
so auto-responders stay quiet, and a Message-ID made from the notification id."""

from __future__ import annotations

import html
import ssl
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from monitor.alerting.model import AlertView, Notification, Status
from monitor.alerting.notifiers.base import ChannelSpec, DeliveryError, NotifierDeps
from monitor.alerting.text import alert_title, body, headline, timestamp
from monitor.secrets import SECRET

_ADDRESS = r"^[^@\s]+@[^@\s]+$"


class SmtpSpec(BaseModel):
    """How to reach the mail server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)  # 465 with tls, 587 with starttls, 25
    starttls: bool = False
    tls: bool = False
    username: str | None = None
    password: Annotated[str | None, SECRET] = None
    ca_file: Path | None = None  # a private CA for the server's certificate
    verify_tls: bool = True

    @model_validator(mode="after")
    def _one_tls_mode(self) -> Self:
        if self.starttls and self.tls:
            raise ValueError("set either starttls (upgrade on connect) or tls (implicit), not both")
        if self.password and not self.username:
            raise ValueError("password is set but username is not")
        return self

    @property
    def effective_port(self) -> int:
        """The port, defaulting by TLS mode."""
        if self.port:
            return self.port
        return 465 if self.tls else (587 if self.starttls else 25)


class EmailSpec(ChannelSpec):
    """Mail to one or more addresses."""

    type: Literal["email"]
    smtp: SmtpSpec
    from_: str = Field(alias="from", pattern=_ADDRESS)
    to: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _addresses(self) -> Self:
        bad = [a for a in self.to if "@" not in a or any(c.isspace() for c in a)]
        if bad:
            raise ValueError(f"not an email address in 'to': {', '.join(bad)}")
        return self


def _html_alert(alert: AlertView) -> str:
    color = "#d92d20" if alert.status is Status.FIRING else "#2eb67d"
    rows = [
        ("Service", alert.service or "-"),
        ("Check", alert.check),
        ("Severity", alert.severity),
        ("Started", timestamp(alert.starts_at)),
    ]
    if alert.status is Status.RESOLVED and alert.ends_at is not None:
        rows.append(("Resolved", timestamp(alert.ends_at)))
    if alert.affected:
        rows.append(("Affected (held back)", ", ".join(alert.affected)))
    if alert.acked_by:
        rows.append(("Acknowledged by", alert.acked_by))
    cells = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows
    )
    return (
        f"<div style='border-left:6px solid {color};padding:4px 12px;margin:12px 0'>"
        f"<h3>[{alert.status.value.upper()}] {html.escape(alert_title(alert))}</h3>"
        f"<p>{html.escape(alert.summary)}</p>"
        f"<table>{cells}</table>"
        f"<pre>{html.escape(alert.description)}</pre>"
        f"<p><a href='{html.escape(alert.runbook_url, quote=True)}'>Runbook</a>: "
        f"{html.escape(alert.runbook_url)}</p></div>"
    )


def message(notification: Notification, spec: EmailSpec) -> EmailMessage:
    """The email for one notification."""
    msg = EmailMessage()
    msg["Subject"] = headline(notification)
    msg["From"] = spec.from_
    msg["To"] = ", ".join(spec.to)
    msg["Date"] = format_datetime(notification.created_at)
    msg["Message-ID"] = f"<{notification.id}@opsmon>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Opsmon-Notification-Id"] = notification.id
    msg.set_content(body(notification))
    alerts_html = "".join(_html_alert(a) for a in notification.alerts)
    msg.add_alternative(
        "<html><body>"
        f"<h2>{html.escape(headline(notification))}</h2>{alerts_html}"
        f"<p style='color:#666'>Notification id {html.escape(notification.id)}</p>"
        "</body></html>",
        subtype="html",
    )
    return msg


class EmailNotifier:
    """Sends each notification as one email."""

    def __init__(self, spec: EmailSpec, deps: NotifierDeps) -> None:
        self.spec = spec
        self._timeout = deps.timeout
        self._tls: ssl.SSLContext | None = None
        smtp = spec.smtp
        if smtp.tls or smtp.starttls:
            context = ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)
            if not smtp.verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._tls = context

    async def send(self, notification: Notification) -> None:
        import aiosmtplib  # only a config with an email channel loads it

        smtp = self.spec.smtp
        where = f"email {self.spec.name} ({smtp.host}:{smtp.effective_port})"
        try:
            await aiosmtplib.send(
                message(notification, self.spec),
                hostname=smtp.host,
                port=smtp.effective_port,
                username=smtp.username,
                password=smtp.password,
                use_tls=smtp.tls,
                start_tls=smtp.starttls,
                tls_context=self._tls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"{where}: SMTP {exc.code} {exc.message}") from None
        except aiosmtplib.SMTPTimeoutError:
            raise DeliveryError(f"{where}: no answer within {self._timeout:g}s") from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}") from None


def build(spec: EmailSpec, deps: NotifierDeps) -> EmailNotifier:
    """Registry entry point."""
    return EmailNotifier(spec, deps)

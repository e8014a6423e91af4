"""A real SMTP server (aiosmtpd) on 127.0.0.1: plain, STARTTLS or implicit TLS, with AUTH,
certificates from a throwaway trustme CA. It keeps every message it accepts."""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.environment import free_port
from tests.support.waiting import wait_until


@dataclass
class _Handler:
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted"


class SmtpServer:
    """aiosmtpd in a thread. `mode` is plain, starttls or tls; with `password`, AUTH is required."""

    def __init__(
        self,
        directory: Path,
        mode: str = "plain",
        username: str = "opsmon",
        password: str | None = None,
    ) -> None:
        self.mode = mode
        self.username = username
        self.password = password
        self.port = free_port()
        self.ca_file = directory / "smtp-ca.pem"
        self.handler = _Handler()
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_file))
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
        kwargs: dict[str, Any] = {}
        if mode == "starttls":
            kwargs.update(tls_context=server_context, require_starttls=True)
        elif mode == "tls":
            kwargs.update(ssl_context=server_context)
        if password is not None:
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True,
                # aiosmtpd only counts STARTTLS as TLS; implicit TLS is encrypted all along.
                auth_require_tls=mode == "starttls",
            )
        self._controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="127.0.0.1",
            **kwargs,
        )

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpServer:
        """Start serving."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        """Every accepted message, in order."""
        with self.handler.lock:
            return list(self.handler.messages)

    def wait_messages(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Block until at least `count` messages arrived."""
        wait_until(lambda: len(self.messages) >= count, timeout=timeout)
        return self.messages

    def smtp_config(self) -> dict[str, Any]:
        """The `smtp:` section of an email channel pointing here."""
        config: dict[str, Any] = {"host": "127.0.0.1", "port": self.port}
        if self.mode == "starttls":
            config["starttls"] = True
        if self.mode == "tls":
            config["tls"] = True
        if self.mode != "plain":
            config["ca_file"] = str(self.ca_file)
        if self.password is not None:
            config.update(username=self.username, password=self.password)
        return config

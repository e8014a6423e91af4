"""Logs: one JSON object per line with timestamp, level, event, component; secrets redacted."""

from __future__ import annotations

import io
import json
import logging

from monitor.logs import configure_logging, get_logger
from monitor.redaction import Redactor


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_have_the_contract_fields() -> None:
    """Each line is JSON with an ISO-8601 UTC timestamp, level, event, component and check."""
    stream = io.StringIO()
    configure_logging(Redactor(), "INFO", "json", stream=stream)
    get_logger("checks", check="backend-health").info("check_state_changed", current="unhealthy")
    (entry,) = lines(stream)
    assert entry["event"] == "check_state_changed"
    assert entry["level"] == "info"
    assert entry["component"] == "checks" and entry["check"] == "backend-health"
    assert str(entry["timestamp"]).endswith("Z")


def test_level_filters_debug() -> None:
    """At INFO, routine DEBUG lines are not written."""
    stream = io.StringIO()
    configure_logging(Redactor(), "INFO", "json", stream=stream)
    get_logger("checks").debug("check_ran")
    assert stream.getvalue() == ""


def test_stdlib_loggers_share_the_renderer_and_redaction() -> None:
    """A library's warning comes out as JSON too, with secrets masked."""
    stream = io.StringIO()
    configure_logging(Redactor(["canary-lib-secret"]), "INFO", "json", stream=stream)
    logging.getLogger("httpx").warning("retrying with canary-lib-secret")
    (entry,) = lines(stream)
    assert entry["level"] == "warning"
    assert "canary-lib-secret" not in stream.getvalue()


def test_secrets_redacted_in_values_and_exceptions() -> None:
    """Secrets in fields and in exception text are masked."""
    stream = io.StringIO()
    configure_logging(Redactor(["canary-pw-9876"]), "INFO", "json", stream=stream)
    log = get_logger("daemon")
    log.info("connecting", dsn="postgresql://app:canary-pw-9876@db/app")
    try:
        raise RuntimeError("auth failed for canary-pw-9876")
    except RuntimeError:
        log.exception("boom")
    assert "canary-pw-9876" not in stream.getvalue()
    assert "RuntimeError" in stream.getvalue()


def test_console_format() -> None:
    """OPSMON_LOG_FORMAT=console renders readable text instead of JSON."""
    stream = io.StringIO()
    configure_logging(Redactor(), "INFO", "console", stream=stream)
    get_logger("daemon").info("daemon_started", checks=3)
    text = stream.getvalue()
    assert "daemon_started" in text and "checks=3" in text and not text.startswith("{")


def test_exception_and_bytes_values_are_masked_in_every_spelling() -> None:
    """An exception object or bytes logged as a value (rendered with repr) and a secret
    JSON-escaped inside a message are masked in the written line."""
    secret = 'canary"log\\secret'
    stream = io.StringIO()
    configure_logging(Redactor([secret + "\r"]), "INFO", "json", stream=stream)
    get_logger("checks").error(
        "check_failed",
        error=ValueError(f"Illegal header value {secret.encode()!r}"),
        raw=secret.encode(),
        detail=json.dumps({"header": secret}),
    )
    written = stream.getvalue()
    assert "canary" not in written and "secret" not in written
    (entry,) = lines(stream)
    assert entry["error"] == "ValueError: Illegal header value b'***'"
    assert entry["raw"] == "b'***'" and entry["detail"] == '{"header": "***"}'

"""The Slack channel: text fallback, colored blocks with the facts, the evidence and a Runbook
button, posted to a local stand-in for the incoming webhook."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from monitor.alerting.model import Status
from monitor.alerting.notifiers import NotifierDeps
from monitor.alerting.notifiers.slack import GREEN, RED, SlackSpec, build
from monitor.net.clients import HttpClients
from tests.support.alerting import FakeClock
from tests.support.receiver import Answer, Receiver
from tests.test_notifier_webhook import T0, _alert, notification


@pytest.fixture
def slack() -> Iterator[Receiver]:
    """A stand-in for hooks.slack.com."""
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
async def http() -> AsyncIterator[HttpClients]:
    """The shared client pools."""
    clients = HttpClients()
    yield clients
    await clients.aclose()


async def _post(slack: Receiver, http: HttpClients, *args: Any, **kwargs: Any) -> dict[str, Any]:
    spec = SlackSpec(name="chat", type="slack", webhook_url=slack.url("/services/T1/B2/secret"))
    await build(spec, NotifierDeps(http, FakeClock(T0))).send(notification(*args, **kwargs))
    body: dict[str, Any] = slack.accepted()[-1].json
    return body


def _texts(blocks: list[dict[str, Any]]) -> str:
    parts = []
    for block in blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts.extend(f["text"] for f in block.get("fields", []))
        parts.extend(
            e.get("text", "") if isinstance(e.get("text"), str) else ""
            for e in block.get("elements", [])
        )
    return "\n".join(parts)


async def test_firing_message_has_fallback_facts_evidence_and_runbook_button(
    slack: Receiver, http: HttpClients
) -> None:
    """A red message whose header names status and alert, with service/check/severity/started."""
    body = await _post(slack, http, _alert("database"))
    assert body["text"] == (
        "[FIRING] DatabaseConnectionFailing: database (backend)"
        " - opsmon cannot connect to the database (check database)."
    )
    (attachment,) = body["attachments"]
    assert attachment["color"] == RED
    blocks = attachment["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": "[FIRING] DatabaseConnectionFailing: database (backend)",
        },
    }
    text = _texts(blocks)
    for fact in (
        "*Service*\nbackend",
        "*Check*\ndatabase",
        "*Severity*\ncritical",
        "*Started*\n2026-03-02 09:00:00 UTC",
        "connection refused by 127.0.0.1:5432",
        "backend-health (backend)",
    ):
        assert fact in text
    (button,) = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert button["text"]["text"] == "Runbook"
    assert button["url"] == "http://opsmon:9110/runbooks/database-connection-failing"


async def test_resolved_message_is_green(slack: Receiver, http: HttpClients) -> None:
    """RESOLVED is green and says when it ended."""
    body = await _post(slack, http, _alert("database", Status.RESOLVED), status=Status.RESOLVED)
    assert body["text"].startswith("[RESOLVED] DatabaseConnectionFailing: database (backend)")
    assert body["attachments"][0]["color"] == GREEN
    assert "*Resolved*\n2026-03-02 09:05:00 UTC" in _texts(body["attachments"][0]["blocks"])


async def test_an_acknowledged_alert_says_who(slack: Receiver, http: HttpClients) -> None:
    """An alert acknowledged through the API names who acknowledged it."""
    alert = dataclasses.replace(_alert("database"), acked_by="alice", acked_at=T0)
    body = await _post(slack, http, alert)
    assert "*Acknowledged by*\nalice" in _texts(body["attachments"][0]["blocks"])


async def test_a_group_lists_each_alert_under_one_header(
    slack: Receiver, http: HttpClients
) -> None:
    """Several alerts of one service form one message with a counted header."""
    body = await _post(slack, http, _alert("database"), _alert("db-replica"))
    header = body["attachments"][0]["blocks"][0]["text"]["text"]
    assert header == "[FIRING:2] DatabaseConnectionFailing: database, db-replica (backend)"
    assert sum(1 for b in body["attachments"][0]["blocks"] if b["type"] == "actions") == 2


async def test_mrkdwn_control_characters_are_escaped(slack: Receiver, http: HttpClients) -> None:
    """Evidence quoting HTML cannot inject Slack links or mentions."""
    alert = _alert("database")
    alert = type(alert)(**{**alert.__dict__, "description": "<!channel> & <http://evil|x>"})
    body = await _post(slack, http, alert)
    assert "&lt;!channel&gt; &amp; &lt;http://evil|x&gt;" in _texts(
        body["attachments"][0]["blocks"]
    )


async def test_slack_rate_limit_answer_is_reported_with_its_retry_after(
    slack: Receiver, http: HttpClients
) -> None:
    """Slack's 429 (rate_limited) comes back as a failed delivery with Retry-After."""
    from monitor.alerting.notifiers import DeliveryError

    slack.answer(Answer(429, retry_after="3", body="rate_limited"))
    with pytest.raises(DeliveryError) as caught:
        await _post(slack, http, _alert("database"))
    assert caught.value.retry_after == 3
    assert "secret" not in caught.value.reason

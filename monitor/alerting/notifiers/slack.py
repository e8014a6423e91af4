"""`type: slack`: an incoming webhook. A `text` fallback for notifications and a colored
attachment with blocks: header (status and alert), fields (service, check, severity,
started), the evidence, the affected dependents, and a Runbook button."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import field_validator

from monitor.alerting.model import AlertView, Notification, Status
from monitor.alerting.notifiers.base import ChannelSpec, NotifierDeps, http_url, post_json
from monitor.alerting.text import alert_title, headline, timestamp
from monitor.secrets import SECRET

RED = "#d92d20"
GREEN = "#2eb67d"
# Slack allows 50 blocks per message; each alert takes a handful.
MAX_ALERTS_SHOWN = 8
_HEADER_LIMIT = 150
_TEXT_LIMIT = 2900


class SlackSpec(ChannelSpec):
    """A Slack incoming webhook URL (a secret: it is masked everywhere)."""

    type: Literal["slack"]
    webhook_url: Annotated[str, SECRET]
    rate_limit: float | None = 1.0  # Slack accepts about one message per second per webhook

    @field_validator("webhook_url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        return http_url(value)


def escape(text: str) -> str:
    """Slack mrkdwn escaping (&, <, >)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _alert_blocks(alert: AlertView) -> list[dict[str, object]]:
    firing = alert.status is Status.FIRING
    fields = [
        f"*Service*\n{escape(alert.service or '-')}",
        f"*Check*\n{escape(alert.check)}",
        f"*Severity*\n{escape(alert.severity)}",
        f"*Started*\n{timestamp(alert.starts_at)}",
    ]
    if not firing and alert.ends_at is not None:
        fields.append(f"*Resolved*\n{timestamp(alert.ends_at)}")
    if alert.acked_by:
        fields.append(f"*Acknowledged by*\n{escape(alert.acked_by)}")
    mark = ":red_circle:" if firing else ":large_green_circle:"
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip(
                    f"{mark} *{alert.status.value.upper()}* {escape(alert_title(alert))}\n"
                    f"{escape(alert.summary)}",
                    _TEXT_LIMIT,
                ),
            },
        },
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip(f"*Evidence*\n```{escape(alert.description)}```", _TEXT_LIMIT),
            },
        },
    ]
    if alert.affected:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": _clip(
                        "*Affected (held back)*\n" + escape(", ".join(alert.affected)), _TEXT_LIMIT
                    ),
                },
            }
        )
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Runbook"},
        "url": alert.runbook_url,
    }
    if firing:
        button["style"] = "danger"
    blocks.append({"type": "actions", "elements": [button]})
    return blocks


def payload(notification: Notification) -> dict[str, object]:
    """The incoming-webhook JSON for one notification."""
    title = headline(notification)
    firing = notification.status is Status.FIRING
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(title, _HEADER_LIMIT)},
        }
    ]
    shown = notification.alerts[:MAX_ALERTS_SHOWN]
    for index, alert in enumerate(shown):
        if index:
            blocks.append({"type": "divider"})
        blocks.extend(_alert_blocks(alert))
    hidden = len(notification.alerts) - len(shown)
    footer = f"opsmon · notification {notification.id}"
    if hidden:
        footer = f"{hidden} more alert(s) not shown · " + footer
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(footer)}]})
    first = notification.alerts[0] if notification.alerts else None
    text = title + (f" - {first.summary}" if first and len(notification.alerts) == 1 else "")
    return {
        "text": text,
        "attachments": [{"color": RED if firing else GREEN, "fallback": text, "blocks": blocks}],
    }


class SlackNotifier:
    """Posts to the incoming webhook."""

    def __init__(self, spec: SlackSpec, deps: NotifierDeps) -> None:
        self.spec = spec
        self._client = deps.http.get(True)
        self._clock = deps.clock
        self._timeout = deps.timeout

    async def send(self, notification: Notification) -> None:
        await post_json(
            self._client,
            self.spec.webhook_url,
            payload(notification),
            headers={},
            request_timeout=self._timeout,
            clock=self._clock,
            what=f"slack {self.spec.name}",
        )


def build(spec: SlackSpec, deps: NotifierDeps) -> SlackNotifier:
    """Registry entry point."""
    return SlackNotifier(spec, deps)

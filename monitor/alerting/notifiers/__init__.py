"""Alert channels. Adding one is a new module and one line in CHANNEL_TYPES."""

from __future__ import annotations

from monitor.alerting.notifiers import alertmanager, email, slack, webhook
from monitor.alerting.notifiers.base import (
    ChannelSpec,
    ChannelType,
    DeliveryError,
    Notifier,
    NotifierDeps,
)

CHANNEL_TYPES: dict[str, ChannelType] = {
    "slack": ChannelType(slack.SlackSpec, slack.build),
    "email": ChannelType(email.EmailSpec, email.build),
    "webhook": ChannelType(webhook.WebhookSpec, webhook.build),
    "alertmanager": ChannelType(alertmanager.AlertmanagerSpec, alertmanager.build),
}

__all__ = [
    "CHANNEL_TYPES",
    "ChannelSpec",
    "ChannelType",
    "DeliveryError",
    "Notifier",
    "NotifierDeps",
]

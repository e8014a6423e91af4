"""Routing: the first route whose match holds picks the channels; no match means every channel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitor.alerting.config import AlertingConfig
from monitor.alerting.model import labels_match

DEFAULT_ROUTE = "default"


@dataclass(frozen=True)
class Route:
    """Where an alert goes: `key` names the route (its index, or `default`)."""

    key: str
    channels: tuple[str, ...]


class Router:
    """Picks a route by an alert's labels (alertname, severity, service, check)."""

    def __init__(self, config: AlertingConfig) -> None:
        self._routes = [
            (Route(str(index), route.channels), route.match)
            for index, route in enumerate(config.routes)
        ]
        self._default = Route(DEFAULT_ROUTE, tuple(c.name for c in config.channels))

    def route(self, labels: Mapping[str, str]) -> Route:
        """The route of an alert with these labels."""
        for route, match in self._routes:
            if labels_match(match, labels):
                return route
        return self._default

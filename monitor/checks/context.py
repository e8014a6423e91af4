"""What a check may use, handed in by the daemon so tests can build their own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monitor.clock import Clock, SystemClock
from monitor.metrics import Metrics
from monitor.net.clients import HttpClients

if TYPE_CHECKING:
    from monitor.docker.access import DockerAccess


@dataclass
class CheckContext:
    """Shared dependencies of all checks."""

    metrics: Metrics
    http: HttpClients = field(default_factory=HttpClients)
    clock: Clock = field(default_factory=SystemClock)
    # Set by the Docker watcher when container checks or discovery are configured.
    docker: DockerAccess | None = None

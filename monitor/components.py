"""Parts of the daemon that live beside the checks (alerting, Docker events, rollback, ...).

Each is built from the config by a factory in COMPONENT_FACTORIES; a factory returns None
when its section is absent. Adding a part is one module and one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from starlette.routing import BaseRoute

from monitor import runbook_pages
from monitor.alerting import component as alerting
from monitor.docker.watcher import make_docker_watcher
from monitor.rollback import component as rollback

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.daemon import Daemon


class Component(Protocol):
    """A long-lived part of the daemon with its own start, stop and reload."""

    async def start(self, daemon: Daemon) -> None:
        """Start (the daemon's checks and listeners exist already)."""
        ...

    async def stop(self) -> None:
        """Stop and release everything; called once, in reverse start order."""
        ...

    async def reload(self, config: Config) -> None:
        """Apply a new, already validated config."""
        ...

    def routes(self) -> Sequence[BaseRoute]:
        """HTTP routes this part adds to the daemon's server."""
        ...


ComponentFactory = Callable[["Daemon"], "Component | None"]

COMPONENT_FACTORIES: list[ComponentFactory] = [
    runbook_pages.build,
    alerting.build,
    make_docker_watcher,
    rollback.build,
]

"""Parts of the daemon that live beside the checks (alerting, Docker events, rollback, ...).

Part of the composition root: `build_components` builds each part from the ports and wires the
parts that talk to each other through their narrow interfaces (rollback gets alerting's
`IncidentPort` and the cluster's `ClusterPort`, never the components themselves). Adding a
part is one module and one line here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from monitor import runbook_pages
from monitor.alerting.component import AlertingComponent
from monitor.cluster.component import ClusterComponent
from monitor.docker.watcher import DockerWatcher
from monitor.rollback.component import RollbackComponent
from monitor.status.component import StatusComponent

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from monitor.config import Config
    from monitor.ports import ComponentPorts


class Component(Protocol):
    """A long-lived part of the daemon with its own start, stop and reload."""

    async def start(self) -> None:
        """Start (the daemon's checks and listeners exist already)."""
        ...

    async def stop(self) -> None:
        """Stop and release everything; called once, in reverse start order."""
        ...

    def vet(self, config: Config) -> None:
        """Raise if this part cannot apply `config`; changes nothing. The daemon asks every
        part before it swaps anything, so a reload is applied whole or not at all."""
        ...

    async def reload(self, config: Config) -> None:
        """Apply a new config that every part has vetted."""
        ...

    def routes(self) -> Sequence[BaseRoute]:
        """HTTP routes this part adds to the daemon's server."""
        ...


def build_components(ports: ComponentPorts) -> list[Component]:
    """Every component, in start order (stopped in reverse)."""
    cluster = ClusterComponent(ports)
    alerting = AlertingComponent(ports, cluster, transitions=cluster)
    status = StatusComponent(ports)
    cluster.attach(alerting, status.history, status.store)
    rollback = RollbackComponent(ports, alerting, cluster)
    cluster.attach_rollback(rollback)
    return [
        runbook_pages.RunbookPages(ports.settings.runbooks_dir, ports.config),
        cluster,
        alerting,
        DockerWatcher(ports),
        rollback,
        status,
    ]

"""Deploy tracking per Compose service: which container (and image) is current, whether it has
been healthy, and when its image becomes the last known good (LKG).

An image becomes LKG after its container ran healthy (the service's checks healthy, no die,
OOM or restart) for `stable_after`; then its snapshot is saved. A bad image (one a rollback
went away from) is never promoted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.clock import Clock
from monitor.logs import get_logger
from monitor.rollback.snapshot import Snapshot, short_id
from monitor.rollback.store import Deploy, RollbackStore

# Events that end a stable stretch (the container died, was OOM-killed or restarted).
DISTURBING_ACTIONS = frozenset({"die", "oom", "restart", "kill"})
CRASH_LOOP_RESTARTS = 3
_DEATHS_KEPT = 64


@dataclass
class _Live:
    deploy: Deploy
    known: int = 0  # the newest deploy id in the store when this one became current
    healthy_since: datetime | None = None
    deaths: deque[datetime] = field(default_factory=lambda: deque(maxlen=_DEATHS_KEPT))


@dataclass(frozen=True)
class Seen:
    """The outcome of seeing a service's container: its deploy record, and whether it is new."""

    deploy: Deploy
    new: bool


class DeployTracker:
    """Follows each service's current container and promotes stable images to LKG."""

    def __init__(
        self,
        store: RollbackStore,
        clock: Clock,
        stable_after: float,
        on_new_deploy: Callable[[Deploy], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self.stable_after = stable_after
        # Told of every container recorded for the first time, whichever path saw it first (an
        # event, a resync, or a rollback decision reading the current container).
        self._on_new_deploy = on_new_deploy
        self._live: dict[str, _Live] = {}
        self._log = get_logger("rollback")

    def current(self, service: str) -> Deploy | None:
        """The service's current deploy (its newest container; another process, such as
        `opsmon rollback`, may have recorded a newer one)."""
        live = self._live.get(service)
        latest = self._store.latest_deploy(service)
        if latest is not None and (live is None or latest.id > live.known):
            live = self._live[service] = _Live(latest, latest.id)
        return live.deploy if live is not None else None

    def seen(
        self,
        service: str,
        project: str,
        container_id: str,
        name: str,
        image: str,
        image_id: str,
        created_at: datetime,
        origin: str = "deploy",
    ) -> Seen:
        """A container of `service` runs: record it once; a new one is a new deploy."""
        live = self._live.get(service)
        if live is not None and live.deploy.container_id == container_id:
            return Seen(live.deploy, False)
        existing = self._store.deploy_of(service, container_id)
        deploy = existing or self._store.record_deploy(
            service, project, container_id, name, image, image_id, origin, created_at
        )
        # An older container may be current again (Compose restarted a kept one).
        self._live[service] = _Live(deploy, self._newest(service))
        if existing is None:
            self._log.info(
                "deploy_seen",
                service=service,
                image=image,
                image_id=short_id(image_id),
                container=name,
                origin=origin,
            )
        if self._store.bad_image(service, image_id) is not None and deploy.status != "bad":
            self._store.set_deploy_status(deploy.id, "bad")
            deploy = self._store.deploy_of(service, container_id) or deploy
            self._live[service] = _Live(deploy, self._newest(service))
        if existing is None and self._on_new_deploy is not None:
            self._on_new_deploy(deploy)
        return Seen(deploy, existing is None)

    def _newest(self, service: str) -> int:
        latest = self._store.latest_deploy(service)
        return latest.id if latest is not None else 0

    def disturbed(self, service: str, container_id: str, action: str, at: datetime) -> None:
        """An event of the service's container that ends a stable stretch."""
        live = self._live.get(service)
        if live is None or live.deploy.container_id != container_id:
            return
        if action in DISTURBING_ACTIONS:
            live.healthy_since = None
        if action in ("die", "oom"):
            live.deaths.append(at)

    def crash_looping(self, service: str, window: float, now: datetime) -> bool:
        """Whether the current container died CRASH_LOOP_RESTARTS times within `window`."""
        live = self._live.get(service)
        if live is None:
            return False
        since = now - timedelta(seconds=window)
        return sum(1 for at in live.deaths if at >= since) >= CRASH_LOOP_RESTARTS

    def observe(self, service: str, healthy: bool, now: datetime) -> Deploy | None:
        """The service's health now; returns its deploy when it is due for promotion."""
        live = self._live.get(service)
        if live is None:
            return None
        if not healthy:
            live.healthy_since = None
            return None
        if not live.deploy.ever_healthy:
            self._store.mark_healthy(live.deploy.id)
            live.deploy = self._store.deploy_of(service, live.deploy.container_id) or live.deploy
        if live.healthy_since is None:
            live.healthy_since = now
        stable = (now - live.healthy_since).total_seconds() >= self.stable_after
        if stable and live.deploy.status == "new":
            return live.deploy
        return None

    def promote(self, deploy: Deploy, snapshot: Snapshot, now: datetime) -> None:
        """Make the deploy's image the service's LKG, with the snapshot of its container."""
        if self._store.bad_image(deploy.service, deploy.image_id) is not None:
            return
        with self._store.transaction():
            self._store.save_lkg(deploy.service, deploy.project, snapshot, now)
            self._store.set_deploy_status(deploy.id, "lkg", now)
        live = self._live.get(deploy.service)
        if live is not None and live.deploy.id == deploy.id:
            live.deploy = self._store.deploy_of(deploy.service, deploy.container_id) or deploy
        self._log.info(
            "last_known_good_promoted",
            service=deploy.service,
            image=deploy.image,
            image_id=short_id(deploy.image_id),
        )

    def mark_bad(self, deploy: Deploy, reason: str, now: datetime) -> None:
        """Remember the deploy's image as bad (never promoted, a redeploy alerts)."""
        with self._store.transaction():
            self._store.mark_bad(deploy.service, deploy.image_id, deploy.image, reason, now)
            self._store.set_deploy_status(deploy.id, "bad")
        live = self._live.get(deploy.service)
        if live is not None and live.deploy.id == deploy.id:
            live.deploy = self._store.deploy_of(deploy.service, deploy.container_id) or deploy

    def forget(self, service: str) -> None:
        """Stop following `service` (it left the config)."""
        self._live.pop(service, None)

"""An alerting pipeline assembled from the real parts (store, incidents, engine, outbox,
notifiers) on a clock the test moves, so minutes of alerting time take milliseconds."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.alerting.config import AlertingConfig, MaintenanceWindow, SilenceSpec
from monitor.alerting.engine import AlertEngine
from monitor.alerting.incidents import IncidentTracker
from monitor.alerting.naming import delivery_failing
from monitor.alerting.notifiers import CHANNEL_TYPES, NotifierDeps
from monitor.alerting.outbox import Outbox
from monitor.alerting.silences import Silences
from monitor.alerting.store import AlertingStore
from monitor.checks.http import HttpSpec
from monitor.core.health import Health, Transition
from monitor.core.result import CheckResult
from monitor.core.spec import CheckSpec
from monitor.metrics import Metrics
from monitor.net.clients import HttpClients
from monitor.ports import ClusterPort
from monitor.redaction import Redactor

PUBLIC_URL = "http://opsmon.test:9110"


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self._now += timedelta(seconds=seconds)
        self._mono += seconds


def http_check(name: str, service: str | None = None, depends_on: Sequence[str] = ()) -> HttpSpec:
    """A check spec (its URL is never called: the harness feeds transitions directly)."""
    return HttpSpec(
        name=name,
        type="http",
        url=f"http://127.0.0.1:9/{name}",
        service=service,
        depends_on=tuple(depends_on),
    )


def alerting_config(**fields: Any) -> AlertingConfig:
    """An AlertingConfig from plain values, as the config file would give them."""
    return AlertingConfig.model_validate(fields)


class Harness:
    """Feeds transitions in, moves time, and runs the engine and outbox one step at a time."""

    def __init__(
        self,
        state_dir: Path,
        config: AlertingConfig,
        checks: Sequence[CheckSpec],
        *,
        silences: Sequence[SilenceSpec] = (),
        maintenance: Sequence[MaintenanceWindow] = (),
        clock: FakeClock | None = None,
        redactor: Redactor | None = None,
        cluster: ClusterPort | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.cluster = cluster
        self.clock = clock or FakeClock()
        self.metrics = Metrics()
        self.http = HttpClients()
        self.redactor = redactor or Redactor()
        self.checks = {spec.name: spec for spec in checks}
        self.health = {spec.name: Health.UNKNOWN for spec in checks}
        self._silence_specs = silences
        self._maintenance = maintenance
        self.config = config
        self.open()

    def open(self) -> None:
        """Build the pipeline on the state dir (again, after `crash`)."""
        self.store = AlertingStore.open(self.state_dir)
        self.tracker = IncidentTracker(self.store, self.metrics, self.redactor, PUBLIC_URL)
        self.outbox = Outbox(
            self.store,
            self.clock,
            self.metrics,
            rng=random.Random(7),
            cluster=self.cluster,
            on_failing=self._failing,
            on_recovered=self._recovered,
        )
        self.engine = AlertEngine(
            self.store,
            self.config,
            Silences(self.store, self._silence_specs, self._maintenance, self.clock.now()),
            lambda: lambda name: self.checks[name].depends_on if name in self.checks else (),
            self.clock,
            self.metrics,
            PUBLIC_URL,
            recovery=self.recovery,
        )
        self.reconfigure(self.config)

    def recovery(self, name: str) -> float:
        """How long a check takes to report a recovery (as the daemon computes it)."""
        spec = self.checks.get(name)
        if spec is None:
            return 0.0
        return (spec.success_threshold + 1) * spec.interval + spec.timeout

    def reconfigure(self, config: AlertingConfig) -> None:
        """Apply a changed alerting config."""
        self.config = config
        deps = NotifierDeps(self.http, self.clock, config.delivery.timeout)
        notifiers = {c.name: CHANNEL_TYPES[c.type].build(c, deps) for c in config.channels}
        self.outbox.configure(notifiers, {c.name: c for c in config.channels}, config.delivery)
        self.engine.reconfigure(
            config,
            Silences(self.store, self._silence_specs, self._maintenance, self.clock.now()),
            PUBLIC_URL,
        )

    def _failing(self, channel: str, since: datetime, error: str) -> None:
        labels = {
            "alertname": "AlertDeliveryFailing",
            "severity": "warning",
            "service": "opsmon",
            "channel": channel,
        }
        self.tracker.open(
            f"channel:{channel}", delivery_failing(channel, since, error), labels, self.clock.now()
        )

    def _recovered(self, channel: str) -> None:
        self.tracker.resolve(f"channel:{channel}", self.clock.now())

    def _move(self, name: str, to: Health, result: CheckResult) -> None:
        transition = Transition(
            name, self.health[name], to, result, self.clock.now(), self.checks[name]
        )
        self.health[name] = to
        self.tracker.on_transition(transition, self.checks[name])

    def fail(self, name: str, reason: str = "[STATUS] (503) == 200") -> None:
        """The check turns UNHEALTHY (after its thresholds) with this reason."""
        self._move(name, Health.UNHEALTHY, CheckResult.failure("condition", reason))

    def recover(self, name: str) -> None:
        """The check turns HEALTHY."""
        self._move(name, Health.HEALTHY, CheckResult(ok=True))

    async def step(self, seconds: float = 0.0) -> None:
        """Move time, evaluate the groups, and deliver whatever is due."""
        self.clock.advance(seconds)
        self.engine.evaluate()
        await self.outbox.drain()
        # A delivery may open or resolve AlertDeliveryFailing: let the engine see it too.
        self.engine.evaluate()
        await self.outbox.drain()

    async def run_for(self, seconds: float, tick: float = 1.0) -> None:
        """Step through `seconds` of alerting time, `tick` at a time."""
        steps = round(seconds / tick)
        for _ in range(steps):
            await self.step(tick)

    def crash(self) -> None:
        """Forget everything in memory, as a SIGKILL would (the SQLite file stays)."""
        self.store.close()

    async def close(self) -> None:
        """Release connections."""
        await self.outbox.cancel()
        self.store.close()
        await self.http.aclose()


def alerts_of(request_json: dict[str, Any]) -> list[tuple[str, str]]:
    """`[(status, check), ...]` of a webhook payload."""
    return [(a["status"], a["labels"].get("check", "")) for a in request_json["alerts"]]

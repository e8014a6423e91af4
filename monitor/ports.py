"""The narrow interfaces the composition root hands to the daemon's components.

A component never sees the daemon itself: it gets a `ComponentPorts` with the shared
dependencies (metrics, clock, redactor, settings) and the check registry, plus the ports of
the other components it talks to (e.g. rollback gets alerting's `IncidentPort`). Only the
composition root (`monitor.daemon`, `monitor.components`, `monitor.cli`, `monitor.demo`)
knows the concrete classes behind them; `tests/test_architecture.py` enforces it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from monitor.resilient_db import StoreHealth
from monitor.selfcheck import OwnedElsewhere, ProblemBoard, TaskWatch

if TYPE_CHECKING:
    from monitor.alerting.incidents import IncidentTracker
    from monitor.alerting.model import Ack, Notification, Silence
    from monitor.checks.context import CheckContext
    from monitor.clock import Clock
    from monitor.cluster.claims import Claim, PagedAlert
    from monitor.cluster.rollback_share import Adoption, GuardState
    from monitor.config import Config
    from monitor.core.spec import CheckSpec
    from monitor.metrics import Metrics
    from monitor.redaction import Redactor
    from monitor.runner import CheckRunner, ResultListener, TransitionListener
    from monitor.settings import Settings


class CheckRegistry(Protocol):
    """The daemon's checks as a component sees them: a snapshot, add/remove, subscription."""

    @property
    def runners(self) -> Mapping[str, CheckRunner]:
        """Every scheduled check by name (read only: change it with add/remove)."""
        ...

    @property
    def context(self) -> CheckContext:
        """The dependencies shared by every check."""
        ...

    @property
    def ready(self) -> asyncio.Event:
        """Set once the first round of checks has run."""
        ...

    def build_runner(self, spec: CheckSpec, *, discovered: bool = False) -> CheckRunner:
        """A runner for `spec` that reports to every transition listener."""
        ...

    def add_runner(self, runner: CheckRunner) -> None:
        """Start scheduling `runner`."""
        ...

    def remove_runner(self, name: str) -> None:
        """Stop and forget a check."""
        ...

    def subscribe(self, listener: TransitionListener) -> None:
        """Call `listener` with every state transition of every check."""
        ...

    def subscribe_results(self, listener: ResultListener) -> None:
        """Call `listener` with every result of every check (history); it must not block."""
        ...

    def liveness(self) -> tuple[bool, str]:
        """Whether the scheduler runs and the event loop is not stuck, with the reason."""
        ...


class IncidentPort(Protocol):
    """What other components may ask of alerting: where to open incidents, what is silenced."""

    def incidents(self) -> tuple[IncidentTracker, Callable[[], None]] | None:
        """The incident tracker and the engine's wake-up, or None while alerting is off."""
        ...

    def silenced(self, service: str, checks: Sequence[str], now: datetime) -> str | None:
        """The comment (or id) of a silence covering `service` or an open incident of one of
        `checks`, else None."""
        ...

    def rolling_back(self, service: str, checks: Sequence[str], since: datetime) -> None:
        """A rollback of `service` starts on the failures of `checks`."""
        ...

    def rolled_back(self, service: str) -> None:
        """The rollback of `service` is over."""
        ...

    def stored_silences(self, since: datetime) -> list[Silence]:
        """Silences made on this instance (CLI, API) not ended before `since`; empty while
        alerting is off."""
        ...

    def adopt_silences(self, silences: Sequence[Silence]) -> None:
        """Hold to silences made elsewhere (other instances): add them, or end ours earlier."""
        ...

    def firing_acks(self) -> list[Ack]:
        """The acks of the firing incidents (made here or adopted); empty while alerting is
        off."""
        ...

    def unacked_sources(self) -> list[str]:
        """The sources of the firing incidents nobody has acknowledged."""
        ...

    def adopt_acks(self, acks: Sequence[Ack], slack: float) -> None:
        """Hold to acks made elsewhere on the firing incidents of the same sources that had
        started by then (give or take `slack` seconds)."""
        ...

    def take_over(self, alerts: Sequence[PagedAlert]) -> None:
        """Hold incidents for checks taken over from another instance, as paged (sharding)."""
        ...

    def hand_over(self, checks: Sequence[str]) -> None:
        """Close, without paging, the incidents of checks another instance runs now."""
        ...


class RollbackStatePort(Protocol):
    """Rollback's guard state as the cluster shares it (monitor/cluster/guard_sync.py)."""

    def guard_state(self, me: str, since: datetime) -> GuardState | None:
        """This instance's freezes, lifts, bad images, last known goods and the rollbacks
        it started at `since` or later; None while rollback is off."""
        ...

    async def adopt_guards(self, adoption: Adoption) -> None:
        """Take over what other instances recorded (nothing while rollback is off)."""
        ...


class TransitionSource(Protocol):
    """Where a listener gets the checks' transitions: the registry (each instance's own
    view) or the cluster (the view combined over its instances, cluster/verdicts.py)."""

    def subscribe(self, listener: TransitionListener) -> None:
        """Call `listener` with every transition."""
        ...


class ClusterPort(Protocol):
    """What alerting's outbox and rollback ask the cluster before they act."""

    async def claim(self, notification: Notification) -> Claim:
        """Whether this instance sends its copy of `notification`."""
        ...

    async def delivered(self, notification: Notification) -> None:
        """The receiver accepted a copy this instance claimed."""
        ...

    def follower(self) -> bool:
        """Whether another instance speaks for the cluster right now."""
        ...

    def may_act(self) -> bool:
        """Whether this instance may roll back now."""
        ...

    async def fence(self, action: str) -> bool:
        """Record `action` under this leader's epoch; False if that epoch is stale."""
        ...

    def guards_changed(self) -> None:
        """Rollback recorded guard state (a freeze, a bad image, a last known good, a
        rollback): share it now rather than at the next round."""
        ...


@dataclass(frozen=True)
class ComponentPorts:
    """Everything the composition root hands to every component."""

    config: Config
    settings: Settings
    metrics: Metrics
    clock: Clock
    redactor: Redactor
    checks: CheckRegistry
    # The daemon's own health: stores that fail over to memory, tasks that must not die.
    store_health: StoreHealth = field(default_factory=StoreHealth)
    tasks: TaskWatch = field(default_factory=TaskWatch)
    # Faults components report for /healthz (the cluster store unreachable).
    problems: ProblemBoard = field(default_factory=ProblemBoard)
    # Checks another cluster instance runs (sharding), for /api/status.
    elsewhere: OwnedElsewhere = field(default_factory=OwnedElsewhere)

"""The shard keeper: with `cluster.sharding: true`, each instance runs only the configured
checks it owns in the shard table (monitor/cluster/share.py has the rules).

Every `lease / 3` it makes sure every configured check has a row, renews its own rows up to
the fair share, releases the surplus, claims free ones with `FOR UPDATE SKIP LOCKED`, and
then schedules exactly the checks it owns. A check owned elsewhere is *removed* from this
instance's scheduler (not paused): it leaves no frozen state behind -- no stale gauges in
/metrics (its owner exports them), no old result for diagnosis or rollback to judge by,
nothing for the stale-check watchdog -- and `/api/status` lists it as owned elsewhere.

While the store does not answer for a whole lease, nobody can tell who owns what: the keeper
fails open and schedules every configured check (reported in /healthz and the log) until a
round succeeds again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from monitor.cluster.claims import PagedAlert
from monitor.cluster.config import ClusterConfig
from monitor.cluster.share import ShardRow, plan_share
from monitor.cluster.store import ClusterStore, StoreUnavailable
from monitor.core.health import Health
from monitor.core.result import CheckResult, FailureKind
from monitor.diagnosis import CheckView
from monitor.logs import get_logger

if TYPE_CHECKING:
    from monitor.core.spec import CheckSpec
    from monitor.ports import ComponentPorts

PROBLEM_KEY = "cluster-shards"
_HEALTHS = {health.value: health for health in Health}

# Checks taken over (with the alerts the receivers were last told fire) and checks handed to
# another instance: alerting takes the incidents over or closes them (member.py).
Moved = Callable[[Sequence[PagedAlert], Sequence[str]], None]


def elsewhere_status(spec: CheckSpec, row: ShardRow | None) -> dict[str, object]:
    """A check another instance runs, as `/api/status` shows it: `state` says it is run
    elsewhere, `health` (with `since` and `last_error`) is its live owner's judgement."""
    owner = row.owner if row is not None and row.live else None
    judged = row.judged if row is not None and owner is not None else None
    failing = judged is not None and judged.health == "unhealthy"
    return {
        "name": spec.name,
        "type": spec.type,
        "service": spec.service,
        "depends_on": list(spec.depends_on),
        "discovered": False,
        "state": "elsewhere",
        "owner": owner,
        "health": judged.health if judged is not None else "unknown",
        "since": judged.since.isoformat() if judged is not None else None,
        "last_run": None,
        "last_result": None,
        "last_error": judged.reason if failing and judged is not None else None,
        "consecutive_failures": 0,
        "consecutive_successes": 0,
        "problems": [],
        "stale": False,
    }


def elsewhere_view(spec: CheckSpec, row: ShardRow | None) -> CheckView:
    """A check another instance runs, as diagnosis sees it: its live owner's judgement (a
    failure with the owner's kind and reason), or unknown while nobody live judged it."""
    judged = row.judged if row is not None and row.live else None
    if judged is None or judged.health not in _HEALTHS:
        return CheckView.of(spec, Health.UNKNOWN, None)
    health = _HEALTHS[judged.health]
    if health is Health.HEALTHY:
        return CheckView.of(spec, health, CheckResult(ok=True))
    if health is Health.UNKNOWN:
        return CheckView.of(spec, health, None)
    try:
        kind = FailureKind(judged.kind)
    except ValueError:  # an owner on another version, or no kind recorded
        kind = FailureKind.ERROR
    return CheckView.of(spec, health, CheckResult.failure(kind, judged.reason))


class ShardKeeper:
    """Keeps this instance's share of the shard table and schedules the checks it owns."""

    def __init__(
        self,
        config: ClusterConfig,
        ports: ComponentPorts,
        specs: Sequence[CheckSpec],
        moved: Moved = lambda taken, handed: None,
    ) -> None:
        self.config = config
        self._ports = ports
        self._moved = moved
        self._store = ClusterStore(config.store, config.instance, config.renew_every)
        self._specs: dict[str, CheckSpec] = {s.name: s for s in specs}
        self._dropped: list[str] = []
        self.owned: dict[str, int] = {}  # check -> generation
        self._rows: dict[str, ShardRow] = {}
        self._last_ok = ports.clock.monotonic()
        self._open = False  # failing open: every check runs here
        self._log = get_logger("cluster")

    @property
    def checks(self) -> Mapping[str, CheckSpec]:
        """The configured checks that are sharded, by name."""
        return self._specs

    def start(self) -> None:
        """Own nothing until the first round: drop every sharded check from the scheduler."""
        self._apply()

    async def close(self, leave: bool, restore_checks: bool) -> None:
        """Close the keeper's connection; with `leave` (or `restore_checks`), give this
        instance's rows up first (the others take them at their next round, not a lease
        later); with `restore_checks`, schedule every configured check again (this instance
        runs alone, or unsharded, from now on)."""
        if (leave or restore_checks) and self.owned:
            try:
                await self._store.release_shards(sorted(self.owned))
            except StoreUnavailable as exc:
                self._log.warning("cluster_shards_not_released", reason=str(exc))
            self.owned = {}
        await self._store.close()
        if restore_checks:
            self._open = True
            self._apply()
        self._ports.elsewhere.replace({})
        with contextlib.suppress(KeyError):
            self._ports.metrics.cluster_shards.remove(self.config.instance)

    def reload(self, specs: Sequence[CheckSpec]) -> None:
        """A new set of checks: rows of removed ones are deleted next round, new ones added;
        the daemon has just scheduled every configured check again, so owned-elsewhere ones
        are dropped at once."""
        wanted = {s.name: s for s in specs}
        self._dropped += [name for name in self._specs if name not in wanted]
        self._specs = wanted
        self.owned = {n: g for n, g in self.owned.items() if n in wanted}
        self._apply()

    def failing_open(self) -> bool:
        """Whether this instance runs every check because the store has not answered."""
        return self._open

    async def run(self) -> None:
        """A round every renewal period, forever."""
        clock = self._ports.clock
        while True:
            started = clock.monotonic()
            await self.round()
            await asyncio.sleep(max(0.0, started + self.config.renew_every - clock.monotonic()))

    async def round(self) -> None:
        """One round: read the table (adding rows for configured checks that have none),
        plan, renew, release, claim; then schedule what is owned."""
        config = self.config
        try:
            if self._dropped:
                await self._store.drop_shards(self._dropped)
                self._dropped = []
            rows = [r for r in await self._store.shards() if r.check in self._specs]
            missing = sorted(set(self._specs) - {r.check for r in rows})
            if missing:  # new checks, or rows another instance's older config deleted
                await self._store.add_shards(missing)
                rows = [r for r in await self._store.shards() if r.check in self._specs]
            live = await self._store.live_member_names(config.lease)
            plan = plan_share(config.instance, rows, live)
            owned = await self._store.renew_shards(plan.keep, config.lease)
            await self._store.release_shards(plan.release)
            claimed = await self._store.claim_shards(sorted(self._specs), plan.claim, config.lease)
            owned.update(claimed)
            gained = sorted(set(owned) - set(self.owned))
            # What the receivers believe of the checks taken over, before they run here.
            paged = await self._store.paged_firing(gained) if gained else []
        except StoreUnavailable as exc:
            self._failed(str(exc))
        else:
            self._succeeded(rows, owned, paged)
        self._apply()

    def _succeeded(
        self, rows: Sequence[ShardRow], owned: dict[str, int], paged: Sequence[PagedAlert]
    ) -> None:
        gained = sorted(set(owned) - set(self.owned))
        lost = sorted(set(self.owned) - set(owned))
        if paged or lost:
            try:
                self._moved(paged, lost)
            except Exception:
                # Alerting failing to take over or close an incident (a state store fault)
                # must not stop the keeper: the shares would expire and nobody would say why.
                self._ports.metrics.internal_task_failures.inc()
                self._log.exception("cluster_shards_incidents_not_moved", lost=len(lost))
        if gained or lost:
            self._log.info(
                "cluster_shards_changed",
                owned=len(owned),
                gained=len(gained),
                lost=len(lost),
            )
        self.owned = owned
        self._rows = {r.check: r for r in rows}
        self._last_ok = self._ports.clock.monotonic()
        if self._open:
            self._open = False
            self._ports.problems.clear(PROBLEM_KEY)
            self._log.info("cluster_shards_resumed", owned=len(owned))

    def _failed(self, reason: str) -> None:
        if self._ports.clock.monotonic() - self._last_ok < self.config.lease or self._open:
            return  # a blip: keep running what this instance owns
        self._open = True
        self._log.error("cluster_shards_fail_open", reason=reason, checks=len(self._specs))
        self._ports.problems.report(
            PROBLEM_KEY,
            "sharding suspended: the cluster store does not answer, so this instance runs "
            f"every check ({reason})",
        )

    def _apply(self) -> None:
        """Schedule exactly the owned checks (every one while failing open)."""
        registry, metrics = self._ports.checks, self._ports.metrics
        runners = registry.runners
        elsewhere: dict[str, dict[str, object]] = {}
        views: list[CheckView] = []
        for name, spec in self._specs.items():
            runs_here = self._open or name in self.owned
            if runs_here and name not in runners:
                registry.add_runner(registry.build_runner(spec))
            elif not runs_here:
                if name in runners and not runners[name].discovered:
                    registry.remove_runner(name)
                row = self._rows.get(name)
                elsewhere[name] = elsewhere_status(spec, row)
                views.append(elsewhere_view(spec, row))
        self._ports.elsewhere.replace(elsewhere, views)
        metrics.cluster_shards.labels(self.config.instance).set(len(self.owned))

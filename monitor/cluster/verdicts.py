"""Cluster verdicts: every instance runs every check, and alerting follows what the cluster
sees rather than what one instance sees.

Each instance publishes its own judgement of each check (its health after its own thresholds,
with the failure's kind and reason) to the cluster store when it changes, and reads the
failing judgements of the other live instances every renewal period. `judge` combines them by
the configured rule:

- `any` (the default): a check fails when any live instance judges it failing (a leader that
  cannot reach the target from its own host still pages what a peer sees);
- `majority`: a check fails when more than half of the live instances judge it failing (one
  instance's network trouble is not an outage).

`VerdictGate` turns changes of the combined health into transitions for alerting, so every
instance's engine opens and resolves the same incidents and the claim rules (claims.py) send
each one once. The store away: the other instances' verdicts expire after one lease and
each instance follows its own view (fail open), as its pages do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from monitor.cluster.config import Aggregate
from monitor.cluster.store import ClusterStore, StoreUnavailable, View
from monitor.core.health import Health, Transition
from monitor.core.result import CheckResult, FailureKind
from monitor.logs import get_logger

if TYPE_CHECKING:
    from monitor.clock import Clock
    from monitor.core.spec import CheckSpec
    from monitor.runner import CheckRunner

Emit = Callable[[Transition], Awaitable[None]]
_GATHER_S = 0.1


@dataclass(frozen=True)
class Verdict:
    """The cluster's health of a check and the instances that judge it failing."""

    health: Health
    failing_on: tuple[str, ...]
    live: int


def judge(
    rule: Aggregate, me: str, local: Health, others_failing: Sequence[str], live: int
) -> Verdict:
    """Combine this instance's health of a check with the instances (other than `me`) that
    judge it failing, out of `live` live instances (this one included)."""
    failing_on = tuple(sorted({*others_failing, *([me] if local is Health.UNHEALTHY else [])}))
    live = max(live, len(failing_on), 1)
    fails = bool(failing_on) if rule is Aggregate.ANY else 2 * len(failing_on) > live
    if fails:
        return Verdict(Health.UNHEALTHY, failing_on, live)
    if local is Health.UNKNOWN and not others_failing:
        return Verdict(Health.UNKNOWN, failing_on, live)
    return Verdict(Health.HEALTHY, failing_on, live)


def evidence(
    verdict: Verdict, me: str, local: CheckResult | None, others: Mapping[str, View]
) -> CheckResult:
    """The result alerting describes for a failing verdict: this instance's own when it is
    one of the failing, else the first failing peer's, naming where the check fails."""
    where = f" [failing on {', '.join(verdict.failing_on)}: {len(verdict.failing_on)} of"
    where += f" {verdict.live} instances]"
    if local is not None and not local.ok and me in verdict.failing_on:
        return CheckResult.failure(local.kind, local.reason + where, facts=local.facts)
    view = others[next(i for i in verdict.failing_on if i != me)]
    try:
        kind = FailureKind(view.kind)
    except ValueError:
        kind = FailureKind.ERROR
    return CheckResult.failure(kind, view.reason + where)


class VerdictGate:
    """Between the local check transitions and alerting: publishes this instance's views,
    reads the peers', and emits a transition whenever the cluster's health of a check
    changes."""

    def __init__(
        self,
        rule: Aggregate,
        instance: str,
        lease: float,
        store: ClusterStore,
        clock: Clock,
        specs: Callable[[], Mapping[str, CheckSpec]],
        emit: Emit,
        redact: Callable[[str], str] = str,
        on_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self._rule = rule
        self._me = instance
        self._lease = lease
        self._store = store
        self._clock = clock
        self._specs = specs
        self._emit = emit
        # Reasons leave the process: secrets are masked before they reach the store.
        self._redact = redact
        self._failures = on_failure
        self._local: dict[str, tuple[Health, CheckResult]] = {}
        self._unpublished: dict[str, View] = {}
        self._others: dict[str, dict[str, View]] = {}  # check -> instance -> failing view
        self._live = 1
        self._heard_at = clock.monotonic()
        self._emitted: dict[str, Health] = {}
        self._publish = asyncio.Event()
        self._log = get_logger("cluster")

    def seed(
        self, runners: Iterable[CheckRunner], emitted: Mapping[str, Health] | None = None
    ) -> None:
        """Start from the checks' current health, published with the first round. Alerting
        has seen `emitted` (a previous gate's, on a reload) or else the local health."""
        for runner in runners:
            state = runner.state
            result = state.last_result or CheckResult(ok=False)
            self._local[runner.spec.name] = (state.health, result)
            seen = emitted.get(runner.spec.name) if emitted is not None else None
            self._emitted[runner.spec.name] = seen or state.health
            self._unpublished[runner.spec.name] = self._view(runner.spec.name, state.health, result)

    def emitted(self) -> dict[str, Health]:
        """The health of each check as alerting last heard it from this gate."""
        return dict(self._emitted)

    async def follow_local(self) -> None:
        """Bring alerting back to this instance's own view (the cluster is left)."""
        specs = self._specs()
        for check, emitted in sorted(self._emitted.items()):
            health, result = self._local.get(check, (Health.UNKNOWN, CheckResult(ok=False)))
            if health is not emitted and check in specs:
                self._emitted[check] = health
                await self._emit(
                    Transition(check, emitted, health, result, self._clock.now(), specs[check])
                )

    # --- input ----------------------------------------------------------------------------
    async def local(self, transition: Transition) -> None:
        """This instance's own transition of a check."""
        result = transition.result
        self._local[transition.check] = (transition.current, result)
        self._unpublished[transition.check] = self._view(
            transition.check, transition.current, result
        )
        self._publish.set()
        await self._judge(transition.check, transition.at, transition.spec)

    async def run(self, every: float) -> None:
        """Publish this instance's changed views at once; read the peers' every `every`
        seconds (and right after each publish)."""
        while True:
            try:
                async with asyncio.timeout(every):
                    await self._publish.wait()
                # Changes come in bursts (checks starting, taken over, one outage seen by
                # many checks): one statement carries all that arrive within a moment.
                await asyncio.sleep(_GATHER_S)
            except TimeoutError:
                pass
            self._publish.clear()
            try:
                await self.exchange()
            except Exception:
                # A bug in one round must not stop the next: peers' views would never expire.
                self._failures()
                self._log.exception("cluster_verdict_round_failed")

    async def exchange(self) -> None:
        """One round: publish, read the peers' failing views, judge every check again."""
        views, self._unpublished = list(self._unpublished.values()), {}
        try:
            if views:
                await self._store.publish_views(views)
            live, failing = await self._store.failing_views(2 * self._lease)
        except StoreUnavailable as exc:
            for view in views:  # published with the next round that reaches the store
                self._unpublished.setdefault(view.check, view)
            if self._others and self._clock.monotonic() - self._heard_at > self._lease:
                self._log.warning("cluster_verdicts_expired", reason=str(exc))
                self._others, self._live = {}, 1  # follow this instance's own view
                await self._judge_all()
            return
        self._heard_at = self._clock.monotonic()
        others: dict[str, dict[str, View]] = {}
        for view in failing:
            others.setdefault(view.check, {})[view.instance] = view
        self._others, self._live = others, live
        await self._judge_all()

    def _view(self, check: str, health: Health, result: CheckResult) -> View:
        if health is not Health.UNHEALTHY:
            return View(self._me, check, health)
        return View(self._me, check, health, result.kind.value, self._redact(result.reason))

    # --- judging --------------------------------------------------------------------------
    async def _judge_all(self) -> None:
        specs = self._specs()
        for check in sorted({*self._emitted, *self._others} & set(specs)):
            await self._judge(check, self._clock.now(), specs[check])
        for check in [c for c in {*self._emitted, *self._local} if c not in specs]:
            # Removed by a reload (alerting resolves it itself); a failing view of ours must
            # not outlive it in the store.
            self._emitted.pop(check, None)
            self._local.pop(check, None)
            self._unpublished[check] = View(self._me, check, Health.UNKNOWN)

    async def _judge(self, check: str, at: datetime, spec: CheckSpec) -> None:
        # Decided and recorded without an await, so two judgements never interleave.
        health, result = self._local.get(check, (Health.UNKNOWN, None))
        others = self._others.get(check, {})
        verdict = judge(self._rule, self._me, health, list(others), self._live)
        previous = self._emitted.get(check, Health.UNKNOWN)
        if verdict.health is previous:
            return
        if verdict.health is Health.UNHEALTHY:
            shown = evidence(verdict, self._me, result, others)
        elif result is not None and result.ok:
            shown = result
        else:
            shown = CheckResult(ok=verdict.health is Health.HEALTHY)
        self._emitted[check] = verdict.health
        transition = Transition(check, previous, verdict.health, shown, at, spec)
        if verdict.health is not Health.UNKNOWN:
            self._log.info(
                "cluster_verdict_changed",
                check=check,
                current=verdict.health.value,
                failing_on=list(verdict.failing_on),
                live=verdict.live,
            )
        await self._emit(transition)

"""How the instances' judgements of a check combine (`any`, `majority`), and the gate that
turns the combined health into transitions for alerting, on a real PostgreSQL store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from monitor.checks.http import HttpSpec
from monitor.cluster.config import Aggregate
from monitor.cluster.store import ClusterStore, View
from monitor.cluster.verdicts import Verdict, VerdictGate, evidence, judge
from monitor.core.health import Health, Transition
from monitor.core.result import CheckResult, FailureKind
from monitor.redaction import Redactor
from tests.support.alerting import FakeClock
from tests.support.postgres import PostgresCluster, PostgresFactory

LEASE = 2.0
CANARY = "canary-views-secret-5d0e"
WEB = HttpSpec(name="web", type="http", url="http://127.0.0.1:9/health", service="web")
DOWN = CheckResult.failure(FailureKind.CONNECTION_REFUSED, "connection refused by 127.0.0.1:9")

U, H, X = Health.UNHEALTHY, Health.HEALTHY, Health.UNKNOWN


@pytest.mark.parametrize(
    ("rule", "local", "others", "live", "expected"),
    [
        (Aggregate.ANY, H, ["b"], 3, U),
        (Aggregate.ANY, U, [], 3, U),
        (Aggregate.ANY, H, [], 3, H),
        (Aggregate.ANY, X, [], 3, X),
        (Aggregate.MAJORITY, U, [], 3, H),
        (Aggregate.MAJORITY, H, ["b"], 3, H),
        (Aggregate.MAJORITY, U, ["b"], 3, U),
        (Aggregate.MAJORITY, H, ["b", "c"], 3, U),
        (Aggregate.MAJORITY, U, ["b"], 4, H),
        (Aggregate.MAJORITY, U, [], 1, U),
    ],
)
def test_judge_combines_by_the_rule(
    rule: Aggregate, local: Health, others: list[str], live: int, expected: Health
) -> None:
    """`any` fails on one failing instance; `majority` needs more than half of the live
    ones (two of four is not enough); an instance alone decides for itself."""
    assert judge(rule, "a", local, others, live).health is expected


def test_a_stale_live_count_never_makes_fewer_instances_than_failing_ones() -> None:
    """Views of instances the live count has not caught up with still count as instances."""
    verdict = judge(Aggregate.MAJORITY, "a", Health.UNHEALTHY, ["b", "c"], 1)
    assert verdict == Verdict(Health.UNHEALTHY, ("a", "b", "c"), 3)


def test_evidence_is_our_own_failure_or_a_peers_naming_where() -> None:
    """The alert describes this instance's own failure when it is failing too, else the
    first failing peer's, with its kind, and names the failing instances."""
    peer = View("b", "web", Health.UNHEALTHY, "timeout", "no answer within 2s")
    ours = evidence(Verdict(U, ("a", "b"), 3), "a", DOWN, {"b": peer})
    assert ours.kind is FailureKind.CONNECTION_REFUSED
    assert ours.reason == "connection refused by 127.0.0.1:9 [failing on a, b: 2 of 3 instances]"
    theirs = evidence(Verdict(U, ("b",), 3), "a", CheckResult(ok=True), {"b": peer})
    assert theirs.kind is FailureKind.TIMEOUT
    assert theirs.reason == "no answer within 2s [failing on b: 1 of 3 instances]"
    odd = View("b", "web", Health.UNHEALTHY, "from-a-newer-version", "odd")
    assert evidence(Verdict(U, ("b",), 2), "a", None, {"b": odd}).kind is FailureKind.ERROR


class Member:
    """A gate of one instance on the shared store, recording what alerting would hear."""

    def __init__(self, server: PostgresCluster, name: str, rule: Aggregate) -> None:
        self.store = ClusterStore(server.dsn(), name, timeout=3.0)
        self.clock = FakeClock()
        self.heard: list[tuple[Health, str]] = []
        self.specs: dict[str, HttpSpec] = {"web": WEB}
        self.gate = VerdictGate(
            rule,
            name,
            LEASE,
            self.store,
            self.clock,
            lambda: self.specs,
            self._hear,
            Redactor({CANARY}).text,
        )

    async def _hear(self, transition: Transition) -> None:
        self.heard.append((transition.current, transition.result.reason))

    async def local(self, current: Health, result: CheckResult) -> None:
        await self.gate.local(
            Transition("web", Health.UNKNOWN, current, result, datetime.now(UTC), WEB)
        )


async def test_a_peers_failure_reaches_alerting_and_its_recovery_resolves(
    make_postgres: PostgresFactory,
) -> None:
    """With `any`, b's alerting hears UNHEALTHY (with a's reason) after one exchange once a
    published its failure, and HEALTHY once a's recovery is published; a hears its own at
    once."""
    server = make_postgres()
    a, b = Member(server, "a", Aggregate.ANY), Member(server, "b", Aggregate.ANY)
    await asyncio.gather(a.store.renew(LEASE, "t"), b.store.renew(LEASE, "t"))
    await b.local(Health.HEALTHY, CheckResult(ok=True))
    await a.local(Health.UNHEALTHY, DOWN)
    assert a.heard == [(U, DOWN.reason + " [failing on a: 1 of 1 instances]")]
    await a.gate.exchange()
    await b.gate.exchange()
    assert b.heard == [
        (H, ""),
        (U, "connection refused by 127.0.0.1:9 [failing on a: 1 of 2 instances]"),
    ]
    await a.local(Health.HEALTHY, CheckResult(ok=True))
    await a.gate.exchange()
    await b.gate.exchange()
    assert b.heard[-1] == (H, "")
    await asyncio.gather(a.store.close(), b.store.close())


async def test_peers_views_expire_when_the_store_is_away(make_postgres: PostgresFactory) -> None:
    """The store stopped: a peer's failure is held for one lease, then b follows its own
    (healthy) view and alerting hears HEALTHY (fail open, as pages do)."""
    server = make_postgres()
    a, b = Member(server, "a", Aggregate.ANY), Member(server, "b", Aggregate.ANY)
    await asyncio.gather(a.store.renew(LEASE, "t"), b.store.renew(LEASE, "t"))
    await b.local(Health.HEALTHY, CheckResult(ok=True))
    await a.local(Health.UNHEALTHY, DOWN)
    await a.gate.exchange()
    await b.gate.exchange()
    assert b.heard[-1][0] is U
    server.stop()
    await b.gate.exchange()
    assert b.heard[-1][0] is U  # within the lease: still the cluster's view
    b.clock.advance(LEASE + 0.1)
    await b.gate.exchange()
    assert b.heard[-1] == (H, "")
    await asyncio.gather(a.store.close(), b.store.close())


async def test_a_removed_check_leaves_no_failing_view_behind(
    make_postgres: PostgresFactory,
) -> None:
    """A check a reload removed: its failing view in the store is replaced, so a check
    added again under the name starts clean for the peers."""
    server = make_postgres()
    a = Member(server, "a", Aggregate.ANY)
    await a.store.renew(LEASE, "t")
    await a.local(Health.UNHEALTHY, DOWN)
    await a.gate.exchange()
    assert server.sql("SELECT health FROM opsmon_cluster_views") == [("unhealthy",)]
    a.specs = {}  # a reload removed the check
    await a.gate.exchange()
    await a.gate.exchange()
    assert server.sql("SELECT health FROM opsmon_cluster_views") == [("unknown",)]
    await a.store.close()


async def test_a_secret_in_a_reason_never_reaches_the_store(
    make_postgres: PostgresFactory,
) -> None:
    """A failure reason that quotes a secret is published masked; the peer hears it masked."""
    server = make_postgres()
    a, b = Member(server, "a", Aggregate.ANY), Member(server, "b", Aggregate.ANY)
    await asyncio.gather(a.store.renew(LEASE, "t"), b.store.renew(LEASE, "t"))
    leaky = CheckResult.failure(FailureKind.CONDITION, f"[BODY].token ({CANARY}) == 'x'")
    await a.local(Health.UNHEALTHY, leaky)
    await a.gate.exchange()
    await b.gate.exchange()
    (reason,) = server.sql("SELECT reason FROM opsmon_cluster_views WHERE instance = 'a'")[0]
    assert CANARY not in reason and "[BODY].token" in reason
    assert b.heard and all(CANARY not in text for _, text in b.heard)
    await asyncio.gather(a.store.close(), b.store.close())

"""Three real `opsmon run` processes on one real PostgreSQL: one voice for pages, a fenced
leader, failover after SIGKILL, nothing sent by a leader that was paused, fail-open alerts
when the store is away. Each instance posts to its own path of one receiver, so the test
knows who sent what; the channel (and so the group) is the same for all."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from monitor.cluster.component import ClusterComponent
from monitor.cluster.verdicts import VerdictGate
from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.rollback.store import open_store
from monitor.settings import Settings
from tests.support.alertmanager import running_alertmanager
from tests.support.cli import run_opsmon
from tests.support.daemon_process import DaemonProcess
from tests.support.environment import free_port
from tests.support.postgres import APP_PASSWORD, PostgresCluster, PostgresFactory
from tests.support.receiver import Answer, FlipTarget, Receiver, serving
from tests.support.status import TOKEN_ENV, TOKENS, auth, token_config
from tests.support.waiting import async_wait_until, holds_for, wait_until

LEASE = 1.5
NAMES = ("a", "b", "c")


@dataclass
class Cluster:
    """The receiver, the target, the store and the instances by name."""

    receiver: Receiver
    target: FlipTarget
    store: PostgresCluster
    tmp: Path
    members: dict[str, DaemonProcess] = field(default_factory=dict)
    # More channels for every instance, as YAML flow mappings.
    channels: list[str] = field(default_factory=list)
    clustered: bool = True
    # A target of an instance's own instead of the shared one (it sees what others do not).
    own_targets: dict[str, FlipTarget] = field(default_factory=dict)
    aggregate: str = "any"
    repeat_interval: str = "4h"
    # The test tokens (tests/support/status.py) for the API, read from the environment.
    api: bool = False
    # More top-level sections for every instance (YAML).
    extra: str = ""

    def config(self, name: str) -> Path:
        path = self.tmp / f"{name}.yml"
        path.write_text(
            textwrap.dedent(f"""\
            state_dir: {self.tmp / name}
            defaults:
              {{interval: 300ms, timeout: 250ms, failure_threshold: 2, success_threshold: 2}}
            checks:
              - {{name: backend-health, type: http, service: backend, url: "{self.url(name)}"}}
            alerting:
              group_wait: 300ms
              group_interval: 300ms
              repeat_interval: {self.repeat_interval}
              delivery: {{initial_backoff: 300ms, max_backoff: 1s}}
              channels:
                - {{name: hooks, type: webhook, url: "{self.receiver.url("/hook/" + name)}"}}
            """)
            + "".join(f"    - {channel}\n" for channel in self.channels)
            + (f"api: {json.dumps(token_config())}\n" if self.api else "")
            + (
                textwrap.dedent(f"""\
                cluster:
                  store: "{self.store.dsn()}"
                  instance: {name}
                  lease: {LEASE}s
                  aggregate: {self.aggregate}
                """)
                if self.clustered
                else ""
            )
            + self.extra
        )
        return path

    def url(self, name: str) -> str:
        return self.own_targets.get(name, self.target).url

    def start(self, name: str) -> DaemonProcess:
        log = self.tmp / f"{name}.log"
        member = DaemonProcess(self.config(name), log, env=TOKEN_ENV).start()
        self.members[name] = member
        member.wait_ready()
        return member

    def metric(self, name: str, family: str) -> float | None:
        try:
            text = self.members[name].get("/metrics").text
        except Exception:
            return None
        found = re.search(rf"^{family}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else None

    def leader(self, among: tuple[str, ...] | None = None) -> str | None:
        names = among or tuple(self.members)
        leading = [n for n in names if self.metric(n, "opsmon_cluster_leader") == 1]
        return leading[0] if len(leading) == 1 else None

    def wait_settled(self, names: tuple[str, ...]) -> None:
        """Until every copy these instances queued is sent or settled against the log."""
        wait_until(
            lambda: all(self.metric(n, "opsmon_alert_outbox_pending") == 0 for n in names),
            timeout=10,
        )

    def firing_reasons(self) -> list[str]:
        """The description of each alert in every accepted FIRING notification."""
        return [
            str(alert["annotations"].get("description", ""))
            for r in self.receiver.accepted()
            if r.json["status"] == "firing"
            for alert in r.json["alerts"]
        ]

    def firing(self) -> list[tuple[str, str]]:
        """(sender, notification id) of every accepted FIRING notification."""
        return self._sent("firing")

    def resolved(self) -> list[tuple[str, str]]:
        """(sender, notification id) of every accepted RESOLVED notification."""
        return self._sent("resolved")

    def _sent(self, status: str) -> list[tuple[str, str]]:
        """(sender, notification id) of the accepted notifications about backend-health."""
        return [
            (r.path.rsplit("/", 1)[-1], r.json["notificationId"])
            for r in self.receiver.accepted()
            if r.json["status"] == status
            and any(a["labels"].get("check") == "backend-health" for a in r.json["alerts"])
        ]

    def logs(self) -> str:
        return "".join(m.log_text() for m in self.members.values())


@pytest.fixture
def cluster(tmp_path: Path, make_postgres: PostgresFactory) -> Iterator[Cluster]:
    """A store, a receiver, a target; instances started by the test, stopped after it."""
    receiver, target = Receiver(), FlipTarget()
    with contextmanager(serving)(receiver, target):
        made = Cluster(receiver, target, make_postgres(), tmp_path)
        try:
            yield made
        finally:
            for member in made.members.values():
                if member.alive():
                    member.signal(signal.SIGCONT)
                    member.stop()


def start_three(cluster: Cluster) -> str:
    """Start a, b and c; return the one that leads once they agree."""
    for name in NAMES:
        cluster.start(name)
    return wait_until(cluster.leader, timeout=10)


def test_one_incident_is_paged_once_by_the_leader(cluster: Cluster) -> None:
    """Three instances each see the outage; the receivers get one FIRING and one RESOLVED
    notification, both from the leader, and the DSN password is nowhere in their logs."""
    leader = start_three(cluster)
    cluster.target.healthy = False
    wait_until(cluster.firing, timeout=15)
    cluster.target.healthy = True
    wait_until(cluster.resolved, timeout=15)
    cluster.wait_settled(NAMES)
    assert [sender for sender, _ in cluster.firing()] == [leader]
    assert [sender for sender, _ in cluster.resolved()] == [leader]
    assert APP_PASSWORD not in cluster.logs()


def test_sigkill_of_the_leader_hands_over_and_the_next_outage_is_paged_once(
    cluster: Cluster,
) -> None:
    """The leader is SIGKILLed: another instance leads within 2 x lease (with a higher epoch),
    and an outage that starts afterwards is paged once, by the new leader."""
    leader = start_three(cluster)
    epoch = cluster.metric(leader, "opsmon_cluster_epoch")
    cluster.members[leader].signal(signal.SIGKILL)
    rest = tuple(n for n in NAMES if n != leader)
    successor = wait_until(lambda: cluster.leader(rest), timeout=2 * LEASE + 2)
    new_epoch = cluster.metric(successor, "opsmon_cluster_epoch")
    assert epoch is not None and new_epoch is not None and new_epoch > epoch

    cluster.target.healthy = False
    wait_until(cluster.firing, timeout=15)
    cluster.wait_settled(rest)
    assert [sender for sender, _ in cluster.firing()] == [successor]


def test_a_paused_leader_sends_nothing_with_its_stale_epoch(cluster: Cluster) -> None:
    """The leader claims a page but its receiver fails it; the leader is SIGSTOPped for
    3 x lease; the new leader sends the page (at least once); after SIGCONT the old leader's
    retry is settled against the log and never reaches the receiver."""
    leader = start_three(cluster)
    cluster.receiver.default = Answer(500)
    cluster.target.healthy = False
    wait_until(
        lambda: any(r.path.endswith("/" + leader) for r in cluster.receiver.requests),
        timeout=15,
    )
    paused = cluster.members[leader]
    paused.signal(signal.SIGSTOP)
    refused_before = len([r for r in cluster.receiver.requests if r.path.endswith(leader)])
    cluster.receiver.default = Answer(200)
    rest = tuple(n for n in NAMES if n != leader)
    successor = wait_until(lambda: cluster.leader(rest), timeout=2 * LEASE + 2)
    firing = wait_until(cluster.firing, timeout=15)
    assert [sender for sender, _ in firing] == [successor]

    os.kill(paused.pid, signal.SIGCONT)
    paused.wait_event("cluster_following", timeout=10)
    cluster.wait_settled((leader,))
    sent_by_paused = [r for r in cluster.receiver.requests if r.path.endswith("/" + leader)]
    assert len(sent_by_paused) == refused_before
    assert all(r.status == 500 for r in sent_by_paused)
    assert [sender for sender, _ in cluster.firing()] == [successor]


def test_store_down_alerts_fail_open_and_the_cluster_reports_itself(cluster: Cluster) -> None:
    """With PostgreSQL stopped every instance sends its own page (fail open), /healthz says
    the store is unreachable, opsmon_cluster_store_up is 0 and nobody leads; when it is back
    the store is up again and one leader emerges."""
    start_three(cluster)
    cluster.store.stop()
    wait_until(
        lambda: all(cluster.metric(n, "opsmon_cluster_store_up") == 0 for n in NAMES),
        timeout=10,
    )
    wait_until(
        lambda: all(cluster.members[n].get("/healthz").status_code == 503 for n in NAMES),
        timeout=10,
    )
    health = cluster.members["a"].get("/healthz").text
    assert "cluster store unreachable since" in health and APP_PASSWORD not in health
    cluster.target.healthy = False
    wait_until(lambda: {s for s, _ in cluster.firing()} == set(NAMES), timeout=20)
    degraded = [r for r in cluster.receiver.accepted() if "ClusterDegraded" in r.body.decode()]
    assert degraded, "ClusterDegraded was not sent"
    assert all(cluster.leader((n,)) is None for n in NAMES)

    cluster.store.start()
    wait_until(
        lambda: all(cluster.metric(n, "opsmon_cluster_store_up") == 1 for n in NAMES),
        timeout=15,
    )
    wait_until(cluster.leader, timeout=10)
    assert APP_PASSWORD not in cluster.logs()


def test_clustered_alertmanagers_send_once_what_every_instance_sent(
    cluster: Cluster, tmp_path: Path
) -> None:
    """With the store away every instance fails open and posts the alert to both of two
    Alertmanagers clustered over loopback (`--cluster.peer`): their receiver is notified once."""
    paged = Receiver().start()
    ports = (free_port(), free_port())
    try:
        with (
            running_alertmanager(tmp_path / "am1", paged.url("/am"), ports[0], [ports[1]]) as one,
            running_alertmanager(tmp_path / "am2", paged.url("/am"), ports[1], [ports[0]]) as two,
        ):
            cluster.channels = [
                f'{{name: am1, type: alertmanager, url: "{one.url}"}}',
                f'{{name: am2, type: alertmanager, url: "{two.url}"}}',
            ]
            start_three(cluster)
            cluster.store.stop()
            wait_until(
                lambda: all(cluster.metric(n, "opsmon_cluster_store_up") == 0 for n in NAMES),
                timeout=10,
            )
            cluster.target.healthy = False
            # Every instance posted (fail open): three copies on the webhook channel.
            wait_until(lambda: {s for s, _ in cluster.firing()} == set(NAMES), timeout=20)
            wait_until(lambda: one.alerts() and two.alerts(), timeout=10)

            def health_pages() -> list[object]:
                return [
                    r
                    for r in paged.accepted()
                    if r.json["commonLabels"].get("alertname") == "HealthCheckFailing"
                ]

            wait_until(health_pages, timeout=20)
            # Observed past the second peer's wait (peer timeout 2s) and a few gossip rounds.
            holds_for(lambda: len(health_pages()) == 1, seconds=5)
    finally:
        paged.stop()


def test_store_restarted_mid_incident_loses_and_doubles_nothing(cluster: Cluster) -> None:
    """PostgreSQL restarts while an outage is firing: the instances reconnect, and the
    receivers still get exactly one FIRING and one RESOLVED."""
    start_three(cluster)
    cluster.target.healthy = False
    wait_until(cluster.firing, timeout=15)
    cluster.store.stop()
    cluster.store.start()
    wait_until(lambda: cluster.leader() is not None, timeout=10)
    cluster.target.healthy = True
    wait_until(cluster.resolved, timeout=15)
    cluster.wait_settled(NAMES)
    assert len(cluster.firing()) == 1 and len(cluster.resolved()) == 1


def test_a_reload_without_the_cluster_section_leaves_and_pages_alone(cluster: Cluster) -> None:
    """SIGHUP with the `cluster:` section removed: the leader gives up its lease and leaves
    the members at once (the other instance takes over), and it pages by itself from then."""
    leader = start_three(cluster)
    cluster.clustered = False
    cluster.config(leader)
    cluster.members[leader].signal(signal.SIGHUP)
    rest = tuple(n for n in NAMES if n != leader)
    wait_until(lambda: cluster.leader(rest), timeout=2 * LEASE + 2)
    members = cluster.store.sql("SELECT instance FROM opsmon_cluster_members ORDER BY 1")
    assert [m for (m,) in members] == list(rest)
    assert cluster.metric(leader, "opsmon_cluster_leader") is None  # alone: no cluster series
    cluster.target.healthy = False
    wait_until(lambda: {s for s, _ in cluster.firing()} == {leader, cluster.leader(rest)}, 15)


def test_a_silence_made_on_a_follower_holds_for_the_leader(cluster: Cluster) -> None:
    """`opsmon silence add` on a follower: the leader holds the page back; `silence expire`
    on that follower lifts it for the whole cluster and the leader pages."""
    leader = start_three(cluster)
    follower = next(n for n in NAMES if n != leader)
    made = run_opsmon(
        "silence",
        "add",
        "--match",
        "check=backend-health",
        "--comment",
        "planned work",
        "--config",
        str(cluster.config(follower)),
    )
    assert made.returncode == 0, made.stderr
    silence_id = made.stdout.split()[0]

    def leader_silences() -> list[str]:
        body = cluster.members[leader].get("/api/alerts").json()
        return [s["id"] for s in body["silences"]]

    wait_until(lambda: silence_id in leader_silences(), timeout=10)
    cluster.target.healthy = False
    wait_until(
        lambda: any(
            i["labels"].get("check") == "backend-health" and i["suppressed"]
            for i in cluster.members[leader].get("/api/alerts").json()["incidents"]
        ),
        timeout=15,
    )
    assert cluster.firing() == []

    expired = run_opsmon("silence", "expire", silence_id, "--config", str(cluster.config(follower)))
    assert expired.returncode == 0, expired.stderr
    firing = wait_until(cluster.firing, timeout=15)
    assert [sender for sender, _ in firing] == [leader]


def test_an_ack_made_on_a_follower_stops_the_leaders_reminders(cluster: Cluster) -> None:
    """An outage reminded every second by the leader: acknowledging it through a follower's
    API stops the reminders, every instance's API names who acknowledged it, and the
    RESOLVED (from the leader) says so too."""
    cluster.repeat_interval, cluster.api = "1s", True
    leader = start_three(cluster)
    follower = next(n for n in NAMES if n != leader)
    cluster.target.healthy = False
    wait_until(lambda: len(cluster.firing()) >= 3, timeout=15)  # the FIRING and reminders

    def firing_incident(name: str) -> dict[str, object] | None:
        base = cluster.members[name].base
        listed = httpx.get(f"{base}/api/v1/incidents", headers=auth("reader"), timeout=5).json()
        return next((i for i in listed["incidents"] if i["status"] == "firing"), None)

    incident = wait_until(lambda: firing_incident(follower), timeout=10)
    acked = httpx.post(
        f"{cluster.members[follower].base}/api/v1/incidents/{incident['id']}/ack",
        headers=auth("acker"),
        timeout=5,
    )
    assert acked.status_code == 200, acked.text
    wait_until(
        lambda: all((firing_incident(n) or {}).get("acked_by") == "acker" for n in NAMES),
        timeout=10,
    )
    cluster.wait_settled(NAMES)
    settled = len(cluster.firing())
    # Three repeat intervals without a reminder from anyone.
    holds_for(lambda: len(cluster.firing()) == settled, seconds=3)
    cluster.target.healthy = True
    resolved = wait_until(
        lambda: [r for r in cluster.receiver.accepted() if r.json["status"] == "resolved"], 15
    )
    assert [r.path.rsplit("/", 1)[-1] for r in resolved] == [leader]
    assert resolved[0].json["alerts"][0]["annotations"]["acknowledged_by"] == "acker"
    for _, token in TOKENS.values():
        assert token not in cluster.logs()


async def test_a_dead_lease_keeper_shows_in_healthz_and_pages_still_go_out(
    tmp_path: Path, make_postgres: PostgresFactory
) -> None:
    """The lease keeper of a lone instance dies (a bug, injected): /healthz names the task,
    and once its lease has run out a new outage is still paged (the instance fails open
    instead of holding its copies for a leader that will never come)."""
    store = make_postgres()
    receiver, target = Receiver().start(), FlipTarget().start()
    config = Cluster(receiver, target, store, tmp_path)
    path = config.config("solo")
    port = free_port()
    daemon = Daemon(load_config(path, dict(os.environ)), Settings(listen=f"127.0.0.1:{port}"))
    running = asyncio.create_task(daemon.run())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:

            async def leading() -> bool:
                try:
                    text = (await client.get("/metrics")).text
                except httpx.HTTPError:
                    return False
                return 'opsmon_cluster_leader{member="solo"} 1.0' in text

            await async_wait_until(leading, timeout=20)
            (cluster,) = [c for c in daemon.components if isinstance(c, ClusterComponent)]
            assert cluster.member is not None

            async def broken(lease: float, version: str) -> object:
                raise RuntimeError("injected lease keeper bug")

            cluster.member._lease_store.renew = broken  # type: ignore[method-assign]

            async def named() -> str | None:
                answer = await client.get("/healthz")
                return answer.text if answer.status_code == 503 else None

            health = await async_wait_until(named, timeout=10)
            assert "internal task cluster-lease died" in health
            member = cluster.member

            async def lapsed() -> bool:
                return not member.leads()

            await async_wait_until(lapsed, timeout=5)
            target.healthy = False

            async def paged() -> list[tuple[str, str]]:
                return config.firing()

            assert [sender for sender, _ in await async_wait_until(paged, timeout=20)] == ["solo"]
    finally:
        daemon.request_stop()
        await asyncio.wait_for(running, 15)
        receiver.stop()
        target.stop()


async def test_guard_state_recorded_by_rollback_is_shared_at_once(
    tmp_path: Path, make_postgres: PostgresFactory
) -> None:
    """When rollback says it recorded guard state (a rollback ended, an image was promoted),
    the member shares it at once, not at its next round (here minutes away): a leader that
    dies right after a failed rollback has already shared the freeze."""
    store = make_postgres()
    receiver, target = Receiver().start(), FlipTarget().start()
    config = Cluster(receiver, target, store, tmp_path)
    config.extra = "rollback:\n  services:\n    backend: {project: shop}\n"
    path = config.config("solo")
    path.write_text(path.read_text().replace(f"lease: {LEASE}s", "lease: 10m"))
    state = open_store(tmp_path / "solo")
    first, second = datetime.now(UTC) - timedelta(minutes=1), datetime.now(UTC)
    state.freeze("backend", "rollback r1 failed", first)
    daemon = Daemon(load_config(path, dict(os.environ)), Settings(listen=None))
    running = asyncio.create_task(daemon.run())

    async def shared(since: datetime) -> bool:
        try:
            rows = store.sql("SELECT since FROM opsmon_cluster_rollback_freezes")
        except psycopg.errors.UndefinedTable:  # not migrated yet
            return False
        return any(row[0] == since for row in rows)

    try:
        await async_wait_until(lambda: shared(first), timeout=20)  # the first round ran
        state.freeze("backend", "rollback r2 failed", second)
        (cluster,) = [c for c in daemon.components if isinstance(c, ClusterComponent)]
        cluster.guards_changed()
        await async_wait_until(lambda: shared(second), timeout=15)
    finally:
        state.close()
        daemon.request_stop()
        await asyncio.wait_for(running, 15)
        receiver.stop()
        target.stop()


@contextmanager
def own_targets(cluster: Cluster, *names: str) -> Iterator[dict[str, FlipTarget]]:
    """A target of their own for the named instances (healthy at first)."""
    targets = {name: FlipTarget() for name in names}
    with contextmanager(serving)(*targets.values()):
        cluster.own_targets.update(targets)
        yield targets


def test_any_pages_once_what_only_one_follower_sees(cluster: Cluster) -> None:
    """`aggregate: any`: an outage only one follower sees (its own target fails) is paged
    once, by the leader, naming the follower as where it fails; healing resolves it once."""
    with own_targets(cluster, *NAMES) as targets:
        leader = start_three(cluster)
        follower = next(n for n in NAMES if n != leader)
        targets[follower].healthy = False
        wait_until(cluster.firing, timeout=15)
        where = f"[failing on {follower}: 1 of 3 instances]"
        assert any(where in reason for reason in cluster.firing_reasons())
        targets[follower].healthy = True
        wait_until(cluster.resolved, timeout=15)
        cluster.wait_settled(NAMES)
        assert [sender for sender, _ in cluster.firing()] == [leader]
        assert [sender for sender, _ in cluster.resolved()] == [leader]


def test_majority_pages_only_when_more_than_half_see_it(cluster: Cluster) -> None:
    """`aggregate: majority`: the leader alone seeing the outage pages nothing (its failing
    view is in the store); a follower seeing it too pages once, naming both."""
    cluster.aggregate = "majority"
    with own_targets(cluster, *NAMES) as targets:
        leader = start_three(cluster)
        follower = next(n for n in NAMES if n != leader)
        targets[leader].healthy = False
        wait_until(
            lambda: (
                cluster.store.sql(
                    f"SELECT health FROM opsmon_cluster_views WHERE instance = '{leader}'"
                )
                == [("unhealthy",)]
            ),
            timeout=15,
        )
        holds_for(lambda: not cluster.firing(), 3 * LEASE)
        targets[follower].healthy = False
        wait_until(cluster.firing, timeout=15)
        cluster.wait_settled(NAMES)
        assert len(cluster.firing()) == 1
        both = ", ".join(sorted((leader, follower)))
        where = f"[failing on {both}: 2 of 3 instances]"
        assert any(where in reason for reason in cluster.firing_reasons())


async def test_a_crash_in_judging_still_pages_this_instances_view(
    tmp_path: Path,
    make_postgres: PostgresFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Combining views crashes (a bug, injected): the outage this instance sees is still
    paged from its own view, and the crash is counted and logged."""
    store = make_postgres()
    receiver, target = Receiver().start(), FlipTarget().start()
    config = Cluster(receiver, target, store, tmp_path)
    path = config.config("solo")
    port = free_port()

    async def broken(self: VerdictGate, transition: object) -> None:
        raise RuntimeError("injected verdict bug")

    monkeypatch.setattr(VerdictGate, "local", broken)
    daemon = Daemon(load_config(path, dict(os.environ)), Settings(listen=f"127.0.0.1:{port}"))
    running = asyncio.create_task(daemon.run())
    try:
        await async_wait_until(lambda: _ready(daemon), timeout=20)
        target.healthy = False

        async def paged() -> list[tuple[str, str]]:
            return config.firing()

        assert [sender for sender, _ in await async_wait_until(paged, timeout=20)] == ["solo"]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            metrics = (await client.get("/metrics")).text
        failures = re.search(r"^opsmon_internal_task_failures_total (\S+)$", metrics, re.M)
        assert failures is not None and float(failures.group(1)) >= 1
        events = [r.msg.get("event") for r in caplog.records if isinstance(r.msg, dict)]
        assert "cluster_verdict_failed" in events
    finally:
        daemon.request_stop()
        await asyncio.wait_for(running, 15)
        receiver.stop()
        target.stop()


def test_a_freeze_holds_on_every_instance_and_an_unfreeze_anywhere_lifts_it(
    cluster: Cluster,
) -> None:
    """A freeze the leader recorded (its rollback failed) shows on a follower within a few
    rounds, so a follower that takes over holds to it; `opsmon rollback unfreeze` on the
    follower lifts it on the leader too."""
    cluster.extra = "rollback:\n  mode: dry_run\n  services:\n    backend: {project: shop}\n"
    leader = start_three(cluster)
    follower = next(n for n in NAMES if n != leader)

    def frozen(name: str) -> object:
        rows = cluster.members[name].get("/api/rollback").json()["services"]
        return next(r["frozen"] for r in rows if r["service"] == "backend")

    state = open_store(cluster.tmp / leader)
    try:
        state.freeze("backend", "rollback r1 failed", datetime.now(UTC))
    finally:
        state.close()
    shown = wait_until(lambda: frozen(follower), timeout=10)
    assert shown["reason"] == "rollback r1 failed"  # type: ignore[index]

    lifted = run_opsmon(
        "rollback", "unfreeze", "backend", "--config", str(cluster.config(follower))
    )
    assert lifted.returncode == 0, lifted.stderr
    wait_until(lambda: frozen(leader) is None, timeout=10)
    holds_for(lambda: frozen(leader) is None and frozen(follower) is None, 3 * LEASE)


async def _ready(daemon: Daemon) -> bool:
    return daemon.readiness()[0]

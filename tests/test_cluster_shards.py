"""Sharding with real `opsmon run` processes on one real PostgreSQL (all on 127.0.0.1): the
configured checks are spread evenly over the live instances, each check runs on its owner
only, a dead instance's checks move to the survivors and keep running, a joining instance
takes its share, a paused owner whose checks moved sends nothing, and with the store away
every instance runs every check.

Every check asks one local target at `/<check>?by=<instance>`, so the target's request log
says which instance ran which check, and when."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
import psycopg
import pytest

from monitor.clock import SystemClock
from monitor.cluster.claims import PagedAlert
from monitor.cluster.config import ClusterConfig
from monitor.cluster.shards import Moved, ShardKeeper, elsewhere_view
from monitor.cluster.share import Judgement, ShardRow
from monitor.cluster.store import ClusterStore
from monitor.config import Config
from monitor.core.health import Health
from monitor.core.result import FailureKind
from monitor.core.spec import CheckSpec
from monitor.logs import configure_logging
from monitor.metrics import Metrics
from monitor.ports import ComponentPorts
from monitor.redaction import Redactor
from monitor.settings import Settings
from tests.support.cli import run_opsmon
from tests.support.daemon_process import DaemonProcess
from tests.support.path_target import PathTarget, path_target
from tests.support.postgres import APP_PASSWORD, PostgresCluster, PostgresFactory
from tests.support.receiver import Answer, Receiver
from tests.support.status import TOKEN_ENV, auth, token_config
from tests.support.waiting import holds_for, wait_until

LEASE = 2.0
INTERVAL = 3.0


@dataclass
class Shards:
    """The target, the receiver, the store and the instances by name."""

    target: PathTarget
    receiver: Receiver
    store: PostgresCluster
    tmp: Path
    checks: list[str]
    members: dict[str, DaemonProcess] = field(default_factory=dict)
    failure_threshold: int = 2
    # The test tokens (tests/support/status.py) for the API, read from the environment.
    api: bool = False
    # check -> the check it depends on
    depends_on: dict[str, str] = field(default_factory=dict)

    def config(self, name: str) -> Path:
        checks = "".join(
            f'  - {{name: {check}, type: http, service: {check}, url: "'
            f'{self.target.url(check, name)}"'
            + (f", depends_on: [{self.depends_on[check]}]" if check in self.depends_on else "")
            + "}\n"
            for check in self.checks
        )
        path = self.tmp / f"{name}.yml"
        path.write_text(
            textwrap.dedent(f"""\
            state_dir: {self.tmp / name}
            defaults:
              interval: {INTERVAL}s
              timeout: 2s
              failure_threshold: {self.failure_threshold}
              success_threshold: 1
            alerting:
              group_by: [service, check]
              group_wait: 200ms
              group_interval: 200ms
              delivery: {{initial_backoff: 300ms, max_backoff: 1s}}
              channels:
                - {{name: hooks, type: webhook, url: "{self.receiver.url("/hook/" + name)}"}}
            cluster:
              store: "{self.store.dsn()}"
              instance: {name}
              lease: {LEASE}s
              sharding: true
            checks:
            """)
            + checks
            + (f"api: {json.dumps(token_config())}\n" if self.api else "")
        )
        return path

    def start(self, *names: str) -> None:
        for name in names:
            log = self.tmp / f"{name}.log"
            self.members[name] = DaemonProcess(self.config(name), log, env=TOKEN_ENV).start()
        for name in names:
            self.members[name].wait_ready(timeout=60)

    def metric(self, name: str, family: str) -> float | None:
        try:
            text = self.members[name].get("/metrics").text
        except Exception:
            return None
        found = re.search(rf"^{family}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else None

    def owned(self, names: tuple[str, ...]) -> dict[str, int]:
        """Instance -> checks it owns, by its own opsmon_cluster_shards."""
        return {n: int(self.metric(n, "opsmon_cluster_shards") or 0) for n in names}

    def table(self) -> dict[str, str | None]:
        """Check -> its live owner in the store (None: unowned or expired); empty until the
        first instance has created the table."""
        try:
            rows = self.store.sql(
                "SELECT check_name, CASE WHEN expires_at > now() THEN owner END "
                "FROM opsmon_cluster_shards"
            )
        except psycopg.errors.UndefinedTable:
            return {}
        return {str(check): owner for check, owner in rows}

    def balanced(self, names: tuple[str, ...], tolerance: int = 0) -> bool:
        """Every check owned by exactly one of `names`, each owning its fair share."""
        share = -(-len(self.checks) // len(names))
        table = self.table()
        counts = self.owned(names)
        return (
            sorted(table) == sorted(self.checks)
            and all(owner in names for owner in table.values())
            and all(abs(counts[n] - share) <= tolerance for n in names)
            and sum(counts.values()) == len(self.checks)
        )

    def every_check_ran_since(self, since: float, names: tuple[str, ...]) -> bool:
        """Every check was run since `since`, only by instances among `names`."""
        ran = self.target.runners(since)
        return set(ran) == set(self.checks) and all(by <= set(names) for by in ran.values())

    def firing(self) -> list[str]:
        """Senders of the accepted FIRING notifications."""
        return self._sent("firing")

    def resolved(self) -> list[str]:
        """Senders of the accepted RESOLVED notifications."""
        return self._sent("resolved")

    def _sent(self, status: str) -> list[str]:
        return [
            r.path.rsplit("/", 1)[-1]
            for r in self.receiver.accepted()
            if r.json["status"] == status
        ]

    def logs(self) -> str:
        return "".join(m.log_text() for m in self.members.values())


@pytest.fixture
def shards(tmp_path: Path, make_postgres: PostgresFactory) -> Iterator[Shards]:
    """A store, a receiver and a target; instances started by the test, stopped after it."""
    receiver = Receiver().start()
    with path_target() as target:
        made = Shards(target, receiver, make_postgres(), tmp_path, [])
        try:
            yield made
        finally:
            # All at once: stopped one by one, the last would take every check over first.
            alive = [m for m in made.members.values() if m.alive()]
            for member in alive:
                member.signal(signal.SIGCONT)
                member.signal(signal.SIGTERM)
            for member in alive:
                member.stop()
            receiver.stop()


def many(count: int) -> list[str]:
    return [f"c{n:03d}" for n in range(count)]


def test_600_checks_spread_evenly_and_each_runs_only_on_its_owner(shards: Shards) -> None:
    """Two instances share 600 checks 300/300; a third joins and each ends up with 200;
    from then on every check runs, each on exactly one instance (its owner), /api/status
    shows the others as owned elsewhere, /healthz stays 200 and `opsmon cluster status`
    counts the shards per member."""
    shards.checks = many(600)
    shards.start("a", "b")
    wait_until(lambda: shards.balanced(("a", "b")), timeout=30)

    shards.start("c")
    names = ("a", "b", "c")
    wait_until(lambda: shards.balanced(names, tolerance=2), timeout=30)
    settled = time.monotonic()
    wait_until(lambda: shards.every_check_ran_since(settled, names), timeout=4 * INTERVAL)
    ran = shards.target.runners(settled)
    assert all(len(by) == 1 for by in ran.values()), "a check ran on two instances"
    table = shards.table()
    assert all(ran[check] == {owner} for check, owner in table.items())

    status = shards.members["a"].status()
    mine = {n for n, c in status.items() if c["state"] != "elsewhere"}
    assert mine == {check for check, owner in table.items() if owner == "a"}
    elsewhere = {n: c["owner"] for n, c in status.items() if c["state"] == "elsewhere"}
    assert len(mine) + len(elsewhere) == 600
    assert all(elsewhere[n] == table[n] for n in elsewhere)
    # Past the stale limit (2 x interval + timeout + 1s) since the checks owned elsewhere
    # were dropped: none of them counts as a check that stopped running.
    holds_for(
        lambda: all(shards.members[n].get("/healthz").status_code == 200 for n in names),
        seconds=max(0.0, settled + 2 * INTERVAL + 3 - time.monotonic()) + 1,
    )

    done = run_opsmon("cluster", "status", "--json", "--config", str(shards.config("a")))
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    counts = {m["instance"]: m["shards"] for m in document["members"]}
    assert sum(counts.values()) == 600 and len(document["shards"]) == 600
    text = run_opsmon("cluster", "status", "--config", str(shards.config("a"))).stdout
    assert "a: live" in text and f"{counts['a']} shards" in text
    assert "shards: 600 checks, 0 without a live owner" in text


def test_sigkill_moves_the_dead_instances_checks_and_they_keep_running(shards: Shards) -> None:
    """600 checks over three instances; one is SIGKILLed: within 2 x lease the two
    survivors own all 600 (300 each, by the store), and every check is run again after
    the handover, by a survivor."""
    shards.checks = many(600)
    names = ("a", "b", "c")
    shards.start(*names)
    wait_until(lambda: shards.balanced(names, tolerance=2), timeout=40)
    shards.members["c"].signal(signal.SIGKILL)
    shards.members["c"].wait_exit()
    rest = ("a", "b")
    # The bound of the issue, plus the polling of three /metrics and one query.
    wait_until(lambda: shards.balanced(rest), timeout=2 * LEASE + 2)
    moved = time.monotonic()
    wait_until(lambda: shards.every_check_ran_since(moved, rest), timeout=4 * INTERVAL)
    assert APP_PASSWORD not in shards.logs()


def test_every_instance_shows_the_health_and_history_of_every_check(shards: Shards) -> None:
    """Each check runs on one instance, yet every instance's status API shows every check
    with its owner's health (a failing one with its error, and its incident, on both) and
    its history counts the runs of the checks the other owns (shared through the store),
    never more runs than the target saw."""
    shards.checks, shards.api = many(4), True
    shards.target.failing.add("c000")
    names = ("a", "b")
    shards.start(*names)
    wait_until(lambda: shards.balanced(names), timeout=30)
    owners = shards.table()

    def states(name: str) -> dict[str, tuple[str, bool]]:
        url = f"{shards.members[name].base}/api/v1/status"
        checks = httpx.get(url, headers=auth("reader"), timeout=5).json()["checks"]
        return {c["name"]: (c["state"], bool(c["last_error"])) for c in checks}

    expected = {"c000": ("unhealthy", True)} | {c: ("healthy", False) for c in many(4)[1:]}
    for name in names:
        wait_until(lambda n=name: states(n) == expected, timeout=20)

    def incidents(name: str) -> list[tuple[str, str]]:
        url = f"{shards.members[name].base}/api/v1/incidents"
        listed = httpx.get(url, headers=auth("reader"), timeout=5).json()["incidents"]
        return [(i["check"], i["status"]) for i in listed]

    for name in names:  # the owner's incident, listed once on both
        wait_until(lambda n=name: incidents(n) == [("c000", "firing")], timeout=20)

    def runs(name: str, check: str) -> int:
        url = f"{shards.members[name].base}/api/v1/checks/{check}/history"
        answer = httpx.get(url, headers=auth("reader"), timeout=5)
        assert answer.status_code in (200, 404), answer.text  # 404: no history of it yet
        return sum(int(row["total"]) for row in answer.json().get("rows", []))

    def counted_elsewhere() -> bool:
        return all(runs(n, c) > 0 for c, owner in owners.items() for n in names if n != owner)

    wait_until(counted_elsewhere, timeout=30)
    # The counts first, then the target's log: a run counted has hit the target before.
    counted = {(n, c): runs(n, c) for c in shards.checks for n in names}
    hits = {check: 0 for check in shards.checks}
    for hit in shards.target.hits():
        hits[hit.path] += 1
    for (name, check), total in counted.items():
        assert total <= hits[check], (name, check, total, hits[check])


def test_a_new_owner_does_not_page_again_what_the_old_owner_paged(shards: Shards) -> None:
    """The owner of a failing check pages it; it is SIGKILLed; the survivor takes the check
    over, sees the same failure and does not page it again (the notification log already
    has that news), and it is the survivor that pages the recovery."""
    shards.checks = many(4)
    shards.target.failing.add("c000")
    shards.start("a", "b")
    wait_until(lambda: shards.balanced(("a", "b")), timeout=20)
    owner = wait_until(lambda: shards.table().get("c000"), timeout=10)
    assert wait_until(shards.firing, timeout=20) == [owner]
    survivor = "b" if owner == "a" else "a"
    shards.members[owner].signal(signal.SIGKILL)
    wait_until(lambda: shards.table().get("c000") == survivor, timeout=2 * LEASE + 2)

    def survivor_incident() -> bool:
        incidents = shards.members[survivor].get("/api/alerts").json()["incidents"]
        return any(
            i["labels"].get("check") == "c000" and i["status"] == "firing" for i in incidents
        )

    wait_until(survivor_incident, timeout=20)
    wait_until(lambda: shards.metric(survivor, "opsmon_alert_outbox_pending") == 0, timeout=10)
    assert shards.firing() == [owner]
    shards.target.failing.clear()
    assert wait_until(shards.resolved, timeout=20) == [survivor]


def test_a_recovery_after_the_owner_died_is_paged_by_the_new_owner(shards: Shards) -> None:
    """The owner of a failing check pages it and is SIGKILLed; the check recovers before
    anyone runs it again. The new owner takes the paged incident over from the notification
    log and pages the recovery once; nobody pages the failure again."""
    shards.checks = many(4)
    shards.target.failing.add("c000")
    shards.start("a", "b")
    wait_until(lambda: shards.balanced(("a", "b")), timeout=20)
    owner = wait_until(lambda: shards.table().get("c000"), timeout=10)
    assert wait_until(shards.firing, timeout=20) == [owner]
    survivor = "b" if owner == "a" else "a"
    shards.members[owner].signal(signal.SIGKILL)
    shards.target.failing.clear()
    assert wait_until(shards.resolved, timeout=4 * LEASE + 2 * INTERVAL) == [survivor]
    holds_for(lambda: (shards.firing(), shards.resolved()) == ([owner], [survivor]), 2)
    taken = shards.members[survivor].events("incident_taken_over")
    assert [e["source"] for e in taken] == ["c000"]


def test_a_check_handed_to_a_joining_instance_closes_the_old_owners_incident(
    shards: Shards,
) -> None:
    """One instance pages two failing checks; a second joins and takes one over. The old
    owner closes its incident of the moved check without paging; the new one holds the paged
    incident (no second FIRING) and pages its recovery: one FIRING, one RESOLVED per check."""
    shards.checks = many(2)
    shards.target.failing.update(shards.checks)
    shards.start("a")
    wait_until(lambda: shards.balanced(("a",)), timeout=20)
    wait_until(lambda: len(shards.firing()) == 2, timeout=20)
    shards.start("b")
    wait_until(lambda: shards.balanced(("a", "b")), timeout=20)
    moved = next(c for c, owner in shards.table().items() if owner == "b")

    def incident(name: str) -> dict[str, object]:
        incidents = shards.members[name].get("/api/alerts").json()["incidents"]
        return next(i for i in incidents if i["labels"].get("check") == moved)

    wait_until(lambda: incident("a")["status"] == "resolved", timeout=10)
    assert "handed over" in str(incident("a")["description"])
    wait_until(lambda: incident("b")["status"] == "firing", timeout=10)
    holds_for(lambda: len(shards.firing()) == 2, 2 * INTERVAL)
    shards.target.failing.clear()
    wait_until(lambda: len(shards.resolved()) == 2, timeout=20)
    assert sorted(shards.resolved()) == ["a", "b"]
    holds_for(lambda: len(shards.firing()) == 2 and len(shards.resolved()) == 2, 2)


def test_a_dependent_is_held_back_while_its_root_fails_on_another_instance(
    shards: Shards,
) -> None:
    """`api` depends on `db`, and each is owned by another instance. `db` fails, then `api`:
    only `db` is paged (by its owner), its page updated to list `api` as affected; `api`'s
    owner holds its incident back as inhibited, and after both recover only `db`'s recovery
    is paged."""
    shards.checks, shards.depends_on = ["api", "db"], {"api": "db"}
    shards.start("a", "b")
    wait_until(lambda: shards.balanced(("a", "b")), timeout=20)
    owners = shards.table()
    shards.target.failing.add("db")
    assert wait_until(shards.firing, timeout=20) == [owners["db"]]
    api_owner = shards.members[str(owners["api"])]
    wait_until(
        lambda: any(
            c["name"] == "db" and c.get("health") == "unhealthy"
            for c in api_owner.get("/api/status").json()["checks"]
        ),
        timeout=10,
    )
    shards.target.failing.add("api")

    def api_incident() -> dict[str, object] | None:
        incidents = api_owner.get("/api/alerts").json()["incidents"]
        return next((i for i in incidents if i["labels"].get("check") == "api"), None)

    wait_until(lambda: (api_incident() or {}).get("suppressed") == "inhibited", timeout=20)

    def affected_listed() -> bool:
        return any(
            alert["annotations"].get("affected") == "api (api)"
            for request in shards.receiver.accepted()
            for alert in request.json["alerts"]
            if alert["labels"].get("check") == "db" and alert["status"] == "firing"
        )

    wait_until(affected_listed, timeout=20)
    # The api's owner diagnoses it by the db's owner's judgement: the root cause is the db.
    [api] = [c for c in api_owner.get("/api/status").json()["checks"] if c["name"] == "api"]
    assert api["problems"][0]["root_cause"]["check"] == "db", api["problems"]
    holds_for(lambda: set(shards.firing()) == {owners["db"]}, 2)
    shards.target.failing.clear()
    assert wait_until(shards.resolved, timeout=20) == [owners["db"]]
    holds_for(lambda: set(shards.firing()) == {owners["db"]} and len(shards.resolved()) == 1, 2)


def test_a_paused_owner_whose_checks_moved_sends_nothing(shards: Shards) -> None:
    """The owner of a failing check claims its page but the receiver refuses it; the owner
    is SIGSTOPped past its lease; the other instance takes the check over and sends the
    page; after SIGCONT the paused one's retry never reaches the receiver."""
    shards.checks = many(4)
    shards.start("a", "b")
    wait_until(lambda: shards.balanced(("a", "b")), timeout=20)
    owner = wait_until(lambda: shards.table().get("c000"), timeout=10)
    other = "b" if owner == "a" else "a"
    shards.receiver.default = Answer(500)
    shards.target.failing.add("c000")
    wait_until(
        lambda: any(r.path.endswith("/" + owner) for r in shards.receiver.requests), timeout=20
    )
    paused = shards.members[owner]
    changes = len(paused.events("cluster_shards_changed"))
    paused.signal(signal.SIGSTOP)
    refused = len([r for r in shards.receiver.requests if r.path.endswith("/" + owner)])
    shards.receiver.default = Answer(200)
    wait_until(lambda: shards.table().get("c000") == other, timeout=2 * LEASE + 2)
    assert wait_until(shards.firing, timeout=20) == [other]

    os.kill(paused.pid, signal.SIGCONT)
    # It wakes up, finds its shard gone (a new shards change) and settles its copy.
    paused.wait_event("cluster_shards_changed", count=changes + 1, timeout=10)
    wait_until(lambda: shards.metric(owner, "opsmon_alert_outbox_pending") == 0, timeout=10)
    sent_by_paused = [r for r in shards.receiver.requests if r.path.endswith("/" + owner)]
    assert len(sent_by_paused) == refused and all(r.status == 500 for r in sent_by_paused)
    assert shards.firing() == [other]


def test_with_the_store_away_every_instance_runs_every_check(shards: Shards) -> None:
    """PostgreSQL stops: after a lease each instance runs every check (nobody knows who owns
    what), says so in /healthz and its log; when the store is back they share again."""
    shards.checks = many(20)
    names = ("a", "b")
    shards.start(*names)
    wait_until(lambda: shards.balanced(names), timeout=20)
    shards.store.stop()
    for name in names:
        shards.members[name].wait_event("cluster_shards_fail_open", timeout=10)
    opened = time.monotonic()

    def everywhere() -> bool:
        ran = shards.target.runners(opened)
        return set(ran) == set(shards.checks) and all(by == set(names) for by in ran.values())

    wait_until(everywhere, timeout=4 * INTERVAL)
    health = shards.members["a"].get("/healthz")
    assert health.status_code == 503 and "sharding suspended" in health.text
    assert APP_PASSWORD not in health.text

    shards.store.start()
    wait_until(lambda: shards.balanced(names), timeout=20)
    for name in names:
        shards.members[name].wait_event("cluster_shards_resumed", timeout=10)
    back = time.monotonic()
    wait_until(lambda: shards.every_check_ran_since(back, names), timeout=4 * INTERVAL)
    ran = shards.target.runners(back)
    assert all(len(by) == 1 for by in ran.values()), "a check still runs on both instances"


def test_a_reload_adds_and_deletes_shard_rows(shards: Shards) -> None:
    """SIGHUP with one check removed and one added: the removed check's row is deleted,
    the new one is owned and run, and the others keep their owner."""
    shards.checks = many(3)
    shards.start("a")
    wait_until(lambda: shards.balanced(("a",)), timeout=20)
    shards.checks = ["c000", "c001", "new"]
    shards.config("a")
    shards.members["a"].signal(signal.SIGHUP)
    wait_until(lambda: sorted(shards.table()) == ["c000", "c001", "new"], timeout=10)
    wait_until(lambda: shards.balanced(("a",)), timeout=10)
    reloaded = time.monotonic()
    wait_until(lambda: shards.every_check_ran_since(reloaded, ("a",)), timeout=3 * INTERVAL)
    assert "c002" not in shards.members["a"].status()


def test_a_clean_stop_hands_its_checks_over_at_once(shards: Shards) -> None:
    """SIGTERM of one of two instances releases its rows and leaves the members: the other
    owns every check within a lease (without waiting for the rows to expire)."""
    shards.checks = many(20)
    shards.start("a", "b")
    wait_until(lambda: shards.balanced(("a", "b")), timeout=20)
    assert shards.members["b"].stop() == 0
    released = shards.store.sql(
        "SELECT count(*) FROM opsmon_cluster_shards WHERE owner = 'b' AND expires_at > now()"
    )
    assert released == [(0,)]
    wait_until(lambda: shards.balanced(("a",)), timeout=LEASE)


class _Schedule:
    """A check registry that only records what the keeper schedules (no check runs)."""

    def __init__(self) -> None:
        self.runners: dict[str, SimpleNamespace] = {}

    def build_runner(self, spec: CheckSpec) -> SimpleNamespace:
        return SimpleNamespace(spec=spec, discovered=False)

    def add_runner(self, runner: SimpleNamespace) -> None:
        self.runners[runner.spec.name] = runner

    def remove_runner(self, name: str) -> None:
        self.runners.pop(name)


def _keeper(server: PostgresCluster, name: str, moved: Moved, metrics: Metrics) -> ShardKeeper:
    specs = [CheckSpec(name=check, type="http", service=check) for check in many(4)]
    config = ClusterConfig(store=server.dsn(), instance=name, lease=LEASE, sharding=True)
    ports = ComponentPorts(
        Config(),
        Settings(),
        metrics,
        SystemClock(),
        Redactor(),
        _Schedule(),
    )
    return ShardKeeper(config, ports, specs, moved)


async def test_alerting_failing_to_move_incidents_does_not_stop_the_keeper(
    make_postgres: PostgresFactory,
) -> None:
    """When alerting cannot close the incidents of checks handed over (its state store
    fails), the keeper counts and logs it and goes on: it keeps renewing what it owns, so its
    checks do not expire and stop running everywhere."""
    stream = io.StringIO()
    configure_logging(Redactor(), "INFO", "json", stream=stream)
    server = make_postgres()
    metrics = Metrics()

    def broken(taken: Sequence[PagedAlert], handed: Sequence[str]) -> None:
        raise OSError("disk I/O error")

    a = _keeper(server, "a", broken, metrics)
    b = _keeper(server, "b", lambda taken, handed: None, Metrics())
    joining = ClusterStore(server.dsn(), "b", timeout=3.0)
    try:
        await a.round()
        assert len(a.owned) == 4
        await joining.renew(LEASE, "t")  # b is a live member: a's share halves
        await a.round()
        assert len(a.owned) == 2
        assert metrics.internal_task_failures._value.get() == 1
        assert "cluster_shards_incidents_not_moved" in stream.getvalue()
        await b.round()
        assert len(b.owned) == 2
        await a.round()  # the keeper goes on renewing its share
        assert set(a.owned) | set(b.owned) == set(many(4))
        live = server.sql(
            "SELECT count(*) FROM opsmon_cluster_shards WHERE owner = 'a' AND expires_at > now()"
        )
        assert live == [(2,)]
    finally:
        await asyncio.gather(a.close(False, False), b.close(False, False), joining.close())


def test_a_check_run_elsewhere_is_diagnosed_by_its_owners_judgement() -> None:
    """Diagnosis sees a check another instance runs as its live owner judged it: failing with
    the owner's kind and reason, healthy, or unknown when the owner is gone."""
    spec = CheckSpec(name="db", type="postgres", service="db")
    since = datetime.now(UTC)

    def row(health: str, kind: str = "", live: bool = True) -> ShardRow:
        return ShardRow("db", "b", 1, live, Judgement(health, "refused", since, kind))

    down = elsewhere_view(spec, row("unhealthy", "connection_refused"))
    assert down.health is Health.UNHEALTHY and down.result is not None
    assert (down.result.kind, down.result.reason) == (FailureKind.CONNECTION_REFUSED, "refused")
    odd = elsewhere_view(spec, row("unhealthy", "from-a-newer-version"))
    assert odd.result is not None and odd.result.kind is FailureKind.ERROR
    assert elsewhere_view(spec, row("healthy")).health is Health.HEALTHY
    assert elsewhere_view(spec, row("unhealthy", "timeout", live=False)).health is Health.UNKNOWN
    assert elsewhere_view(spec, None).result is None

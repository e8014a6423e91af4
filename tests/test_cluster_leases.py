"""The per-service rollback lease in the cluster store (monitor/cluster/leases.py), on a real
PostgreSQL: one owner per service across hosts, expiry by the database's clock, release at
once; `opsmon gate`, `opsmon rollback` and the daemon's leader all respect it; a store that
does not answer fails closed, naming host:port and never the password."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from monitor.cluster.leases import ClusterLeases
from monitor.cluster.store import MIGRATIONS
from monitor.rollback.lease import LeaseHeld, LeaseUnavailable, owners
from tests.support.cli import run_opsmon
from tests.support.environment import free_port
from tests.support.gate import ComposeProject, gate_config, run_gate, write_config
from tests.support.postgres import APP_USER, PostgresCluster, PostgresFactory
from tests.support.rollback import Deployment
from tests.support.rollback_daemon import Opsmon
from tests.support.waiting import async_wait_until, wait_until

CANARY = "canary-lease-pw-7c41d2"
OTHER_HOST = "4242@ci-runner-2"
OTHER = "a deploy gate (pid 4242 on ci-runner-2)"
# A service no other test's containers belong to (the engine is shared).
SERVICE = "lease" + uuid.uuid4().hex[:8]
# Long enough that a lease taken by the test for "another host" outlives the test unrenewed.
LONG = 600.0
T = TypeVar("T")


def canary_server(make_postgres: PostgresFactory) -> PostgresCluster:
    """A server of the test's own whose app role's password is the canary."""
    server = make_postgres()
    server.sql(f"ALTER ROLE {APP_USER} PASSWORD '{CANARY}'", "postgres")
    return server


def leases(server: PostgresCluster, owner: str, ttl: float = 15.0) -> ClusterLeases:
    """The leases as the process `owner` (`pid@host`) on instance `owner`'s host sees them."""
    return ClusterLeases(server.dsn(password=CANARY), owner.partition("@")[2], ttl, owner, 3.0)


def as_other(server: PostgresCluster, work: Callable[[ClusterLeases], Awaitable[T]]) -> T:
    """Run `work` with the leases of a process on another host (its own connection)."""

    async def run() -> T:
        other = leases(server, OTHER_HOST, ttl=LONG)
        try:
            return await work(other)
        finally:
            await other.aclose()

    return asyncio.run(run())


async def test_a_held_lease_refuses_another_host_until_released(
    make_postgres: PostgresFactory,
) -> None:
    """A gate on one host holds web's lease: a process on another host gets LeaseHeld naming
    the gate (and still may take another service); the gate's release frees it at once, and
    the lease is the other host's from then on."""
    server = canary_server(make_postgres)
    gate, other = leases(server, "101@ci-runner-1"), leases(server, OTHER_HOST)
    async with gate.hold("web", "gate", "g1") as took:
        assert took
        with pytest.raises(LeaseHeld) as held:
            await other.acquire("web", "daemon", "r1")
        assert held.value.holder.describe() == "a deploy gate (pid 101 on ci-runner-1)"
        assert held.value.holder.run == "g1"
        assert (await other.other_holder("web")) is not None
        assert await other.acquire("api", "daemon", "r2") is True
        # Re-entering in the gate's process keeps its hold.
        async with gate.hold("web", "gate", "rollback-1") as inner:
            assert inner is False
        assert (await other.holder("web")) is not None
    assert await other.acquire("web", "daemon", "r3") is True
    taken = await gate.holder("web")
    assert taken is not None and taken.describe() == "the opsmon daemon (pid 4242 on ci-runner-2)"
    await asyncio.gather(gate.aclose(), other.aclose())


async def test_an_owner_that_stops_renewing_loses_the_lease_by_expiry(
    make_postgres: PostgresFactory,
) -> None:
    """An owner on another host that dies (no renewal) keeps the lease until its TTL passes by
    the database's clock; then another host takes it, and the dead owner's renewal fails."""
    server = canary_server(make_postgres)
    dead, other = leases(server, "77@web-1", ttl=1.0), leases(server, OTHER_HOST)
    assert await dead.acquire("web", "daemon", "r-dead") is True
    with pytest.raises(LeaseHeld):
        await other.acquire("web", "gate", "g2")

    async def taken() -> bool:
        try:
            return await other.acquire("web", "gate", "g2")
        except LeaseHeld:
            return False

    assert await async_wait_until(taken, timeout=10, interval=0.1)
    assert await dead.renew("web") is False
    holder = await dead.holder("web")
    assert holder is not None and holder.describe() == OTHER
    await asyncio.gather(dead.aclose(), other.aclose())


async def test_concurrent_takers_exactly_one_wins(make_postgres: PostgresFactory) -> None:
    """Eight processes on eight hosts take the same free lease at once, for several services:
    each time exactly one wins and every other is told that one holds it."""
    server = canary_server(make_postgres)
    takers = [leases(server, f"{n}@host-{n}") for n in range(8)]
    await asyncio.gather(*(t.holder("warmup") for t in takers))  # connected and migrated

    async def take(taker: ClusterLeases, service: str) -> str:
        try:
            await taker.acquire(service, "gate", f"run-{taker.owner}")
        except LeaseHeld as exc:
            return "held by " + exc.holder.owner
        return "won"

    for service in ("web", "api", "worker", "cron", "db-proxy"):
        results = await asyncio.gather(*(take(t, service) for t in takers))
        winners = [t.owner for t, r in zip(takers, results, strict=True) if r == "won"]
        assert len(winners) == 1, results
        assert all(r == f"held by {winners[0]}" for r in results if r != "won"), results
    await asyncio.gather(*(t.aclose() for t in takers))


async def test_gate_runs_are_shared_and_migration_runs_once(make_postgres: PostgresFactory) -> None:
    """A gate's verdict and report recorded on one host are read by a gate on another; the
    schema is at the last migration (the lease tables are one of them)."""
    server = canary_server(make_postgres)
    one, two = leases(server, "1@a"), leases(server, "2@b")
    await one.gate_started("g1", "web")
    assert await two.gate_report("g1") is None
    await one.gate_finished("g1", "promoted", {"verdict": "promoted", "summary": "ok"})
    assert await two.gate_report("g1") == {"verdict": "promoted", "summary": "ok"}
    versions = server.sql("SELECT max(version) FROM opsmon_cluster_schema")
    assert versions == [(len(MIGRATIONS),)]
    await asyncio.gather(one.aclose(), two.aclose())


async def test_a_store_away_fails_closed_without_the_password(
    make_postgres: PostgresFactory,
) -> None:
    """With the store stopped, taking or reading a lease raises LeaseUnavailable naming
    host:port, never the password, and the status says the owner is unknown; once the store
    is back, the lease works again."""
    server = canary_server(make_postgres)
    mine = leases(server, OTHER_HOST)
    assert await mine.holder("web") is None
    server.stop()
    for attempt in (mine.acquire("web", "gate", "g1"), mine.holder("web")):
        with pytest.raises(LeaseUnavailable) as away:
            await attempt
        assert f"127.0.0.1:{server.port}" in str(away.value)
        assert CANARY not in str(away.value)
    assert mine.where == f"the cluster store 127.0.0.1:{server.port}"
    [unknown] = (await owners(mine, ["web"])).values()
    assert unknown is not None and unknown.startswith(
        f"unknown (cluster store 127.0.0.1:{server.port}"
    )
    server.start()
    assert await mine.acquire("web", "gate", "g1") is True
    await mine.aclose()


# --- the commands, as processes ----------------------------------------------------------------
def _config(tmp_path: Path, rollback: bool = True) -> Path:
    """A config with service web (an HTTP check of a closed port), `cluster:` from the
    environment, and (optionally) rollback of web."""
    config: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "checks": [
            {
                "name": "web-health",
                "type": "http",
                "service": SERVICE,
                "url": f"http://127.0.0.1:{free_port()}/health",
                "timeout": "500ms",
            }
        ],
        "cluster": {"store": "${OPSMON_CLUSTER_DSN}", "instance": "ci-runner-1"},
    }
    if rollback:
        config["rollback"] = {
            "mode": "enforce",
            "services": {SERVICE: {"strategy": "recreate", "project": SERVICE}},
        }
    path = tmp_path / "opsmon.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _env(server: PostgresCluster) -> dict[str, str]:
    return {"OPSMON_CLUSTER_DSN": server.dsn(password=CANARY)}


async def test_a_gate_on_another_host_waits_for_the_lease_holder_and_reports_its_verdict(
    make_postgres: PostgresFactory, tmp_path: Path
) -> None:
    """`opsmon gate` finds the service's lease held in the cluster store by a gate on another
    host: it says so, waits, and once that gate records its verdict and releases, exits with
    that verdict as its own."""
    server = canary_server(make_postgres)
    config = _config(tmp_path, rollback=False)
    other = leases(server, OTHER_HOST)
    async with other.hold(SERVICE, "gate", "g-other"):
        await other.gate_started("g-other", SERVICE)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "gate", SERVICE, "--config", str(config),
            "--json", "--timeout", "60s", "--healthy-for", "1s",
            env={**os.environ, **_env(server)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stderr is not None
        said = f"{OTHER} owns the rollback of {SERVICE}; waiting for its outcome"
        lines: list[str] = []
        while not any(said in line for line in lines):
            line = await asyncio.wait_for(process.stderr.readline(), timeout=30)
            assert line, "the gate ended before waiting:\n" + "".join(lines)
            lines.append(line.decode())
        report = {"verdict": "rolled_back", "summary": "failed; rolled back to web:v1"}
        await other.gate_finished("g-other", "rolled_back", report)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 1, stdout.decode() + stderr.decode()
    [service] = json.loads(stdout)["services"]
    assert service["verdict"] == "rolled_back" and service["followed"] == OTHER
    assert service["summary"] == "failed; rolled back to web:v1"
    assert CANARY not in stdout.decode() + stderr.decode() + "".join(lines)
    await other.aclose()


def test_manual_rollback_respects_a_lease_held_on_another_host(
    make_postgres: PostgresFactory, tmp_path: Path
) -> None:
    """`opsmon rollback SERVICE` while a gate on another host holds its lease in the cluster
    store: exit 1 naming that gate, nothing done; `rollback status` shows the owner."""
    server = canary_server(make_postgres)
    config = _config(tmp_path)
    as_other(server, lambda other: other.acquire(SERVICE, "gate", "g-other"))
    done = run_opsmon("rollback", SERVICE, "--force", "--config", str(config), env=_env(server))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"no rollback: {OTHER} owns the rollback of {SERVICE} until it finishes" in done.stdout
    status = run_opsmon("rollback", "status", "--json", "--config", str(config), env=_env(server))
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["services"][0]["owned_by"] == OTHER


def test_commands_fail_closed_when_the_store_is_away(
    make_postgres: PostgresFactory, tmp_path: Path
) -> None:
    """With the cluster store stopped, `opsmon rollback` rolls nothing back (exit 1) and
    `opsmon gate` says it does not hold the lease and judges without it (here: no container,
    so no verdict, exit 3); both name host:port, never the password."""
    server = canary_server(make_postgres)
    config = _config(tmp_path)
    server.stop()
    where = f"cluster store 127.0.0.1:{server.port}"
    done = run_opsmon("rollback", SERVICE, "--force", "--config", str(config), env=_env(server))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"no rollback: nobody can tell who owns the rollback of {SERVICE}" in done.stdout
    assert where in done.stdout and "a rollback needs its lease" in done.stdout
    assert CANARY not in done.stdout + done.stderr

    gate = run_opsmon(
        "gate", SERVICE, "--config", str(config), "--timeout", "3s", "--healthy-for", "1s",
        env=_env(server),
    )  # fmt: skip
    assert gate.returncode == 3, gate.stdout + gate.stderr
    assert where in gate.stdout
    assert f"this gate does not hold the rollback lease of {SERVICE}" in gate.stdout
    assert CANARY not in gate.stdout + gate.stderr


# --- the daemon's leader -----------------------------------------------------------------------
def _decisions(server: PostgresCluster, service: str) -> int:
    rows = server.sql(
        "SELECT count(*) FROM opsmon_cluster_actions "
        f"WHERE action = 'rollback decision for {service}'"
    )
    return int(rows[0][0])


@pytest.mark.docker
@pytest.mark.slow
def test_the_leader_does_not_roll_back_a_service_a_gate_holds_in_the_store(
    deployment: Deployment, opsmon: Opsmon, make_postgres: PostgresFactory
) -> None:
    """A single-instance cluster leads and would roll a bad deploy back, but a gate on another
    host holds the service's lease in the cluster store: the leader decides (fenced), twice,
    and changes nothing; once the gate releases the lease, it rolls back."""
    server = canary_server(make_postgres)
    service = deployment.service
    opsmon.environment = _env(server)
    cluster = {"store": "${OPSMON_CLUSTER_DSN}", "instance": "opsmon-1", "lease": "3s"}
    opsmon.configure(extra={"cluster": cluster})
    deployment.deploy("v1")
    opsmon.start()
    opsmon.wait_lkg("v1")
    as_other(server, lambda other: other.acquire(service, "gate", "g-other"))
    bad = deployment.deploy("v2")

    # Two fenced decisions: the first was handled to its end (the leader skipped it).
    wait_until(
        lambda: _decisions(server, service) >= 2 or opsmon.alerts("RollbackPerformed"), timeout=40
    )
    assert not opsmon.alerts("RollbackPerformed"), "rolled back under another host's lease"
    assert deployment.inspect()["Id"] == bad
    assert opsmon.service()["owned_by"] == OTHER

    as_other(server, lambda other: other.release(service))
    opsmon.wait_alert("RollbackPerformed", timeout=40)
    assert deployment.inspect()["Image"] == deployment.images.ids["v1"]
    assert CANARY not in opsmon.text()


# --- a real gate, a real deploy ----------------------------------------------------------------
@pytest.mark.docker
@pytest.mark.slow
def test_a_gate_rolls_back_through_the_store_and_refuses_while_it_is_away(
    compose_project: ComposeProject, tmp_path: Path, make_postgres: PostgresFactory
) -> None:
    """In a cluster, a gate promotes a good deploy; with the store stopped a failing deploy is
    judged but not rolled back (exit 2, the reason names host:port, never the password); with
    the store back, the next gate takes the lease and rolls back (exit 1), then frees it."""
    server = canary_server(make_postgres)
    config = gate_config(compose_project, tmp_path / "state")
    config["cluster"] = {"store": "${OPSMON_CLUSTER_DSN}", "instance": "ci-runner-1"}
    path = write_config(tmp_path / "opsmon.yml", config)
    fast = ("--healthy-for", "2s", "--timeout", "60s", "--json")
    compose_project.up("good1")
    first = run_gate(path, "web", *fast, env=_env(server))
    assert first.code == 0, first.stdout + first.stderr

    compose_project.up("badhealth")
    server.stop()
    refused = run_gate(path, "web", *fast, env=_env(server))
    assert refused.code == 2, refused.stdout + refused.stderr
    [service] = json.loads(refused.stdout)["services"]
    assert service["verdict"] == "rollback_refused"
    assert f"cluster store 127.0.0.1:{server.port}" in service["rollback_reason"]
    assert "this gate does not hold the rollback lease of web" in refused.stderr
    assert CANARY not in refused.stdout + refused.stderr
    assert compose_project.running()["Image"] == compose_project.images.ids["badhealth"]

    server.start()
    rolled = run_gate(path, "web", *fast, env=_env(server))
    assert rolled.code == 1, rolled.stdout + rolled.stderr
    assert compose_project.running()["Image"] == compose_project.images.ids["good1"]
    assert server.sql("SELECT count(*) FROM opsmon_cluster_service_leases") == [(0,)]
    verdicts = server.sql("SELECT verdict FROM opsmon_cluster_gate_runs ORDER BY started_at")
    assert verdicts == [("promoted",), ("rolled_back",)]

"""`opsmon cluster status` against a real cluster store: leader, epoch, members, exit codes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from monitor.cluster.store import ClusterStore
from tests.support.cli import run_opsmon
from tests.support.postgres import APP_PASSWORD, PostgresFactory


def write_config(tmp_path: Path, dsn: str) -> Path:
    path = tmp_path / "opsmon.yml"
    path.write_text(f'cluster:\n  store: "{dsn}"\n  instance: cli\n  lease: 30s\n')
    return path


async def join(dsn: str, *names: str) -> None:
    for name in names:
        member = ClusterStore(dsn, name, timeout=5)
        await member.renew(30, "9.9.9")
        await member.close()


def test_status_shows_the_leader_and_every_member(
    tmp_path: Path, make_postgres: PostgresFactory
) -> None:
    """Two members joined: the first holds the lease; the text and the JSON say so; exit 0."""
    server = make_postgres()
    asyncio.run(join(server.dsn(), "opsmon-1", "opsmon-2"))
    config = write_config(tmp_path, server.dsn())

    done = run_opsmon("cluster", "status", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("leader: opsmon-1 (epoch 1, lease expires in")
    assert "  opsmon-2: live, last seen" in done.stdout and "opsmon 9.9.9" in done.stdout

    document = json.loads(run_opsmon("cluster", "status", "--json", "--config", str(config)).stdout)
    assert document["leader"] == "opsmon-1" and document["epoch"] == 1
    assert [m["instance"] for m in document["members"]] == ["opsmon-1", "opsmon-2"]
    assert all(m["live"] for m in document["members"])


def test_status_without_a_leader_exits_1(tmp_path: Path, make_postgres: PostgresFactory) -> None:
    """A store nobody has joined: `leader: none`, exit 1."""
    server = make_postgres()
    asyncio.run(join(server.dsn()))
    done = run_opsmon("cluster", "status", "--config", str(write_config(tmp_path, server.dsn())))
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("leader: none")


def test_status_of_an_unreachable_store_names_it_without_the_password(
    tmp_path: Path, make_postgres: PostgresFactory
) -> None:
    """The store is down: exit 2 with host:port and the reason, never the password."""
    server = make_postgres()
    config = write_config(tmp_path, server.dsn())
    server.stop()
    done = run_opsmon("cluster", "status", "--config", str(config))
    assert done.returncode == 2
    assert f"cannot read the cluster: cluster store 127.0.0.1:{server.port}" in done.stderr
    assert APP_PASSWORD not in done.stderr + done.stdout


def test_status_without_a_cluster_section_says_it_runs_alone(tmp_path: Path) -> None:
    """A config without `cluster:`: exit 0, saying this opsmon runs alone and which file."""
    config = tmp_path / "opsmon.yml"
    config.write_text("checks: []\n")
    done = run_opsmon("cluster", "status", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout
        == f"not clustered: this opsmon runs alone (no `cluster:` section in {config})\n"
    )


def test_status_with_sharding_counts_the_shards_of_each_member(
    tmp_path: Path, make_postgres: PostgresFactory
) -> None:
    """With `sharding: true`: each member's count of owned checks in the text, and every
    shard row (check, owner, generation) in the JSON."""
    server = make_postgres()

    async def share() -> None:
        one, two = (
            ClusterStore(server.dsn(), "opsmon-1", 5),
            ClusterStore(server.dsn(), "opsmon-2", 5),
        )
        for member in (one, two):
            await member.renew(30, "9.9.9")
        await one.add_shards(["web", "db", "cache"])
        await one.claim_shards(["web", "db", "cache"], 2, 30)
        await two.claim_shards(["web", "db", "cache"], 2, 30)
        await asyncio.gather(one.close(), two.close())

    asyncio.run(share())
    config = tmp_path / "opsmon.yml"
    config.write_text(
        f'cluster:\n  store: "{server.dsn()}"\n  instance: cli\n  lease: 30s\n  sharding: true\n'
    )
    done = run_opsmon("cluster", "status", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "  opsmon-1: live" in done.stdout and "opsmon 9.9.9, 2 shards" in done.stdout
    assert "opsmon 9.9.9, 1 shard\n" in done.stdout
    assert "shards: 3 checks, 0 without a live owner" in done.stdout

    document = json.loads(run_opsmon("cluster", "status", "--json", "--config", str(config)).stdout)
    assert document["sharding"] is True
    assert {m["instance"]: m["shards"] for m in document["members"]} == {
        "opsmon-1": 2,
        "opsmon-2": 1,
    }
    rows = {r["check"]: r for r in document["shards"]}
    assert sorted(rows) == ["cache", "db", "web"]
    assert all(
        r["owner"] in ("opsmon-1", "opsmon-2") and r["generation"] > 0 for r in rows.values()
    )

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

"""`opsmon rollback SERVICE [--to IMAGE] [--dry-run] [--force]`, `rollback status` and
`rollback unfreeze`: the same guards and code path as the daemon, run by a person."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cluster.rollback_share import GuardState, SharedFreeze, SharedLift
from monitor.cluster.store import ClusterStore
from monitor.rollback.journal import Journal, Status, Step
from monitor.rollback.store import open_store
from tests.support.cli import run_opsmon
from tests.support.postgres import APP_PASSWORD, PostgresFactory
from tests.support.rollback import Deployment, answers, wait_answers
from tests.support.rollback_daemon import Opsmon
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.slow]
CANARY = "canary-cli-secret-value"


def rollback(opsmon: Opsmon, *args: str) -> tuple[int, str, str]:
    """`opsmon rollback ARGS --config <the daemon's config>`."""
    done = run_opsmon("rollback", *args, "--config", str(opsmon.config_path), timeout=120)
    return done.returncode, done.stdout, done.stderr


def test_manual_rollback_dry_run_window_force_and_status(
    deployment: Deployment, opsmon: Opsmon
) -> None:
    """With the daemon in dry_run: `--dry-run` prints the plan and diff and changes nothing;
    outside the window the rollback is refused until `--force`, which then restores v1 and
    verifies it; `status` shows it; a second rollback has nothing left to do."""
    opsmon.configure(mode="dry_run", window="10s")
    deployment.env = {"API_TOKEN": CANARY}
    deployment.deploy("v1")
    opsmon.start()
    opsmon.wait_lkg("v1")
    bad_id = deployment.deploy("v2")
    opsmon.wait_alert("RollbackSkipped")

    code, out, err = rollback(opsmon, "web", "--dry-run")
    assert code == 0, out + err
    assert out.startswith("dry run: an operator asked for it: roll web back from")
    assert out.count("dry run: ") == 1 and out.count("Plan:") == 1, out
    assert f"stop {deployment.name}" in out and "Changes (running -> restored):" in out
    assert "env changed" not in out and CANARY not in out
    assert deployment.inspect()["Id"] == bad_id

    since = datetime.fromisoformat(opsmon.service()["current"]["since"])
    wait_until(lambda: datetime.now(UTC) - since > timedelta(seconds=10.5), timeout=20)
    code, out, err = rollback(opsmon, "web")
    assert code == 1
    assert "outside the rollback window of 10s (--force overrides)" in out
    assert deployment.inspect()["Id"] == bad_id

    code, out, err = rollback(opsmon, "web", "--force")
    assert code == 0, out + err
    assert "rolled back from" in out and "its checks are healthy" in out
    assert deployment.inspect()["Image"] == deployment.images.ids["v1"]
    assert answers(deployment.health_url) == 200
    assert CANARY not in out + err

    code, out, err = rollback(opsmon, "status", "--json")
    assert code == 0, err
    assert out.startswith("{"), out + err
    status = json.loads(out)
    [row] = status["services"]
    assert row["bad_images"][0]["image"] == deployment.images.ref("v2")
    latest = status["rollbacks"][0]
    assert latest["trigger"] == "manual" and latest["status"] == "succeeded"
    code, text, _ = rollback(opsmon, "status")
    assert "last known good:  " + deployment.images.ref("v1") in text

    code, out, _ = rollback(opsmon, "web", "--force")
    assert code == 1 and "already runs the last known good image" in out
    # The running daemon sees the manual rollback's container as the service's current one.
    wait_until(lambda: opsmon.service()["current"]["origin"] == "rollback", timeout=10)


def test_unknown_service_and_usage_errors() -> None:
    """Typos get a clear message and exit code 2."""
    done = run_opsmon("rollback", "status", "extra")
    assert done.returncode == 2 and "usage: opsmon rollback SERVICE" in done.stderr


def test_unfreeze_and_cli_respects_the_freeze(deployment: Deployment, opsmon: Opsmon) -> None:
    """`--to` an image the engine does not have is refused; a frozen service is not rolled
    back by hand either (the reason says how to unfreeze); `unfreeze` turns automation back
    on, a second `unfreeze` says it was not frozen; then the rollback goes through."""
    opsmon.configure(mode="dry_run")
    deployment.deploy("v1")
    opsmon.start()
    opsmon.wait_lkg("v1")
    opsmon.stop()
    deployment.deploy("v2")
    wait_answers(deployment.health_url, 404)
    store = open_store(opsmon.state_dir)
    store.freeze("web", "rollback abc failed", store.lkg("web").promoted_at)  # type: ignore[union-attr]
    store.close()

    code, out, _ = rollback(opsmon, "web", "--force", "--to", "local/opsmon-rb-none:gone")
    assert code == 1
    assert "the engine has no image local/opsmon-rb-none:gone (opsmon never pulls)" in out
    code, out, _ = rollback(opsmon, "web", "--force")
    assert code == 1
    assert "automation is frozen for web (rollback abc failed)" in out
    assert "opsmon rollback unfreeze web" in out
    code, out, _ = rollback(opsmon, "unfreeze", "web")
    assert code == 0 and "automation re-enabled for web" in out
    code, _, err = rollback(opsmon, "unfreeze", "web")
    assert code == 1 and "web was not frozen" in err

    code, out, err = rollback(opsmon, "web", "--force")
    assert code == 0, out + err
    store = open_store(opsmon.state_dir)
    [done] = [r for r in Journal(store).recent("web") if r.status is Status.SUCCEEDED]
    assert [s for s, _ in Journal(store).steps(done.id)][-1] is Step.VERIFIED
    store.close()


def _cluster_config(tmp_path: Path, dsn: str, instance: str) -> Path:
    """A host's config: one check of `web`, rollback of `web`, the cluster store."""
    path = tmp_path / f"{instance}.yml"
    path.write_text(
        f"state_dir: {tmp_path / instance}\n"
        "checks:\n"
        '  - {name: web-health, type: http, service: web, url: "http://127.0.0.1:9/health"}\n'
        "rollback:\n"
        "  mode: enforce\n"
        "  services: {web: {strategy: recreate, project: shop}}\n"
        f'cluster: {{store: "{dsn}", instance: {instance}}}\n'
    )
    return path


async def _leader_froze_web(dsn: str) -> None:
    store = ClusterStore(dsn, "a", timeout=5)
    frozen_at = datetime.now(UTC) - timedelta(minutes=1)
    await store.share_guards(
        GuardState(freezes=(SharedFreeze("web", frozen_at, "rollback r1 failed", "a"),))
    )
    await store.close()


async def _lifts(dsn: str) -> list[SharedLift]:
    store = ClusterStore(dsn, "reader", timeout=5)
    shared = await store.shared_guards(datetime.now(UTC) - timedelta(hours=1))
    await store.close()
    return list(shared.lifts)


def test_unfreeze_on_a_host_without_a_daemon_lifts_the_leaders_freeze(
    tmp_path: Path, make_postgres: PostgresFactory
) -> None:
    """With `cluster:`, a command takes the cluster's guard state before it acts and shares
    what it changed at once: on a host where no daemon runs, `rollback unfreeze web` sees the
    freeze the leader made on another host, lifts it, and the lift is in the store for the
    leader to take (before, it said `web was not frozen`)."""
    server = make_postgres()
    asyncio.run(_leader_froze_web(server.dsn()))
    config = _cluster_config(tmp_path, server.dsn(), "b")

    done = run_opsmon("rollback", "unfreeze", "web", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "automation re-enabled for web" in done.stdout
    assert [(lift.service, lift.instance) for lift in asyncio.run(_lifts(server.dsn()))] == [
        ("web", "b")
    ]
    status = run_opsmon("rollback", "status", "--json", "--config", str(config))
    assert json.loads(status.stdout)["services"][0]["frozen"] is None


def test_a_command_goes_on_when_the_cluster_store_does_not_answer(
    tmp_path: Path, make_postgres: PostgresFactory
) -> None:
    """The cluster store is down: `rollback status` still answers from this host's state, says
    once that the guard state was not shared, and never prints the store's password."""
    server = make_postgres()
    config = _cluster_config(tmp_path, server.dsn(), "b")
    server.stop()

    done = run_opsmon("rollback", "status", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.count("cluster_rollback_state_not_shared") == 1, done.stderr
    assert APP_PASSWORD not in done.stdout + done.stderr

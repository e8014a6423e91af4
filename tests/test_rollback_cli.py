"""`opsmon rollback SERVICE [--to IMAGE] [--dry-run] [--force]`, `rollback status` and
`rollback unfreeze`: the same guards and code path as the daemon, run by a person."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from monitor.rollback.journal import Journal, Status, Step
from monitor.rollback.store import open_store
from tests.support.cli import run_opsmon
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
    opsmon.configure(mode="dry_run", window="3s")
    deployment.env = {"API_TOKEN": CANARY}
    deployment.deploy("v1")
    opsmon.start()
    opsmon.wait_lkg("v1")
    bad_id = deployment.deploy("v2")
    opsmon.wait_alert("RollbackSkipped")

    code, out, err = rollback(opsmon, "web", "--dry-run")
    assert code == 0, err + out
    assert out.startswith("dry run: an operator asked for it: roll web back from")
    assert f"stop {deployment.name}" in out and "Changes (running -> restored):" in out
    assert "env changed" not in out and CANARY not in out
    assert deployment.inspect()["Id"] == bad_id

    since = datetime.fromisoformat(opsmon.service()["current"]["since"])
    wait_until(lambda: datetime.now(UTC) - since > timedelta(seconds=3.5), timeout=10)
    code, out, err = rollback(opsmon, "web")
    assert code == 1
    assert "outside the rollback window of 3s (--force overrides)" in out
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

"""The rollback component in a real `opsmon run`, against real containers: deploy tracking,
LKG promotion, automatic rollback in enforce mode, dry runs, and the guards."""

from __future__ import annotations

import os
import re
import stat
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml

from monitor.store import DB_FILE
from tests.support.cli import run_opsmon
from tests.support.docker_proxy import DockerProxy
from tests.support.postgres import PostgresFactory
from tests.support.rollback import Deployment, answers, wait_answers
from tests.support.rollback_daemon import Opsmon, service_checks
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.slow]
CANARY = "canary-" + uuid.uuid4().hex


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus text, or None."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def failures(opsmon: Opsmon) -> float:
    """How many failed runs the HTTP check of the service has had."""
    text = opsmon.metrics()
    return metric(text, "opsmon_check_runs_total", check="web-health", result="failure") or 0


def deploy_stable_v1(deployment: Deployment, opsmon: Opsmon) -> str:
    """v1 deployed and promoted to LKG; returns its container id."""
    deployment.env = {"API_TOKEN": CANARY}
    container = deployment.deploy("v1")
    opsmon.start()
    opsmon.wait_lkg("v1")
    return container


def test_stable_image_becomes_last_known_good(deployment: Deployment, opsmon: Opsmon) -> None:
    """v1 running healthy for stable_after becomes the LKG: status and metric show its short
    id; the state file holding its snapshot is 0600 and nothing of the env is printed."""
    opsmon.configure()
    deploy_stable_v1(deployment, opsmon)

    row = opsmon.service()
    short = deployment.images.ids["v1"].removeprefix("sha256:")[:12]
    assert row["last_known_good"]["image_id"] == short
    assert row["current"]["image"] == deployment.images.ref("v1")
    assert metric(opsmon.metrics(), "opsmon_service_lkg_info", service="web", image=short) == 1
    assert stat.S_IMODE(os.stat(opsmon.state_dir / DB_FILE).st_mode) == 0o600
    assert CANARY not in opsmon.text() and CANARY not in str(opsmon.status())


def test_rollback_section_removed_and_added_by_reload(
    deployment: Deployment, opsmon: Opsmon
) -> None:
    """SIGHUP without the `rollback:` section turns rollback off (/api/rollback says so, the
    LKG series goes); with the section again it comes back whole, with the LKG it stored."""
    opsmon.configure()
    deploy_stable_v1(deployment, opsmon)
    short = deployment.images.ids["v1"].removeprefix("sha256:")[:12]
    config = yaml.safe_load(opsmon.config_path.read_text())
    section = config.pop("rollback")
    opsmon.config_path.write_text(yaml.safe_dump(config))
    opsmon.reload()
    wait_until(lambda: opsmon.status() == {"enabled": False}, timeout=10)
    assert metric(opsmon.metrics(), "opsmon_service_lkg_info", service="web") is None

    config["rollback"] = section
    opsmon.config_path.write_text(yaml.safe_dump(config))
    opsmon.reload()
    wait_until(lambda: opsmon.status().get("enabled") is True, timeout=10)
    assert opsmon.service()["last_known_good"]["image_id"] == short
    assert metric(opsmon.metrics(), "opsmon_service_lkg_info", service="web", image=short) == 1


def test_enforce_rolls_a_bad_deploy_back(deployment: Deployment, opsmon: Opsmon) -> None:
    """Deploying v2 (no health endpoint) in enforce mode: opsmon restores v1 with the same
    name, env, labels and volumes, the checks recover, and RollbackPerformed names both
    images; the failed container is kept, stopped."""
    opsmon.configure()
    deploy_stable_v1(deployment, opsmon)
    v1 = deployment.inspect()
    bad_id = deployment.deploy("v2")

    alert = opsmon.wait_alert("RollbackPerformed", timeout=40)
    restored = deployment.inspect()
    assert restored["Image"] == deployment.images.ids["v1"]
    assert restored["Name"] == v1["Name"]
    assert sorted(restored["Config"]["Env"]) == sorted(v1["Config"]["Env"])
    assert restored["Config"]["Labels"] == v1["Config"]["Labels"]
    volumes = {m["Destination"]: m.get("Name") for m in restored["Mounts"]}
    assert volumes["/data"] == deployment.volume
    assert volumes["/cache"] == {m["Destination"]: m.get("Name") for m in v1["Mounts"]}["/cache"]
    wait_answers(deployment.health_url, 200)
    failed_name = f"{deployment.name}_failed_{bad_id[:12]}"
    # Kept, stopped, as a copy without the service's Compose labels (Compose counts by label).
    failed = deployment.inspect(failed_name)
    assert failed["Config"]["Labels"]["opsmon.failed-from"] == bad_id
    assert failed["Image"] == deployment.images.ids["v2"]
    assert not failed["State"]["Running"]
    assert [c["Id"] for c in deployment.containers()] == [restored["Id"]]

    description = alert["annotations"]["description"]
    assert deployment.images.ref("v2") in description and deployment.images.ref("v1") in description
    assert "web-health" in description  # the evidence
    assert f"kept (stopped) as {failed_name}, without the service's Compose labels" in (description)
    assert alert["labels"]["severity"] == "info" and alert["labels"]["service"] == "web"
    assert alert["annotations"]["runbook_url"].endswith("/runbooks/rollback-performed")
    wait_until(lambda: opsmon.service()["current"]["origin"] == "rollback", timeout=10)
    [done] = opsmon.rollbacks()
    assert done["status"] == "succeeded" and done["trigger"] == "auto"
    text = opsmon.metrics()
    assert metric(text, "opsmon_rollbacks_total", service="web", result="succeeded") == 1
    assert metric(text, "opsmon_rollback_duration_seconds_count") == 1
    assert CANARY not in opsmon.text() and CANARY not in str(opsmon.hooks.requests)


def test_a_check_failing_inside_its_threshold_is_paged_with_the_rollback(
    deployment: Deployment, opsmon: Opsmon
) -> None:
    """A check of the service that fails about the bad deploy, but is still inside its failure
    threshold when the rollback is decided, is paged then: the swap would end the outage
    before its threshold ran out, and nobody would hear what that check saw."""
    checks = service_checks(deployment)
    patient = {**checks[0], "name": "web-patient", "failure_threshold": 1000}
    opsmon.configure(checks=[*checks, patient])
    deploy_stable_v1(deployment, opsmon)
    deployment.deploy("v2")

    opsmon.wait_alert("RollbackPerformed", timeout=40)

    def patient_paged() -> list[dict[str, Any]]:
        return [
            alert
            for request in opsmon.hooks.accepted()
            for alert in request.json.get("alerts", [])
            if alert["labels"].get("check") == "web-patient" and alert["status"] == "firing"
        ]

    paged = wait_until(patient_paged, timeout=10)
    assert "404" in paged[0]["annotations"]["description"]


def test_a_proxy_that_refuses_removal_leaves_the_failed_container_labelled(
    deployment: Deployment, opsmon: Opsmon
) -> None:
    """Behind a socket proxy that refuses DELETE the rollback still succeeds; the failed
    container stays as it was (renamed, stopped, Compose labels kept) and RollbackPerformed
    says so and how to remove it."""
    proxy = DockerProxy(allow_remove=False).start()
    try:
        opsmon.configure(docker_host=proxy.host)
        deploy_stable_v1(deployment, opsmon)
        bad_id = deployment.deploy("v2")

        alert = opsmon.wait_alert("RollbackPerformed", timeout=40)
    finally:
        proxy.stop()
    failed_name = f"{deployment.name}_failed_{bad_id[:12]}"
    assert deployment.inspect(failed_name)["Id"] == bad_id
    assert len(deployment.containers()) == 2
    description = alert["annotations"]["description"]
    assert f"kept (stopped) as {failed_name}, still with the service's Compose labels" in (
        description
    )
    assert f"docker rm {failed_name}" in description
    assert [r["status"] for r in opsmon.rollbacks()] == ["succeeded"]
    assert "remove a container (probe)" in description and "refused" in description
    assert (
        deployment.client.api.containers(
            all=True, filters={"label": f"opsmon.failed-project={deployment.project}"}
        )
        == []
    )  # no copy was made that could not replace it


def test_dry_run_changes_nothing_and_describes_the_plan(
    deployment: Deployment, opsmon: Opsmon
) -> None:
    """In dry_run mode the bad container stays; RollbackSkipped says what would be done and
    which settings differ (variable names, never values)."""
    opsmon.configure(mode="dry_run")
    deploy_stable_v1(deployment, opsmon)
    deployment.env = {"API_TOKEN": CANARY + "-v2", "FEATURE_FLAG": "on"}
    bad_id = deployment.deploy("v2")

    alert = opsmon.wait_alert("RollbackSkipped")
    description = alert["annotations"]["description"]
    assert description.startswith("dry run: web is unhealthy since its deploy")
    assert f"stop {deployment.name}" in description
    assert f"rename it to {deployment.name}_failed_{bad_id[:12]}" in description
    assert f"with image {deployment.images.ref('v1')}" in description
    assert "env changed: API_TOKEN" in description and "env added: FEATURE_FLAG" not in description
    assert "env removed: FEATURE_FLAG" in description  # v1 did not have it
    assert CANARY not in description
    assert deployment.inspect()["Id"] == bad_id
    assert answers(deployment.health_url) == 404
    assert metric(opsmon.metrics(), "opsmon_rollbacks_total", service="web", result="dry_run") == 1
    assert [r["status"] for r in opsmon.rollbacks()] == ["dry_run"]


def test_missing_environment_variable_is_not_rolled_back(
    deployment: Deployment, opsmon: Opsmon
) -> None:
    """v2 deployed without a variable the last known good needs too: a rollback cannot help,
    so the container stays, EnvironmentVariablesMissing names API_TOKEN, and no
    RollbackSkipped noise goes out (no rollback would have been attempted)."""
    opsmon.configure(checks=service_checks(deployment, required_env=["API_TOKEN"]))
    deploy_stable_v1(deployment, opsmon)
    deployment.env = {}
    bad_id = deployment.deploy("v2")

    alert = opsmon.wait_alert("EnvironmentVariablesMissing")
    assert "API_TOKEN" in alert["annotations"]["summary"]
    # Looked at again while it keeps failing: still nothing done, nothing said about it.
    runs = failures(opsmon)
    wait_until(lambda: failures(opsmon) >= runs + 12, timeout=20)
    assert deployment.inspect()["Id"] == bad_id
    assert opsmon.alerts("RollbackSkipped") == []
    assert opsmon.rollbacks() == []
    assert CANARY not in opsmon.text()


def test_lkg_unhealthy_too_fails_freezes_and_is_not_retried(
    deployment: Deployment, opsmon: Opsmon
) -> None:
    """When v1 is unhealthy as well after the rollback: RollbackFailed (critical), automation
    frozen, no second attempt; `opsmon rollback unfreeze` turns it back on."""
    opsmon.configure(verify_timeout="2s")
    deploy_stable_v1(deployment, opsmon)
    deployment.set_healthy(False)  # v1's health now depends on a file that is gone
    deployment.deploy("v2")

    alert = opsmon.wait_alert("RollbackFailed", timeout=40)
    assert alert["labels"]["severity"] == "critical"
    assert "did not turn healthy within 2s" in alert["annotations"]["description"]
    assert "frozen" in alert["annotations"]["description"]
    row = opsmon.service()
    assert row["frozen"] is not None
    restored = deployment.inspect()
    assert restored["Image"] == deployment.images.ids["v1"]
    # Several more rounds: still one rollback, the same container.
    runs = failures(opsmon)
    wait_until(lambda: failures(opsmon) >= runs + 6, timeout=20)
    assert len(opsmon.rollbacks()) == 1
    assert deployment.inspect()["Id"] == restored["Id"]

    done = run_opsmon("rollback", "unfreeze", "web", "--config", str(opsmon.config_path))
    assert done.returncode == 0, done.stderr
    assert "automation re-enabled for web" in done.stdout
    assert opsmon.service()["frozen"] is None
    opsmon.wait_alert("RollbackFailed", status="resolved")


def test_max_per_hour_and_bad_image_redeploy(deployment: Deployment, opsmon: Opsmon) -> None:
    """After one rollback, redeploying the same bad image alerts BadImageRedeployed at once,
    and the second failure is not rolled back (max_per_hour: 1)."""
    opsmon.configure()
    deploy_stable_v1(deployment, opsmon)
    deployment.deploy("v2")
    opsmon.wait_alert("RollbackPerformed", timeout=40)
    wait_answers(deployment.health_url, 200)

    again = deployment.deploy("v2")
    redeployed = opsmon.wait_alert("BadImageRedeployed")
    assert deployment.images.ref("v2") in redeployed["annotations"]["summary"]
    skipped = opsmon.wait_alert("RollbackSkipped")
    description = skipped["annotations"]["description"]
    assert re.search(r"rolled back 1 time\(s\) in the last hour \(max_per_hour: 1\)", description)
    assert deployment.inspect()["Id"] == again
    assert [r["status"] for r in opsmon.rollbacks()] == ["skipped", "succeeded"]


def test_database_down_at_the_same_time_is_not_rolled_back(
    deployment: Deployment, opsmon: Opsmon, make_postgres: PostgresFactory
) -> None:
    """The database goes down as v2 is deployed: a rollback cannot help, so v2 stays, the
    database problem pages, and no RollbackSkipped noise goes out (no rollback would have been
    attempted)."""
    database = make_postgres()
    checks = service_checks(deployment)
    checks[0]["depends_on"] = ["database"]
    checks.append({"name": "database", "type": "postgres", "service": "db", "dsn": database.dsn()})
    opsmon.configure(checks=checks)
    deploy_stable_v1(deployment, opsmon)
    database.stop()
    wait_until(lambda: _check_state(opsmon, "database") == "unhealthy", timeout=15)
    bad_id = deployment.deploy("v2")

    opsmon.wait_alert("DatabaseConnectionFailing")
    runs = failures(opsmon)
    wait_until(lambda: failures(opsmon) >= runs + 12, timeout=20)
    assert deployment.inspect()["Id"] == bad_id
    assert opsmon.alerts("RollbackSkipped") == []
    assert opsmon.rollbacks() == []
    assert database.dsn().split("@")[0].split(":")[-1] not in opsmon.text()  # the password


def _check_state(opsmon: Opsmon, name: str) -> str | None:
    status = httpx.get(f"{opsmon.url}/api/status", timeout=5).json()
    return next((c["state"] for c in status["checks"] if c["name"] == name), None)


def test_silenced_service_is_not_rolled_back(deployment: Deployment, opsmon: Opsmon) -> None:
    """A silence on the service (a planned intervention) holds automation back as well: v2
    stays, the skip names the silence, and its alert is held back by the same silence."""
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    opsmon.configure(
        extra={"silences": [{"match": {"service": "web"}, "ends": ends, "comment": "db migration"}]}
    )
    deploy_stable_v1(deployment, opsmon)
    bad_id = deployment.deploy("v2")

    def skipped() -> list[dict[str, Any]]:
        return [r for r in opsmon.rollbacks() if r["status"] == "skipped"]

    [skip] = wait_until(skipped, timeout=30)
    assert "alerts of web are silenced (db migration)" in skip["reason"]
    assert deployment.inspect()["Id"] == bad_id

    def held_back() -> bool:
        incidents = httpx.get(f"{opsmon.url}/api/alerts", timeout=5).json()["incidents"]
        return any(
            i["alertname"] == "RollbackSkipped" and i["suppressed"] == "silenced" for i in incidents
        )

    wait_until(held_back, timeout=10)

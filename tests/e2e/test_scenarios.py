"""Everyday scenarios on a real stack of the reference's shape (Express + pg + zod backend,
Next.js standalone frontend, PostgreSQL with pgvector, docker-compose.prod.yml with
CI_COMMIT_SHA tags), watched by a real `opsmon run`: the exact pages that arrive, the
rollback decision, and how long things took (recorded in the session's scenario table)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

from tests.e2e.conftest import Row
from tests.e2e.deployment import API_KEY, Deployment
from tests.e2e.watcher import Page, Watcher, describe
from tests.support.waiting import wait_until

RUNBOOK_PREFIX = "/runbooks/"


def hold(condition: Callable[[], bool], seconds: float, interval: float = 0.2) -> None:
    """Fail as soon as `condition` stops holding within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition(), "condition stopped holding"
        time.sleep(interval)


def note(row: Row, watcher: Watcher, fault_at: float | None = None) -> list[Page]:
    """Fill the scenario's row from what the watcher sent and decided; the firing pages."""
    firing = watcher.firing()
    row.pages = describe(firing + watcher.resolved())
    row.decision = "; ".join(watcher.decisions())
    if fault_at is not None and firing:
        row.fault_to_page = firing[0].at - fault_at
    return firing


def assert_runbook(page: Page, runbook_id: str, watcher: Watcher) -> None:
    """The page links its runbook on the daemon."""
    assert page.runbook_url == f"{watcher.url}{RUNBOOK_PREFIX}{runbook_id}", page.runbook_url


def assert_no_secret(watcher: Watcher) -> None:
    """The backend's API key appears in no page and no log line."""
    for request in watcher.hooks.accepted():
        assert API_KEY not in request.body.decode()
    assert not [line for line in watcher.output if API_KEY in line]


def test_steady_state(deployment: Deployment, watcher: Watcher, record: Row) -> None:
    """A healthy stack pages no one for 30 s and every check is healthy."""
    wait_until(
        lambda: set(watcher.check_states().values()) == {"healthy"}, timeout=30, interval=0.2
    )
    hold(lambda: not watcher.hooks.requests, 30)
    note(record, watcher)
    assert set(watcher.check_states().values()) == {"healthy"}
    assert watcher.decisions() == []
    assert_no_secret(watcher)


def test_database_stopped_and_started(
    deployment: Deployment, watcher: Watcher, record: Row
) -> None:
    """db down: one DatabaseConnectionFailing listing the backend checks, one resolved, no
    backend page and no rollback chatter."""
    fault_at = time.monotonic()
    deployment.compose("stop", "db")
    first = watcher.first_firing(timeout=60)
    record.fault_to_page = first.at - fault_at
    wait_until(lambda: watcher.check_states().get("backend-health") == "unhealthy", timeout=30)
    watcher.quiet()
    deployment.compose("start", "db")
    wait_until(
        lambda: set(watcher.check_states().values()) == {"healthy"}, timeout=60, interval=0.2
    )
    watcher.quiet()
    firing = note(record, watcher, fault_at)
    assert [(p.alertname, p.service) for p in firing] == [("DatabaseConnectionFailing", "db")], (
        describe(firing)
    )
    assert [p.alertname for p in watcher.resolved()] == ["DatabaseConnectionFailing"]
    latest = watcher.latest("DatabaseConnectionFailing")
    assert latest is not None
    assert {"backend-health", "backend-ready"} <= {a.split()[0] for a in latest.affected}
    assert_runbook(latest, "database-connection-failing", watcher)
    assert watcher.decisions() == []
    assert deployment.running_image("backend") == deployment.images.backend["good"]


def _rolled_back(deployment: Deployment) -> bool:
    return (
        deployment.running_image("backend") == deployment.images.backend["good"]
        and deployment.backend_healthy()
    )


def wait_rolled_back(deployment: Deployment, watcher: Watcher, deployed_at: float) -> float:
    """Seconds from the deploy until the good release serves again; fails at the first
    decision not to roll back."""

    def settled() -> bool:
        if any(d.startswith("skip") for d in watcher.decisions()):
            watcher.quiet()  # the pages of the skipped rollback, for the record
            raise AssertionError(f"rollback skipped: {watcher.decisions()}")
        return _rolled_back(deployment)

    wait_until(settled, timeout=90, interval=0.2)
    return time.monotonic() - deployed_at


def test_bad_image_is_rolled_back(deployment: Deployment, watcher: Watcher, record: Row) -> None:
    """A release answering 500 while the database is fine is rolled back to the last known
    good, which serves again; the pages say so and none blames the database."""
    deployed_at = deployment.deploy("bad")
    try:
        record.deploy_to_healthy = wait_rolled_back(deployment, watcher, deployed_at)
        performed = watcher.wait_page("RollbackPerformed", timeout=60)
        watcher.quiet()
    finally:
        note(record, watcher, deployed_at)
    assert performed.service == "backend"
    assert deployment.images.backend["bad"] in performed.description
    assert deployment.images.backend["good"] in performed.description
    assert_runbook(performed, "rollback-performed", watcher)
    firing = watcher.firing()
    assert "DatabaseConnectionFailing" not in [p.alertname for p in firing], describe(firing)
    assert not [p for p in firing if p.alertname in ("RollbackSkipped", "RollbackFailed")]
    assert any(d.startswith("rollback:") for d in watcher.decisions()), watcher.decisions()
    # The failed container is kept as a copy without the Compose labels: the runbooks'
    # `$(docker compose ps -q backend)` names the running container alone.
    assert "without the service's Compose labels" in performed.description
    assert len(deployment.compose("ps", "-q", "backend").split()) == 1


def test_release_needing_a_new_variable_is_rolled_back(
    deployment: Deployment, watcher: Watcher, record: Row
) -> None:
    """A release that exits at start for a variable the old one did not need: the page names
    FEATURE_STORE_URL, and the last known good, run with the current environment, serves."""
    deployed_at = deployment.deploy("newenv")
    try:
        record.deploy_to_healthy = wait_rolled_back(deployment, watcher, deployed_at)
        watcher.wait_page("RollbackPerformed", timeout=60)
        watcher.quiet()
    finally:
        note(record, watcher, deployed_at)
    missing = watcher.wait_page("EnvironmentVariablesMissing", timeout=1)
    assert missing.service == "backend"
    assert "FEATURE_STORE_URL" in missing.summary + missing.description
    assert_runbook(missing, "environment-variables-missing", watcher)
    assert not [p for p in watcher.firing() if p.alertname == "RollbackFailed"]
    assert_no_secret(watcher)


def test_crash_looping_release_is_rolled_back(
    deployment: Deployment, watcher: Watcher, record: Row
) -> None:
    """A release that crashes at start is rolled back; the good release's container is judged
    on its own (no RollbackFailed, no freeze)."""
    deployed_at = deployment.deploy("crash")
    try:
        record.deploy_to_healthy = wait_rolled_back(deployment, watcher, deployed_at)

        def judged() -> bool:
            if watcher.latest("RollbackFailed") is not None:
                raise AssertionError(f"RollbackFailed: {describe(watcher.pages())}")
            return watcher.latest("RollbackPerformed") is not None

        wait_until(judged, timeout=60, interval=0.2)
        watcher.quiet()
    finally:
        note(record, watcher, deployed_at)
    assert watcher.check_states().get("backend-container") == "healthy"
    assert not [p for p in watcher.firing() if p.alertname == "RollbackFailed"]
    frozen = [r["frozen"] for r in watcher.rollback_status()["services"]]
    assert frozen == [None], frozen


def test_slow_release(deployment: Deployment, watcher: Watcher, record: Row) -> None:
    """A release that starts slowly and answers slowly: a SlowResponses warning for the
    backend once it answers, and no rollback chatter."""
    deployed_at = deployment.deploy("slow")
    first = watcher.first_firing(timeout=90)
    record.fault_to_page = first.at - deployed_at
    watcher.quiet()
    firing = note(record, watcher, deployed_at)
    assert [(p.alertname, p.service, p.severity) for p in firing] == [
        ("SlowResponses", "backend", "warning")
    ], describe(firing)
    assert_runbook(first, "slow-responses", watcher)
    assert deployment.running_image("backend") == deployment.images.backend["slow"]


def test_frontend_stopped(deployment: Deployment, watcher: Watcher, record: Row) -> None:
    """The frontend stopped on request (Next.js ignores SIGTERM, exit 137): one page for the
    frontend, `opsmon explain` calls it a stop, not an OOM kill."""
    fault_at = time.monotonic()
    deployment.compose("stop", "frontend")
    first = watcher.first_firing(timeout=60)
    record.fault_to_page = first.at - fault_at
    explain = subprocess.run(
        [sys.executable, "-m", "monitor", "explain", "--config", str(watcher.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "OOM" not in explain.stdout, explain.stdout
    assert "frontend" in explain.stdout
    watcher.quiet()
    firing = note(record, watcher, fault_at)
    assert [(p.alertname, p.service) for p in firing] == [("ContainerDown", "frontend")], describe(
        firing
    )
    assert_runbook(first, "container-down", watcher)
    assert watcher.decisions() == []


def test_opsmon_killed_mid_outage(deployment: Deployment, watcher: Watcher, record: Row) -> None:
    """SIGKILL and restart during a db outage pages nothing new; the recovery resolves the
    one page that went out."""
    fault_at = time.monotonic()
    deployment.compose("stop", "db")
    watcher.first_firing(timeout=60)
    wait_until(lambda: watcher.check_states().get("backend-health") == "unhealthy", timeout=30)
    watcher.quiet()
    before = watcher.firing()
    note(record, watcher, fault_at)
    watcher.kill()
    watcher.start()
    wait_until(lambda: watcher.check_states().get("database") == "unhealthy", timeout=30)
    wait_until(lambda: watcher.check_states().get("backend-health") == "unhealthy", timeout=30)
    watcher.quiet()
    firing = note(record, watcher, fault_at)
    assert firing == before, "new pages after the restart: " + describe(firing[len(before) :])
    deployment.compose("start", "db")
    wait_until(
        lambda: set(watcher.check_states().values()) == {"healthy"}, timeout=60, interval=0.2
    )
    watcher.quiet()
    note(record, watcher, fault_at)
    assert watcher.firing() == before
    assert {p.key for p in watcher.resolved()} == {p.key for p in before}


def test_status_names_the_root_cause(deployment: Deployment, watcher: Watcher, record: Row) -> None:
    """While the frontend is stopped, /api/status shows for each failing check the diagnosis,
    its root cause and the runbook link, as the page does."""
    fault_at = time.monotonic()
    deployment.compose("stop", "frontend")
    first = watcher.first_firing(timeout=60)
    note(record, watcher, fault_at)
    wait_until(lambda: watcher.check_states().get("frontend") == "unhealthy", timeout=30)
    failing = [c for c in watcher.status()["checks"] if c["state"] == "unhealthy"]
    assert {c["name"] for c in failing} == {"frontend", "frontend-container"}
    for entry in failing:
        shown = json.dumps(entry)
        assert first.alertname in shown, shown
        assert "frontend-container" in shown and first.runbook_url in shown, shown

"""`opsmon gate` end to end: a real engine, real docker-compose (v1) deploys of a busybox
backend tagged by CI_COMMIT_SHA, a real PostgreSQL, the rollback coordinator and journal."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.rollback.journal import Journal
from monitor.rollback.store import open_store
from tests.support.cli import running_daemon
from tests.support.environment import free_port
from tests.support.gate import (
    ComposeProject,
    finish,
    gate_config,
    run_gate,
    start_gate,
    wait_healthy,
    write_config,
)
from tests.support.postgres import PostgresFactory
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.slow]
FAST = ("--healthy-for", "2s", "--timeout", "60s")


def _config(project: ComposeProject, tmp_path: Path, **options: Any) -> Path:
    state = tmp_path / "state"
    return write_config(tmp_path / "opsmon.yml", gate_config(project, state, **options))


def _rollbacks(tmp_path: Path) -> list[Any]:
    store = open_store(tmp_path / "state")
    try:
        return Journal(store).recent("web")
    finally:
        store.close()


def _promote_first(project: ComposeProject, config: Path, tag: str = "good1") -> None:
    """Deploy `tag` and gate it, so the service has a last known good."""
    project.up(tag)
    first = run_gate(config, "web", *FAST)
    assert first.code == 0, first.stdout + first.stderr


def test_good_deploy_is_promoted_and_becomes_the_last_known_good(
    compose_project: ComposeProject, tmp_path: Path
) -> None:
    """A healthy deploy exits 0 once its checks stayed healthy for --healthy-for, with a
    progress line per change, and its image is the last known good at once."""
    config = _config(compose_project, tmp_path)
    compose_project.up("good1")
    started = time.monotonic()
    done = run_gate(config, "web", *FAST)
    assert done.code == 0, done.stdout + done.stderr
    assert done.ended - started >= 2
    lines = done.stdout.splitlines()
    assert any("container" in line and "seen" in line for line in lines)
    assert any("checks passing 2/2" in line for line in lines)
    assert "PROMOTED" in done.stdout
    store = open_store(tmp_path / "state")
    try:
        lkg = store.lkg("web")
    finally:
        store.close()
    assert lkg is not None and lkg.image == compose_project.images.ref("good1")


def test_failing_health_endpoint_is_rolled_back_to_a_healthy_lkg(
    compose_project: ComposeProject, tmp_path: Path, hooks: Receiver
) -> None:
    """A deploy whose health endpoint answers 500 exits 1; the last known good runs again
    and answers 200; the journal holds one succeeded rollback triggered by the gate."""
    config = _config(compose_project, tmp_path, hooks=hooks)
    _promote_first(compose_project, config)
    compose_project.up("badhealth")
    done = run_gate(config, "web", *FAST, "--json")
    assert done.code == 1, done.stdout + done.stderr
    document = json.loads(done.stdout)
    [service] = document["services"]
    assert service["verdict"] == "rolled_back"
    assert service["rollback"]["status"] == "succeeded"
    assert service["image"] == compose_project.images.ref("badhealth")
    assert service["last_known_good"] == compose_project.images.ref("good1")
    assert any("[STATUS] (500) == 200" in line for line in service["evidence"])
    running = compose_project.running()
    assert running["Image"] == compose_project.images.ids["good1"]
    wait_healthy(compose_project.health_url)
    [rollback] = [r for r in _rollbacks(tmp_path) if r.status.executed]
    assert rollback.trigger == "gate" and rollback.status.value == "succeeded"


def test_crash_looping_deploy_fails_fast_and_is_rolled_back(
    compose_project: ComposeProject, tmp_path: Path
) -> None:
    """A deploy that exits at once under `restart: always` is judged a crash loop long
    before the 5 minute timeout and rolled back: exit 1. Its last log line is shown with the
    container's secret values masked."""
    canary = "canary-session-5f1e9a"
    compose_project.environment = {"SESSION_SECRET": canary}
    config = _config(compose_project, tmp_path)
    _promote_first(compose_project, config)
    deployed = compose_project.up("crash")
    done = run_gate(config, "web", "--healthy-for", "2s", "--timeout", "5m")
    assert done.code == 1, done.stdout + done.stderr
    assert any("crash-loops: restarted" in line for line in done.stdout.splitlines())
    assert "last log line: backend: cannot find module dist/index.js (session ***)" in done.stdout
    assert canary not in done.stdout + done.stderr
    assert done.ended - deployed < 60  # the verdict came long before the timeout
    assert compose_project.running()["Image"] == compose_project.images.ids["good1"]


def test_deploy_while_the_database_is_down_is_not_rolled_back(
    compose_project: ComposeProject, tmp_path: Path, make_postgres: PostgresFactory
) -> None:
    """With PostgreSQL down the new version's health fails, the gate exits 2 saying a
    rollback cannot help because the database is down, and touches nothing."""
    database = make_postgres()
    compose_project.db_port = database.port
    config = _config(compose_project, tmp_path, dsn=database.dsn())
    _promote_first(compose_project, config)
    database.stop()
    compose_project.up("good2")
    before = compose_project.running()
    done = run_gate(config, "web", *FAST)
    assert done.code == 2, done.stdout + done.stderr
    assert "DatabaseConnectionFailing" in done.stdout
    assert "no rollback" in done.stdout
    after = compose_project.running()
    assert after["Id"] == before["Id"] and after["Image"] == compose_project.images.ids["good2"]
    assert not [r for r in _rollbacks(tmp_path) if r.status.executed]


def test_missing_variable_is_named_and_the_lkg_restored(
    compose_project: ComposeProject, tmp_path: Path
) -> None:
    """A release that exits at start for want of API_KEY fails at once naming API_KEY (never
    a value); the last known good runs with today's environment, so it is rolled back to."""
    config = _config(compose_project, tmp_path)
    _promote_first(compose_project, config)
    compose_project.up("noenv")
    done = run_gate(config, "web", *FAST, "--json")
    assert done.code == 1, done.stdout + done.stderr
    [service] = json.loads(done.stdout)["services"]
    assert "API_KEY" in service["summary"]
    assert service["diagnosis"] == "EnvironmentVariablesMissing"
    assert service["runbook_url"].endswith("/runbooks/environment-variables-missing")
    assert compose_project.running()["Image"] == compose_project.images.ids["good1"]


def _lease_holder(tmp_path: Path) -> str | None:
    store = open_store(tmp_path / "state")
    try:
        row = store.db.execute("SELECT owner FROM rollback_leases WHERE service = 'web'").fetchone()
        return str(row["owner"]) if row is not None else None
    finally:
        store.close()


def _in_flight(tmp_path: Path) -> bool:
    store = open_store(tmp_path / "state")
    try:
        return bool(Journal(store).in_flight("web"))
    finally:
        store.close()


def test_second_gate_waits_for_the_running_rollback_and_reports_its_outcome(
    compose_project: ComposeProject, tmp_path: Path
) -> None:
    """A second gate started while the first one's rollback runs does not act: it waits and
    exits with the same code and verdict; there is one rollback."""
    config = _config(compose_project, tmp_path)
    _promote_first(compose_project, config)
    compose_project.up("badhealth")
    first = start_gate(config, "web", *FAST, "--json")
    wait_until(lambda: _in_flight(tmp_path) or first.poll() is not None, timeout=60, interval=0.02)
    assert first.poll() is None, "the first gate ended before its rollback could be watched"
    second = run_gate(config, "web", *FAST, "--json")
    done = finish(first)
    assert done.code == 1 and second.code == 1, second.stdout + second.stderr
    [mine] = json.loads(second.stdout)["services"]
    [theirs] = json.loads(done.stdout)["services"]
    assert mine["verdict"] == theirs["verdict"] == "rolled_back"
    assert mine["followed"].startswith(f"a deploy gate (pid {first.pid} ")
    assert mine["rollback"]["id"] == theirs["rollback"]["id"]
    assert len([r for r in _rollbacks(tmp_path) if r.status.executed]) == 1


def test_gate_and_daemon_in_enforce_mode_roll_back_once(
    compose_project: ComposeProject, tmp_path: Path, hooks: Receiver
) -> None:
    """With `opsmon run` (enforce) watching the service, a gate that owns the deploy rolls it
    back and the daemon does not: one rollback; the daemon sends the gate's alerts."""
    port = free_port()
    config = _config(compose_project, tmp_path, hooks=hooks, listen_port=port)
    compose_project.up("good1")
    with running_daemon(config, port):
        first = run_gate(config, "web", *FAST)
        assert first.code == 0, first.stdout + first.stderr
        bad = compose_project.images.ref("badhealth")
        gate = start_gate(config, "web", "--image", bad, *FAST)
        wait_until(lambda: _lease_holder(tmp_path) is not None, timeout=30, interval=0.05)
        compose_project.up("badhealth")
        done = finish(gate)
        assert done.code == 1, done.stdout + done.stderr
        alerts = wait_until(lambda: _alerts(hooks, "DeployRolledBack"), timeout=30)
        assert alerts[0]["labels"]["severity"] == "critical"
        assert _alerts(hooks, "DeployPromoted")
        status = httpx.get(f"http://127.0.0.1:{port}/api/rollback", timeout=5).json()
        [row] = status["services"]
        assert row["current"]["origin"] == "rollback"
    executed = [r for r in _rollbacks(tmp_path) if r.status.executed]
    assert [r.trigger for r in executed] == ["gate"]
    assert compose_project.running()["Image"] == compose_project.images.ids["good1"]


def _alerts(hooks: Receiver, name: str) -> list[dict[str, Any]]:
    return [
        alert
        for request in hooks.accepted()
        for alert in request.json.get("alerts", [])
        if alert["labels"].get("alertname") == name and alert["status"] == "firing"
    ]


def test_github_actions_get_annotations_and_a_step_summary(
    compose_project: ComposeProject, tmp_path: Path
) -> None:
    """Under GITHUB_ACTIONS=true a failed deploy prints an ::error:: annotation and appends
    a Markdown summary (verdict, images, checks, diagnosis, runbook) to GITHUB_STEP_SUMMARY."""
    config = _config(compose_project, tmp_path)
    _promote_first(compose_project, config)
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    compose_project.up("badhealth")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    done = run_gate(config, "web", *FAST, env=env)
    assert done.code == 1, done.stdout + done.stderr
    [annotation] = [line for line in done.stdout.splitlines() if line.startswith("::")]
    assert annotation.startswith("::error title=opsmon gate%3A web rolled back")
    text = summary.read_text()
    assert text.startswith("# earlier step\n")
    assert "opsmon deploy gate: exit 1" in text
    assert f"`{compose_project.images.ref('badhealth')}`" in text
    assert f"`{compose_project.images.ref('good1')}`" in text
    assert "| web-health | unhealthy |" in text
    assert "HealthCheckFailing" in text and "/runbooks/health-check-failing" in text


def test_no_rollback_leaves_a_bad_deploy_and_exits_2(
    compose_project: ComposeProject, tmp_path: Path
) -> None:
    """With --no-rollback a crash-looping deploy is judged, reported and left alone: exit 2,
    no rollback in the journal."""
    config = _config(compose_project, tmp_path)
    _promote_first(compose_project, config)
    compose_project.up("crash")
    done = run_gate(config, "web", *FAST, "--no-rollback", "--json")
    assert done.code == 2, done.stdout + done.stderr
    [service] = json.loads(done.stdout)["services"]
    assert service["verdict"] == "not_rolled_back"
    assert service["diagnosis"] == "ContainerCrashLooping"
    assert service["rollback_reason"] == "--no-rollback: the service is left as it is"
    assert not [r for r in _rollbacks(tmp_path) if r.status.executed]
    assert all(
        c["Image"] == compose_project.images.ref("crash") for c in compose_project.containers()
    )


def test_no_container_with_the_image_times_out_with_exit_3(
    compose_project: ComposeProject, tmp_path: Path
) -> None:
    """Waiting for an image that never runs ends at --timeout with exit 3, saying so."""
    config = _config(compose_project, tmp_path)
    compose_project.up("good1")
    missing_image = compose_project.images.ref("good2")
    done = run_gate(
        config, "web", "--image", missing_image, "--healthy-for", "1s", "--timeout", "3s"
    )
    assert done.code == 3, done.stdout + done.stderr
    assert "no verdict within 3s: no new container of web appeared" in done.stdout
    assert "TIMED_OUT" in done.stdout


def test_gate_started_during_the_daemons_rollback_reports_its_outcome(
    compose_project: ComposeProject, tmp_path: Path, hooks: Receiver
) -> None:
    """When the daemon (enforce) started rolling back first, a gate waits for that rollback
    and reports it (exit 1), naming the daemon; there is still one rollback."""
    port = free_port()
    config = _config(compose_project, tmp_path, hooks=hooks, listen_port=port)
    compose_project.up("good1")
    with running_daemon(config, port):
        first = run_gate(config, "web", *FAST)
        assert first.code == 0, first.stdout + first.stderr
        compose_project.up("badhealth")
        wait_until(lambda: _in_flight(tmp_path), timeout=60, interval=0.02)
        done = run_gate(config, "web", *FAST, "--json")
    assert done.code == 1, done.stdout + done.stderr
    [service] = json.loads(done.stdout)["services"]
    assert service["verdict"] == "rolled_back"
    assert service["followed"].startswith("the opsmon daemon (pid ")
    executed = [r for r in _rollbacks(tmp_path) if r.status.executed]
    assert [r.trigger for r in executed] == ["auto"]
    assert service["rollback"]["id"] == executed[0].id

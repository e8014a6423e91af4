"""The `command` strategy end to end with Debian's docker-compose (v1): the reference deploy
(`CI_COMMIT_SHA=<sha> docker compose up -d`) is what rolls the service back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.environment import missing
from tests.support.rollback import Deployment, compose_available, wait_answers
from tests.support.rollback_daemon import Opsmon, service_checks

pytestmark = [pytest.mark.docker, pytest.mark.slow]
SCRIPT = """#!/bin/sh
# The team's deploy script: records what it was given, then deploys with Compose.
env | grep -E '^(CI_COMMIT_SHA|OPSMON_ROLLBACK_[A-Z_]+)=' | sort >> "$CALLS"
echo "--" >> "$CALLS"
exec docker-compose -p "$PROJECT" -f "$COMPOSE_FILE" up -d "$1"
"""


def compose_file(deployment: Deployment, folder: Path) -> Path:
    """The service as the reference writes it: the image tag is ${CI_COMMIT_SHA}."""
    spec = {
        "version": "2.4",
        "services": {
            deployment.service: {
                "image": deployment.images.repo + ":${CI_COMMIT_SHA}",
                "network_mode": "host",
                "environment": {"PORT": str(deployment.port), "API_TOKEN": "compose-token"},
                "labels": {"app.tier": "web"},
                "volumes": ["data:/data", f"{deployment.state_dir}:/state"],
                "restart": "unless-stopped",
                "stop_grace_period": "5s",
            }
        },
        "volumes": {"data": {}},
    }
    path = folder / "docker-compose.prod.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def compose_up(deployment: Deployment, path: Path, sha: str) -> None:
    """`CI_COMMIT_SHA=sha docker-compose up -d`, as CI does."""
    subprocess.run(
        ["docker-compose", "-p", deployment.project, "-f", str(path), "up", "-d"],
        env={**os.environ, "CI_COMMIT_SHA": sha},
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_command_strategy_runs_the_deploy_command_with_the_lkg_sha(
    deployment: Deployment, opsmon: Opsmon, tmp_path: Path
) -> None:
    """v2 deployed by Compose fails; opsmon runs the configured deploy script once with
    CI_COMMIT_SHA=v1, Compose brings v1 back, the checks recover: RollbackPerformed."""
    if not compose_available():
        missing("docker-compose")
    path = compose_file(deployment, tmp_path)
    script = tmp_path / "deploy.sh"
    script.write_text(SCRIPT)
    calls = tmp_path / "calls.log"
    opsmon.environment = {
        "CALLS": str(calls),
        "PROJECT": deployment.project,
        "COMPOSE_FILE": str(path),
    }
    opsmon.configure(
        checks=service_checks(deployment),
        service={
            "strategy": "command",
            "command": f"sh {script} {{service}}",
            "cwd": str(tmp_path),
            "timeout": "60s",
        },
    )
    compose_up(deployment, path, "v1")
    opsmon.start()
    opsmon.wait_lkg("v1")
    compose_up(deployment, path, "v2")

    alert = opsmon.wait_alert("RollbackPerformed", timeout=60)
    wait_answers(deployment.health_url, 200)
    assert deployment.inspect()["Image"] == deployment.images.ids["v1"]
    assert deployment.inspect()["Config"]["Labels"]["com.docker.compose.project"] == (
        deployment.project
    )
    recorded = calls.read_text().split("--\n")
    assert recorded[0].splitlines() == [
        "CI_COMMIT_SHA=v1",
        f"OPSMON_ROLLBACK_BAD_IMAGE={deployment.images.ref('v2')}",
        f"OPSMON_ROLLBACK_IMAGE={deployment.images.ref('v1')}",
        "OPSMON_ROLLBACK_SERVICE=web",
    ]
    assert len(recorded) == 2 and recorded[1] == ""  # run exactly once
    assert deployment.images.ref("v2") in alert["annotations"]["description"]
    [done] = opsmon.rollbacks()
    assert done["strategy"] == "command" and done["status"] == "succeeded"

"""Retiring the failed container after a rollback, on the real engine with Debian's
docker-compose (v1): the container kept for inspection no longer carries the service's Compose
labels, so Compose (and the runbooks' `docker compose` commands) no longer count it."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.rollback.docker_ops import DockerCallFailed
from monitor.rollback.journal import Rollback
from monitor.rollback.retire import retire_failed
from monitor.rollback.retired_copy import FAILED_FROM_LABEL
from monitor.rollback.snapshot import Snapshot
from tests.support.environment import missing
from tests.support.rollback import Deployment, compose_available, wait_answers
from tests.support.rollback_parts import Parts, plan

pytestmark = [pytest.mark.docker, pytest.mark.slow]
CANARY = "canary-" + uuid.uuid4().hex
COMPOSE_LABEL = "com.docker.compose."


class Compose:
    """The deployment's service in a compose file, deployed with `docker-compose` as CI does."""

    def __init__(self, deployment: Deployment, folder: Path) -> None:
        if not compose_available():
            missing("docker-compose (apt-get install docker-compose)")
        self.deployment = deployment
        spec = {
            "version": "2.4",
            "services": {
                deployment.service: {
                    "image": deployment.images.repo + ":${CI_COMMIT_SHA}",
                    # The image's command, saying which version serves (in the log).
                    "command": [
                        "sh",
                        "-c",
                        "echo serving $$(cat /www/version); trap 'kill $$pid; exit 0' TERM;"
                        " httpd -f -p 127.0.0.1:$$PORT -h /www & pid=$$!; wait $$pid",
                    ],
                    "network_mode": "host",
                    "environment": {"PORT": str(deployment.port), "API_TOKEN": CANARY},
                    "volumes": ["data:/data", f"{deployment.state_dir}:/state"],
                    "restart": "always",
                    "stop_grace_period": "5s",
                }
            },
            "volumes": {"data": {}},
        }
        self.path = folder / "docker-compose.prod.yml"
        self.path.write_text(yaml.safe_dump(spec))

    def run(self, sha: str, *args: str) -> str:
        """`CI_COMMIT_SHA=sha docker-compose -p PROJECT -f FILE ARGS`; its output."""
        done = subprocess.run(
            ["docker-compose", "-p", self.deployment.project, "-f", str(self.path), *args],
            env={**os.environ, "CI_COMMIT_SHA": sha},
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return done.stdout + done.stderr

    def ids(self) -> list[str]:
        """`docker-compose ps -q SERVICE`: the containers Compose counts as the service's."""
        return self.run("v1", "ps", "-q", self.deployment.service).split()


async def rolled_back(deployment: Deployment, parts: Parts, compose: Compose) -> Rollback:
    """v1 deployed with Compose, then v2; the recreate strategy put v1 back (v2 kept)."""
    compose.run("v1", "up", "-d")
    wait_answers(deployment.health_url, 200)
    lkg = Snapshot.from_inspect(deployment.inspect())
    compose.run("v2", "up", "-d")
    wait_answers(deployment.health_url, 404)
    record = parts.journal.begin(plan(deployment, lkg))
    await parts.strategy.execute(record)
    wait_answers(deployment.health_url, 200)
    return record


def compose_labels(data: dict[str, Any]) -> list[str]:
    """The Compose labels of a container (inspect data)."""
    return [k for k in data["Config"]["Labels"] or {} if k.startswith(COMPOSE_LABEL)]


async def test_compose_counts_only_the_restored_container_after_a_rollback(
    deployment: Deployment, parts: Parts, tmp_path: Path
) -> None:
    """Without its Compose labels the failed v2 container is not one of the service's: `ps -q`
    lists the restored v1 alone, and the runbook's `CI_COMMIT_SHA=<lkg> docker compose up -d`
    leaves the restored container running (before, Compose removed it and brought the kept
    one back). The kept copy names where it came from and is never restarted."""
    compose = Compose(deployment, tmp_path)
    record = await rolled_back(deployment, parts, compose)
    restored = deployment.inspect()["Id"]
    bad = deployment.inspect(record.failed_name)

    retired = await retire_failed(parts.ops, record, tmp_path / "state" / "retired")

    assert compose.ids() == [restored]
    output = compose.run("v1", "up", "-d")
    assert deployment.inspect()["Id"] == restored, output
    assert deployment.inspect()["State"]["Running"]
    wait_answers(deployment.health_url, 200)
    kept = deployment.inspect(record.failed_name)
    assert kept["Id"] == retired.container_id != bad["Id"]
    assert compose_labels(kept) == []
    labels = kept["Config"]["Labels"]
    assert labels[FAILED_FROM_LABEL] == bad["Id"]
    assert labels["opsmon.failed-service"] == deployment.service
    assert labels["opsmon.failed-project"] == deployment.project
    assert labels["opsmon.failed-exit-code"] == str(bad["State"]["ExitCode"])
    assert kept["Image"] == bad["Image"] and kept["Config"]["Image"] == bad["Config"]["Image"]
    assert sorted(kept["Config"]["Env"]) == sorted(bad["Config"]["Env"])
    assert kept["HostConfig"]["RestartPolicy"]["Name"] == "no"
    assert not kept["State"]["Running"]
    assert retired.logs is not None and "serving v2" in retired.logs.read_text()
    assert labels["opsmon.failed-logs"] == str(retired.logs)
    assert oct(retired.logs.stat().st_mode & 0o777) == "0o600"


async def test_retiring_again_after_a_crash_finishes_once(
    deployment: Deployment, parts: Parts, tmp_path: Path
) -> None:
    """Killed after the copy was made (or after the original was removed), retiring again
    finishes the job with the same copy and leaves exactly one kept container."""
    compose = Compose(deployment, tmp_path)
    record = await rolled_back(deployment, parts, compose)
    folder = tmp_path / "retired"
    first = await retire_failed(parts.ops, record, folder)
    # As if killed before the rename: the copy still has the engine's random name.
    deployment.client.api.rename(first.container_id, f"{deployment.project}_tmp")

    again = await retire_failed(parts.ops, record, folder)

    assert again.container_id == first.container_id
    assert deployment.inspect(record.failed_name)["Id"] == first.container_id
    kept = [
        c
        for c in deployment.client.api.containers(
            all=True, filters={"label": f"{FAILED_FROM_LABEL}={record.old_container_id}"}
        )
    ]
    assert len(kept) == 1
    assert compose.ids() == [deployment.inspect()["Id"]]


async def test_a_failed_container_started_again_is_left_alone(
    deployment: Deployment, parts: Parts, tmp_path: Path
) -> None:
    """If someone started the kept container again, retiring refuses (it is not removed while
    it runs) and says why; nothing is copied."""
    compose = Compose(deployment, tmp_path)
    record = await rolled_back(deployment, parts, compose)
    deployment.client.api.start(record.old_container_id)

    with pytest.raises(DockerCallFailed, match="running"):
        await retire_failed(parts.ops, record, tmp_path / "retired")

    assert deployment.inspect(record.failed_name)["Id"] == record.old_container_id
    copies = deployment.client.api.containers(
        all=True, filters={"label": f"{FAILED_FROM_LABEL}={record.old_container_id}"}
    )
    assert copies == []


async def test_remove_refuses_a_container_without_its_retired_copy(
    deployment: Deployment, parts: Parts
) -> None:
    """The only container rollback may remove is a stopped one whose relabelled copy exists:
    any other removal is refused before it reaches the engine."""
    deployment.deploy("v1")
    current = deployment.inspect()["Id"]
    deployment.client.api.stop(current, timeout=5)

    with pytest.raises(DockerCallFailed, match="no relabelled copy"):
        await parts.ops.remove_retired(current)
    assert deployment.inspect()["Id"] == current

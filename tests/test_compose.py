"""compose.monitor.yml, validated by Debian's real docker-compose as the override it is meant to be:
`docker compose -f docker-compose.yml -f compose.monitor.yml up -d` next to the reference stack."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.deploy_artifacts import ROOT
from tests.support.environment import missing

MONITOR = ROOT / "compose.monitor.yml"
REFERENCE = ROOT / "tests" / "fixtures" / "docker-compose.reference.yml"
# Variables a user may have in the shell or .env; the test must not depend on them.
_COMPOSE_VARIABLES = (
    "OPSMON_IMAGE",
    "OPSMON_METRICS_BIND",
    "OPSMON_PUBLIC_URL",
    "OPSMON_DOCKER_WRITE",
    "DOCKER_SOCKET_PROXY_IMAGE",
    "COMPOSE_FILE",
    "COMPOSE_PROJECT_NAME",
    "SLACK_WEBHOOK_URL",
)


def compose_config(*files: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`docker-compose -f FILE... config` from the repository root, parsed."""
    if shutil.which("docker-compose") is None:
        missing("docker-compose (Debian package docker-compose)")
    base_env = {k: v for k, v in os.environ.items() if k not in _COMPOSE_VARIABLES}
    command = ["docker-compose", "--project-directory", str(ROOT)]
    for file in files:
        command += ["-f", str(file)]
    result = subprocess.run(
        [*command, "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base_env, **(env or {})},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@pytest.fixture(scope="module")
def merged() -> dict[str, Any]:
    """The reference stack with compose.monitor.yml on top, as compose resolves it."""
    return compose_config(REFERENCE, MONITOR)


def _published(service: dict[str, Any]) -> list[str]:
    """Published ports as HOST_IP:HOST_PORT:CONTAINER_PORT, whichever syntax compose printed."""
    ports = []
    for port in service.get("ports", []):
        if isinstance(port, str):
            ports.append(port.removesuffix("/tcp"))
        else:
            ports.append(f"{port.get('host_ip', '')}:{port['published']}:{port['target']}")
    return ports


def test_monitor_file_is_valid_on_its_own() -> None:
    """`docker-compose -f compose.monitor.yml config` accepts the file alone."""
    config = compose_config(MONITOR)
    assert set(config["services"]) == {"opsmon", "docker-socket-proxy"}


def test_override_adds_opsmon_and_keeps_the_stack(merged: dict[str, Any]) -> None:
    """On top of the reference stack it adds opsmon and the proxy and leaves the stack as it was."""
    alone = compose_config(REFERENCE)
    assert set(merged["services"]) == {"frontend", "backend", "db", "opsmon", "docker-socket-proxy"}
    for name, service in alone["services"].items():
        assert merged["services"][name] == service
    assert set(alone["volumes"]) <= set(merged["volumes"])


def test_opsmon_runs_locked_down(merged: dict[str, Any]) -> None:
    """opsmon: read-only root, no capabilities, no privilege gain, state in a named volume."""
    opsmon = merged["services"]["opsmon"]
    assert opsmon["read_only"] is True
    assert opsmon["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in opsmon["security_opt"]
    volumes = opsmon["volumes"]
    assert "opsmon_state:/var/lib/opsmon:rw" in volumes
    assert "opsmon_state" in merged["volumes"]
    assert f"{ROOT}/config/opsmon.yml:/etc/opsmon/opsmon.yml:ro" in volumes
    assert not any("docker.sock" in volume for volume in volumes)


def test_opsmon_reaches_docker_only_through_the_proxy(merged: dict[str, Any]) -> None:
    """The socket is mounted in the proxy alone, read-only, on an internal network with no ports."""
    opsmon = merged["services"]["opsmon"]
    proxy = merged["services"]["docker-socket-proxy"]
    assert opsmon["environment"]["DOCKER_HOST"] == "tcp://docker-socket-proxy:2375"
    assert set(opsmon["networks"]) == {"default", "docker-api"}
    assert set(proxy["networks"]) == {"docker-api"}
    assert merged["networks"]["docker-api"]["internal"] is True
    assert proxy["volumes"] == ["/var/run/docker.sock:/var/run/docker.sock:ro"]
    assert "ports" not in proxy
    assert proxy["read_only"] is True
    assert proxy["image"].startswith("tecnativa/docker-socket-proxy:")


def test_proxy_is_read_only_unless_rollback_is_enforced() -> None:
    """The proxy refuses POST by default; OPSMON_DOCKER_WRITE=1 opens it for rollback."""
    default = compose_config(REFERENCE, MONITOR)["services"]["docker-socket-proxy"]["environment"]
    assert str(default["POST"]) == "0"
    for section in ("CONTAINERS", "EVENTS", "IMAGES", "PING", "VERSION"):
        assert str(default[section]) == "1", section
    for section in ("EXEC", "BUILD", "SECRETS", "VOLUMES", "NETWORKS", "INFO", "AUTH", "SWARM"):
        assert str(default[section]) == "0", section
    enforced = compose_config(REFERENCE, MONITOR, env={"OPSMON_DOCKER_WRITE": "1"})
    proxy = enforced["services"]["docker-socket-proxy"]["environment"]
    # Rollback's writes: container create/start/stop/rename and network connect.
    assert (str(proxy["POST"]), str(proxy["NETWORKS"])) == ("1", "1")
    assert (str(proxy["EXEC"]), str(proxy["VOLUMES"])) == ("0", "0")


def test_metrics_are_published_on_loopback_only(merged: dict[str, Any]) -> None:
    """Port 9110 is published on the host's 127.0.0.1 by default, and moves where told."""
    assert _published(merged["services"]["opsmon"]) == ["127.0.0.1:9110:9110"]
    moved = compose_config(REFERENCE, MONITOR, env={"OPSMON_METRICS_BIND": "10.0.0.5"})
    assert _published(moved["services"]["opsmon"]) == ["10.0.0.5:9110:9110"]


def test_secrets_pass_through_by_name_only(merged: dict[str, Any]) -> None:
    """Secret variables are named, never valued, in the file; the shell's value reaches opsmon."""
    opsmon = merged["services"]["opsmon"]
    for name in ("DATABASE_URL", "SLACK_WEBHOOK_URL", "SMTP_PASSWORD", "SENTRY_DSN"):
        assert name in opsmon["environment"]
        assert opsmon["environment"][name] is None
    canary = "https://hooks.example.invalid/canary-7f3a"
    with_secret = compose_config(REFERENCE, MONITOR, env={"SLACK_WEBHOOK_URL": canary})
    assert with_secret["services"]["opsmon"]["environment"]["SLACK_WEBHOOK_URL"] == canary
    assert canary not in MONITOR.read_text()


def test_opsmon_uses_the_image_defaults_inside_the_container(merged: dict[str, Any]) -> None:
    """opsmon listens on 0.0.0.0:9110 in its container and keeps state in the volume."""
    environment = merged["services"]["opsmon"]["environment"]
    assert environment["OPSMON_LISTEN"] == "0.0.0.0:9110"
    assert environment["OPSMON_STATE_DIR"] == "/var/lib/opsmon"
    assert merged["services"]["opsmon"]["image"] == "opsmon:local"


def test_cluster_override_adds_a_second_instance_of_the_same_shape() -> None:
    """compose.cluster.yml on top: opsmon-2 is locked down like opsmon, has its own state
    volume and host port, and both get the cluster DSN by name only (the shell's value)."""
    canary = "postgresql://opsmon:canary-cluster-pw@db.example.invalid/opsmon"
    cluster = ROOT / "compose.cluster.yml"
    merged = compose_config(REFERENCE, MONITOR, cluster, env={"OPSMON_CLUSTER_DSN": canary})
    first, second = merged["services"]["opsmon"], merged["services"]["opsmon-2"]
    for key in ("read_only", "cap_drop", "security_opt", "image", "networks", "tmpfs"):
        assert first[key] == second[key], key
    assert (first["hostname"], second["hostname"]) == ("opsmon-1", "opsmon-2")
    assert "opsmon_2_state:/var/lib/opsmon:rw" in second["volumes"]
    assert "opsmon_state:/var/lib/opsmon:rw" in first["volumes"]
    assert _published(second) == ["127.0.0.1:9111:9110"]
    assert first["environment"]["OPSMON_CLUSTER_DSN"] == canary
    assert second["environment"]["OPSMON_CLUSTER_DSN"] == canary
    assert set(first["environment"]) == set(second["environment"])
    assert "canary-cluster-pw" not in cluster.read_text()

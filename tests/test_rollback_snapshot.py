"""Snapshots of real containers: what a recreate needs, and the diff a dry run shows."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from monitor.rollback.snapshot import Snapshot, diff, short_id
from tests.support.rollback import Deployment

pytestmark = pytest.mark.docker

CANARY = "canary-" + uuid.uuid4().hex


def _comparable(data: dict[str, Any]) -> dict[str, Any]:
    """The settings of an inspected container that a recreate must keep."""
    config, host = data["Config"], data["HostConfig"]
    return {
        "name": data["Name"],
        "env": sorted(config["Env"]),
        "labels": config["Labels"],
        "cmd": config["Cmd"],
        "entrypoint": config["Entrypoint"],
        "working_dir": config["WorkingDir"],
        "user": config["User"],
        "healthcheck": config.get("Healthcheck"),
        "network_mode": host["NetworkMode"],
        "restart": host["RestartPolicy"],
        "memory": host["Memory"],
        "mounts": sorted(
            (m["Type"], m.get("Name") or m["Source"], m["Destination"], m["RW"])
            for m in data["Mounts"]
        ),
        "networks": {
            name: sorted(a for a in (ep.get("Aliases") or []) if a != data["Id"][:12])
            for name, ep in data["NetworkSettings"]["Networks"].items()
        },
    }


def test_snapshot_holds_what_compose_configured(deployment: Deployment) -> None:
    """A snapshot keeps name, image, env, Compose labels, command, mounts (bind, named and
    anonymous volumes by name), host network, restart policy, healthcheck and memory limit."""
    deployment.env = {"API_TOKEN": CANARY}
    deployment.deploy("v1")
    snapshot = Snapshot.from_inspect(deployment.inspect())

    assert snapshot.name == deployment.name
    assert snapshot.image == deployment.images.ref("v1")
    assert snapshot.image_id == deployment.images.ids["v1"]
    assert snapshot.env["API_TOKEN"] == CANARY
    assert snapshot.labels["com.docker.compose.service"] == "web"
    assert snapshot.labels["com.docker.compose.project"] == deployment.project
    body = snapshot.create_body("x")
    binds = body["HostConfig"]["Binds"]
    assert f"{deployment.state_dir}:/state:rw" in binds
    assert f"{deployment.volume}:/data:rw" in binds
    anonymous = [m["Name"] for m in deployment.inspect()["Mounts"] if m["Destination"] == "/cache"]
    assert f"{anonymous[0]}:/cache" in binds
    assert body["HostConfig"]["NetworkMode"] == "host"
    assert body["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert body["HostConfig"]["Memory"] == 64 * 1024 * 1024
    assert body["Healthcheck"]["Test"][0] == "CMD"
    assert "Hostname" not in body  # the host network brings its own
    assert "NetworkingConfig" not in body
    assert CANARY not in repr(snapshot) and CANARY not in str(snapshot)


def test_create_body_recreates_an_identical_container(deployment: Deployment) -> None:
    """A container created from the snapshot's body has the same settings as the original:
    env, labels, command, mounts (same volumes), networks with their aliases, limits."""
    client = deployment.client
    first, second = deployment.add_networks(2)
    deployment.env = {"API_TOKEN": CANARY}
    old_id = deployment.deploy("v1")
    original = deployment.inspect()
    snapshot = Snapshot.from_inspect(original)
    client.api.stop(old_id, timeout=5)
    client.api.rename(old_id, f"{deployment.name}_old")

    body = snapshot.create_body(deployment.images.ref("v1"))
    new_id = client.api.create_container_from_config(body, snapshot.name)["Id"]
    for name, endpoint in snapshot.extra_networks().items():
        client.api.connect_container_to_network(new_id, name, aliases=endpoint.get("Aliases"))
    client.api.start(new_id)
    recreated = deployment.inspect(new_id)

    assert _comparable(recreated) == _comparable(original)
    for network in (first, second):
        aliases = recreated["NetworkSettings"]["Networks"][network]["Aliases"]
        assert {"web", "web-alias"} <= set(aliases)
        assert original["Id"][:12] not in aliases


def test_snapshot_round_trips_through_json(deployment: Deployment) -> None:
    """What is stored in the state file gives back the same create request."""
    deployment.deploy("v1")
    snapshot = Snapshot.from_inspect(deployment.inspect())
    again = Snapshot.from_json(snapshot.to_json())
    assert again == snapshot
    assert again.create_body("img") == snapshot.create_body("img")


def test_diff_names_variables_but_never_shows_their_values(deployment: Deployment) -> None:
    """The dry-run diff says which image and which variables change, without any env value."""
    deployment.env = {"API_TOKEN": CANARY, "OLD_ONLY": "old-" + CANARY}
    deployment.deploy("v1")
    good = Snapshot.from_inspect(deployment.inspect())
    deployment.env = {"API_TOKEN": CANARY + "-rotated", "NEW_ONLY": "new-" + CANARY}
    deployment.deploy("v2")
    bad = Snapshot.from_inspect(deployment.inspect())

    lines = diff(bad, good)
    text = "\n".join(lines)
    assert f"image: {deployment.images.ref('v2')} ({short_id(bad.image_id)})" in text
    assert f"-> {deployment.images.ref('v1')} ({short_id(good.image_id)})" in text
    assert "env changed: API_TOKEN" in text
    assert "env added: OLD_ONLY" in text
    assert "env removed: NEW_ONLY" in text
    assert "label changed: com.docker.compose.config-hash" in text
    assert CANARY not in text


def test_a_container_without_name_or_image_is_rejected() -> None:
    """Inspect data that cannot be recreated gives a clear error."""
    from monitor.rollback.snapshot import SnapshotError

    with pytest.raises(SnapshotError, match="no container id, name or image"):
        Snapshot.from_inspect({"Id": "abc", "Config": {}})

"""The relabelled copy of a failed container: what it keeps, what it drops, what it says."""

from __future__ import annotations

from typing import Any

from monitor.rollback.retired_copy import FAILED_FROM_LABEL, retired_body, retired_labels

FAILED_ID = "5e0c7d2a91b3" + "0" * 52


def failed(**labels: str) -> dict[str, Any]:
    """`docker inspect` of a stopped Compose service container that exited with code 1."""
    return {
        "Id": FAILED_ID,
        "Name": "/app_backend_1_failed_5e0c7d2a91b3",
        "Image": "sha256:" + "b" * 64,
        "State": {
            "Running": False,
            "ExitCode": 1,
            "OOMKilled": False,
            "FinishedAt": "2026-11-29T03:00:00Z",
        },
        "Config": {
            "Image": "registry/app:bad",
            "Env": ["DATABASE_URL=postgresql://app:canary-pw@db/app"],
            "Cmd": ["node", "server.js"],
            "Labels": {
                "com.docker.compose.project": "app",
                "com.docker.compose.service": "backend",
                "com.docker.compose.oneoff": "False",
                "opsmon.enable": "true",
                "app.tier": "web",
                **labels,
            },
        },
        "HostConfig": {
            "NetworkMode": "app_default",
            "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
            "Binds": ["app_data:/data:rw"],
        },
        "NetworkSettings": {"Networks": {"app_default": {"Aliases": ["backend", "5e0c7d2a91b3"]}}},
        "Mounts": [],
    }


def test_compose_and_discovery_labels_go_and_the_origin_is_named() -> None:
    """No `com.docker.compose.*` or `opsmon.*` label of the failed container stays (Compose
    and discovery count by them); its own labels stay; labels name its id, project, service,
    exit code and saved log."""
    labels = retired_labels(failed(), {}, "/var/lib/opsmon/retired/x.log")
    assert labels == {
        "app.tier": "web",
        FAILED_FROM_LABEL: FAILED_ID,
        "opsmon.failed-project": "app",
        "opsmon.failed-service": "backend",
        "opsmon.failed-exit-code": "1",
        "opsmon.failed-oom-killed": "false",
        "opsmon.failed-finished-at": "2026-11-29T03:00:00Z",
        "opsmon.failed-logs": "/var/lib/opsmon/retired/x.log",
    }


def test_labels_the_image_carries_are_emptied() -> None:
    """A Compose label that comes from the image (a container cannot drop it) is set empty,
    so a `label=com.docker.compose.project=app` filter no longer matches."""
    labels = retired_labels(failed(), {"com.docker.compose.project": "app", "x": "1"}, None)
    assert labels["com.docker.compose.project"] == ""
    assert "opsmon.failed-logs" not in labels and "x" not in labels


def test_the_copy_runs_what_failed_but_never_restarts_and_joins_no_network() -> None:
    """Same image, command, environment and mounts; restart policy `no`; no endpoint with the
    service's aliases (a started copy must not answer for the service)."""
    body = retired_body(failed(), "registry/app:bad", {}, None)
    assert body["Image"] == "registry/app:bad" and body["Cmd"] == ["node", "server.js"]
    assert body["Env"] == failed()["Config"]["Env"]
    assert body["HostConfig"]["Binds"] == ["app_data:/data:rw"]
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert "NetworkingConfig" not in body

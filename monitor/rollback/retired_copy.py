"""The relabelled copy that replaces a failed container rollback kept: pure functions over
`docker inspect` data, no I/O.

The engine cannot change the labels of a container, and Compose counts every container with
the service's `com.docker.compose.*` labels as one of the service's (`docker compose ps`, and
`up -d`, which then removed the restored container and brought the failed one back). So the
failed container is replaced by a copy: the same image, command, environment and mounts, its
Compose and discovery labels removed, labels saying where it came from, never restarted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitor.docker.lifecycle import PROJECT_LABEL, SERVICE_LABEL
from monitor.rollback.snapshot import Snapshot

FAILED_FROM_LABEL = "opsmon.failed-from"  # the id of the container it is a copy of
_REMOVED_PREFIXES = ("com.docker.compose.", "opsmon.")
# Docker keeps a container's log only as long as the container: the copy names where the
# failed container's log was saved.
FAILED_LOGS_LABEL = "opsmon.failed-logs"


def retired_labels(
    original: Mapping[str, Any], image_labels: Mapping[str, str], logs: str | None
) -> dict[str, str]:
    """The copy's labels: the original's without Compose and discovery labels (those the image
    itself carries, which a container cannot drop, emptied), plus where it came from."""
    labels = {
        str(k): str(v) for k, v in ((original.get("Config") or {}).get("Labels") or {}).items()
    }
    kept = {k: v for k, v in labels.items() if not k.startswith(_REMOVED_PREFIXES)}
    kept.update({str(k): "" for k in image_labels if str(k).startswith(_REMOVED_PREFIXES)})
    state = original.get("State") or {}
    kept.update(
        {
            FAILED_FROM_LABEL: str(original.get("Id") or ""),
            "opsmon.failed-project": labels.get(PROJECT_LABEL, ""),
            "opsmon.failed-service": labels.get(SERVICE_LABEL, ""),
            "opsmon.failed-exit-code": str(state.get("ExitCode", "")),
            "opsmon.failed-oom-killed": str(bool(state.get("OOMKilled"))).lower(),
            "opsmon.failed-finished-at": str(state.get("FinishedAt") or ""),
        }
    )
    if logs:
        kept[FAILED_LOGS_LABEL] = logs
    return kept


def retired_body(
    original: Mapping[str, Any], image: str, image_labels: Mapping[str, str], logs: str | None
) -> dict[str, Any]:
    """The body of `POST /containers/create` for the copy of `original` (inspect data) on
    `image`: on no network of its own (no service aliases), restart policy `no`."""
    body = Snapshot.from_inspect(original).create_body(image)
    body.pop("NetworkingConfig", None)
    body["Labels"] = retired_labels(original, image_labels, logs)
    host = body["HostConfig"]
    host["RestartPolicy"] = {"Name": "no", "MaximumRetryCount": 0}
    host["AutoRemove"] = False
    return body

"""Retiring the failed container after a successful `recreate` rollback: it is replaced by a
relabelled copy (monitor/rollback/retired_copy.py), so Compose no longer counts it as one of
the service's containers, and its log is saved first (the engine drops a container's log
with the container).

Each step checks the engine first, so retiring again after a crash finishes what is left and
repeats nothing: the copy is found by its `opsmon.failed-from` label, the original by its id.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.logs import get_logger
from monitor.rollback.docker_ops import ContainerOps, DockerCallFailed
from monitor.rollback.journal import Rollback
from monitor.rollback.snapshot import short_id

# How much of the failed container's log is saved (the last lines are what explain a failed
# start; the whole log of a long-running container could be large).
LOG_TAIL = 5000


@dataclass(frozen=True)
class Retired:
    """The relabelled copy kept for inspection, and where the failed container's log is."""

    container_id: str
    logs: Path | None


def _running(data: dict[str, Any]) -> bool:
    return bool((data.get("State") or {}).get("Running"))


def _name(data: dict[str, Any]) -> str:
    return str(data.get("Name") or "").lstrip("/")


def _save(path: Path, content: bytes) -> Path | None:
    """Write the log readable by opsmon's user alone (a log may hold secrets)."""
    log = get_logger("rollback")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
    except OSError as exc:
        log.warning("retired_log_not_saved", path=str(path), error=str(exc))
        return None
    return path


async def retire_failed(ops: ContainerOps, record: Rollback, folder: Path) -> Retired:
    """Replace the failed container of `record` by its relabelled copy under the same name;
    its log goes to `folder`. Raises DockerCallFailed (nothing more is changed) when the
    failed container runs again or holds the service's name."""
    original_id = record.old_container_id
    original = await ops.inspect(original_id)
    copies = await ops.retired_copies(original_id)
    copy_id = str(copies[0]["Id"]) if copies else None
    path = folder / f"{record.failed_name}.log"
    logs: Path | None = path if path.exists() else None
    if original is not None:
        if _running(original):
            raise DockerCallFailed(
                f"{_name(original)} is running again (started by hand?): left as it is, "
                "with its Compose labels"
            )
        if _name(original) == record.old_name:
            raise DockerCallFailed(
                f"{short_id(original_id)} holds the service's name {record.old_name}: left as it is"
            )
        if copy_id is None:
            await ops.check_removal_allowed()  # else the copy could not replace it
            logs = _save(path, await ops.logs(original_id, LOG_TAIL))
            copy_id = await ops.create_retired_copy(original, str(logs) if logs else None)
        await ops.remove_retired(original_id)
    elif copy_id is None:
        raise DockerCallFailed(f"the failed container {short_id(original_id)} is gone")
    copy = await ops.inspect(copy_id)
    if copy is None:
        raise DockerCallFailed(f"the relabelled copy {short_id(copy_id)} vanished")
    if _name(copy) != record.failed_name:
        await ops.rename(copy_id, record.failed_name)
    get_logger("rollback").info(
        "failed_container_retired", rollback=record.id, container=record.failed_name
    )
    return Retired(copy_id, logs)

"""The `recreate` strategy on the real engine: the LKG container comes back with the same name,
env, labels and volumes; a failing step puts the old one back; a crash is finished once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.clock import SystemClock
from monitor.rollback.docker_ops import CreateRefused
from monitor.rollback.journal import Journal, Step
from monitor.rollback.recreate import RecreateStrategy, StrategyFailed
from monitor.rollback.snapshot import Snapshot
from monitor.rollback.store import open_store
from tests.support.rollback import Deployment, answers, wait_answers
from tests.support.rollback_parts import CANARY, Parts, deploy_v1_then_v2, plan

pytestmark = pytest.mark.docker


def starts(deployment: Deployment) -> int:
    """How many times a container of the service started (each start appends a line)."""
    mountpoint = deployment.client.api.inspect_volume(deployment.volume)["Mountpoint"]
    return len(Path(mountpoint, "starts").read_text().splitlines())


def kept(data: dict[str, Any]) -> dict[str, Any]:
    """What a restored container must share with the LKG one."""
    return {
        "name": data["Name"],
        "image": data["Image"],
        "env": sorted(data["Config"]["Env"]),
        "labels": data["Config"]["Labels"],
        "mounts": sorted(
            (m["Type"], m.get("Name") or m["Source"], m["Destination"]) for m in data["Mounts"]
        ),
        "restart": data["HostConfig"]["RestartPolicy"],
    }


async def test_recreate_restores_the_lkg_container(deployment: Deployment, parts: Parts) -> None:
    """v1 comes back under the same name with the same env, labels and volumes and answers
    again; the v2 container is kept, stopped, as <name>_failed_<id12>."""
    lkg = deploy_v1_then_v2(deployment)
    bad_id = deployment.inspect()["Id"]
    record = parts.journal.begin(plan(deployment, lkg))

    await parts.strategy.execute(record)

    restored = deployment.inspect()
    assert kept(restored) == _lkg_view(lkg)
    assert restored["State"]["Running"]
    wait_answers(deployment.health_url, 200)
    failed = deployment.inspect(bad_id)
    assert failed["Name"] == f"/{deployment.name}_failed_{bad_id[:12]}"
    assert not failed["State"]["Running"]
    assert failed["Image"] == deployment.images.ids["v2"]
    steps = [step for step, _ in parts.journal.steps(record.id)]
    assert steps == [
        Step.PLANNED,
        Step.STOP_OLD,
        Step.RENAME_OLD,
        Step.CREATE_NEW,
        Step.START_NEW,
    ]
    assert starts(deployment) == 3  # v1, v2, v1 again
    assert len(deployment.containers()) == 2


def _lkg_view(lkg: Snapshot) -> dict[str, Any]:
    """`kept` of the container the snapshot was taken from, rebuilt from the snapshot."""
    binds = lkg.host_config["Binds"]
    mounts = []
    for bind in binds:
        source, destination = bind.split(":")[:2]
        kind = "bind" if source.startswith("/") else "volume"
        mounts.append((kind, source, destination))
    return {
        "name": f"/{lkg.name}",
        "image": lkg.image_id,
        "env": sorted(lkg.config["Env"]),
        "labels": dict(lkg.config["Labels"]),
        "mounts": sorted(mounts),
        "restart": lkg.host_config["RestartPolicy"],
    }


async def test_a_failing_step_puts_the_old_container_back(
    deployment: Deployment, parts: Parts
) -> None:
    """When create fails (the image is gone), the v2 container gets its name back and runs
    again, and no other container is left behind."""
    lkg = deploy_v1_then_v2(deployment)
    bad_id = deployment.inspect()["Id"]
    record = parts.journal.begin(plan(deployment, lkg, image="local/opsmon-rb-gone:none"))

    with pytest.raises(StrategyFailed) as failure:
        await parts.strategy.execute(record)

    assert failure.value.undone
    assert "create" in failure.value.reason and "gone" in failure.value.reason
    current = deployment.inspect()
    assert current["Id"] == bad_id and current["State"]["Running"]
    assert len(deployment.containers()) == 1
    assert Step.UNDO in [step for step, _ in parts.journal.steps(record.id)]
    assert answers(deployment.health_url) == 404


async def test_guard_refuses_a_create_that_differs_from_the_snapshot(
    deployment: Deployment, parts: Parts
) -> None:
    """A create request with anything but the image changed is refused before it reaches
    the engine (the refusal names the setting, never a value)."""
    deployment.env = {"API_TOKEN": CANARY}
    deployment.deploy("v1")
    lkg = Snapshot.from_inspect(deployment.inspect())
    body = lkg.create_body(lkg.image)
    body["Env"] = [*body["Env"], "EXTRA=1"]

    with pytest.raises(CreateRefused) as refused:
        await parts.ops.create(body, f"{deployment.name}-copy", lkg)
    assert "snapshot's container" in refused.value.reason
    with pytest.raises(CreateRefused) as refused:
        await parts.ops.create(body, lkg.name, lkg)
    assert "differs from the last known good snapshot in Env" in refused.value.reason
    assert CANARY not in refused.value.reason
    other = lkg.create_body(deployment.images.ref("v2"))
    other["HostConfig"]["Privileged"] = True
    with pytest.raises(CreateRefused, match="HostConfig"):
        await parts.ops.create(other, lkg.name, lkg)
    assert len(deployment.containers()) == 1


async def test_resume_after_a_crash_between_rename_and_create(
    deployment: Deployment, parts: Parts, tmp_path: Path
) -> None:
    """A process that died after stopping and renaming v2 left the journal at rename_old; a
    new process finishes the rollback, creating and starting v1 exactly once."""
    lkg = deploy_v1_then_v2(deployment)
    record = parts.journal.begin(plan(deployment, lkg))
    parts.journal.step(record, Step.STOP_OLD, datetime.now(UTC))
    deployment.client.api.stop(record.old_container_id, timeout=5)
    parts.journal.step(record, Step.RENAME_OLD, datetime.now(UTC))
    deployment.client.api.rename(record.old_container_id, record.failed_name)

    store = open_store(tmp_path / "state")  # the next process opens the file again
    journal = Journal(store)
    [found] = journal.in_flight(deployment.service)
    assert found.step is Step.RENAME_OLD and found.snapshot == lkg
    await RecreateStrategy(parts.ops, journal, SystemClock()).resume(found)

    wait_answers(deployment.health_url, 200)
    assert deployment.inspect()["Image"] == deployment.images.ids["v1"]
    assert len(deployment.containers()) == 2
    assert starts(deployment) == 3
    steps = [step for step, _ in journal.steps(found.id)]
    assert steps.count(Step.CREATE_NEW) == 1 and steps.count(Step.STOP_OLD) == 1
    store.close()


async def test_resume_adopts_a_replacement_created_before_the_crash(
    deployment: Deployment, parts: Parts
) -> None:
    """Killed after create but before the new id was written: the resumed rollback adopts the
    container it finds under the name instead of creating a second one."""
    lkg = deploy_v1_then_v2(deployment)
    record = parts.journal.begin(plan(deployment, lkg))
    deployment.client.api.stop(record.old_container_id, timeout=5)
    deployment.client.api.rename(record.old_container_id, record.failed_name)
    parts.journal.step(record, Step.CREATE_NEW, datetime.now(UTC))
    made = await parts.ops.create(lkg.create_body(lkg.image), lkg.name, lkg)

    await parts.strategy.resume(record)

    assert record.new_container_id == made
    assert deployment.inspect()["Id"] == made
    assert len(deployment.containers()) == 2
    wait_answers(deployment.health_url, 200)


async def test_a_container_someone_else_created_is_left_alone(
    deployment: Deployment, parts: Parts
) -> None:
    """If another deploy took the name meanwhile, the rollback stops without touching it."""
    lkg = deploy_v1_then_v2(deployment)
    record = parts.journal.begin(plan(deployment, lkg))
    deployment.client.api.stop(record.old_container_id, timeout=5)
    deployment.client.api.rename(record.old_container_id, record.failed_name)
    parts.journal.step(record, Step.RENAME_OLD, datetime.now(UTC))
    theirs = deployment.deploy("v2")

    with pytest.raises(StrategyFailed, match="appeared during the rollback") as failure:
        await parts.strategy.resume(record)

    assert not failure.value.undone
    assert deployment.inspect()["Id"] == theirs

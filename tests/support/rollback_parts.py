"""Rollback's parts on the local engine for the strategy-level tests: the journal in a fresh
state folder, the engine calls and the `recreate` strategy, and the journal record of a
rollback of a Deployment to its LKG snapshot."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.clock import SystemClock
from monitor.docker.access import DockerAccess
from monitor.rollback.docker_ops import ContainerOps
from monitor.rollback.journal import Journal, Rollback, Status, Step, new_id, owner_id
from monitor.rollback.recreate import RecreateStrategy, failed_name
from monitor.rollback.snapshot import Snapshot
from monitor.rollback.store import RollbackStore, open_store
from tests.support.rollback import Deployment, wait_answers

# An environment value of the deployed service: a secret nothing may print.
CANARY = "canary-" + uuid.uuid4().hex


@dataclass
class Parts:
    """The rollback journal, the engine calls and the recreate strategy."""

    store: RollbackStore
    journal: Journal
    ops: ContainerOps
    strategy: RecreateStrategy


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    """A journal in a fresh state folder and the strategy on the local engine."""
    store = open_store(tmp_path / "state")
    journal = Journal(store)
    ops = ContainerOps(DockerAccess("unix:///var/run/docker.sock"))
    yield Parts(store, journal, ops, RecreateStrategy(ops, journal, SystemClock()))
    ops.close()
    store.close()


def plan(deployment: Deployment, lkg: Snapshot, image: str | None = None) -> Rollback:
    """The journal record of rolling the current container back to `lkg`."""
    bad = deployment.inspect()
    now = datetime.now(UTC)
    return Rollback(
        id=new_id(),
        service=deployment.service,
        project=deployment.project,
        strategy="recreate",
        trigger="auto",
        status=Status.IN_PROGRESS,
        step=Step.PLANNED,
        bad_image=bad["Config"]["Image"],
        bad_image_id=bad["Image"],
        target_image=image or lkg.image,
        target_image_id=lkg.image_id,
        target_tag="v1",
        old_container_id=bad["Id"],
        old_name=deployment.name,
        old_was_running=True,
        failed_name=failed_name(deployment.name, bad["Id"]),
        reason="test",
        evidence=[],
        owner=owner_id(),
        started_at=now,
        updated_at=now,
        snapshot=lkg,
    )


def deploy_v1_then_v2(deployment: Deployment) -> Snapshot:
    """v1 runs and answers, its snapshot is taken, then v2 (broken) replaces it."""
    deployment.env = {"API_TOKEN": CANARY}
    deployment.deploy("v1")
    wait_answers(deployment.health_url, 200)
    lkg = Snapshot.from_inspect(deployment.inspect())
    deployment.deploy("v2")
    wait_answers(deployment.health_url, 404)
    return lkg

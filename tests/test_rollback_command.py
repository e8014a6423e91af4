"""The `command` strategy: the deploy command runs once with CI_COMMIT_SHA set to the LKG
tag, within its timeout, and its output is kept redacted and bounded."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.clock import SystemClock
from monitor.docker.access import DockerAccess
from monitor.redaction import Redactor
from monitor.rollback.command import (
    OUTPUT_LIMIT,
    CommandStrategy,
    bound,
    image_tag,
    render,
    run_command,
)
from monitor.rollback.config import ServiceRollback, Strategy
from monitor.rollback.docker_ops import ContainerOps
from monitor.rollback.journal import Journal, Rollback, Status, Step, new_id, owner_id
from monitor.rollback.recreate import StrategyFailed
from monitor.rollback.snapshot import Snapshot
from monitor.rollback.store import RollbackStore, open_store
from tests.support.rollback import docker_client

SECRET = "canary-command-secret"
ENV_SECRET = "canary-env-value"
RECORDER = """
import json, os, sys
out = sys.argv[1]
with open(out, "a") as f:
    f.write(json.dumps({"argv": sys.argv[2:], "cwd": os.getcwd(),
        "env": {k: v for k, v in os.environ.items() if k.startswith(("CI_", "OPSMON_ROLLBACK"))}})
        + "\\n")
print("deploying with", os.environ["CI_COMMIT_SHA"], "token=" + sys.argv[-1])
print("env value", os.environ.get("LEAK", ""))
sys.exit(int(os.environ.get("EXIT", "0")))
"""


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[tuple[RollbackStore, Journal]]:
    """A journal in a fresh state folder."""
    store = open_store(tmp_path / "state")
    yield store, Journal(store)
    store.close()


def record(snapshot: Snapshot | None = None) -> Rollback:
    """A command rollback of `web` from app:v2 to registry.local:5000/app:v1."""
    now = datetime.now(UTC)
    return Rollback(
        id=new_id(),
        service="web",
        project="shop",
        strategy="command",
        trigger="auto",
        status=Status.IN_PROGRESS,
        step=Step.PLANNED,
        bad_image="registry.local:5000/app:v2",
        bad_image_id="sha256:" + "2" * 64,
        target_image="registry.local:5000/app:v1",
        target_image_id="sha256:" + "1" * 64,
        target_tag="v1",
        old_container_id="",
        old_name="",
        old_was_running=True,
        failed_name="",
        reason="test",
        evidence=[],
        owner=owner_id(),
        started_at=now,
        updated_at=now,
        snapshot=snapshot,
    )


def strategy(
    journal: Journal, script: Path, log: Path, tmp_path: Path, **env: str
) -> CommandStrategy:
    """The strategy with the recorder as the configured command."""
    settings = ServiceRollback(
        strategy=Strategy.COMMAND,
        command=f"{sys.executable} {script} {log} up -d {{service}} {{lkg_image}} {SECRET}",
        cwd=str(tmp_path),
        timeout=10,
    )
    ops = ContainerOps(DockerAccess("unix:///var/run/docker.sock"))
    return CommandStrategy(
        {"web": settings},
        ops,
        journal,
        SystemClock(),
        Redactor([SECRET]),
        {**os.environ, **env},
    )


async def test_command_runs_once_with_the_lkg_tag_in_its_environment(
    journal: tuple[RollbackStore, Journal], tmp_path: Path
) -> None:
    """The script sees CI_COMMIT_SHA=v1, the placeholders filled in, the configured working
    folder; its output is stored with the secrets masked."""
    store, jr = journal
    script, log = tmp_path / "record.py", tmp_path / "calls.jsonl"
    script.write_text(RECORDER)
    snapshot = Snapshot("c", "web", "app:v1", "sha256:1", {"Env": [f"LEAK={ENV_SECRET}"]}, {}, {})
    rollback = jr.begin(record(snapshot))
    runner = strategy(jr, script, log, tmp_path, LEAK=ENV_SECRET)

    await runner.execute(rollback)

    [call] = [json.loads(line) for line in log.read_text().splitlines()]
    assert call["argv"] == ["up", "-d", "web", "registry.local:5000/app:v1", SECRET]
    assert call["cwd"] == str(tmp_path)
    assert call["env"]["CI_COMMIT_SHA"] == "v1"
    assert call["env"]["OPSMON_ROLLBACK_SERVICE"] == "web"
    assert call["env"]["OPSMON_ROLLBACK_BAD_IMAGE"] == "registry.local:5000/app:v2"
    stored = jr.get(rollback.id)
    assert stored is not None
    assert "deploying with v1 token=***" in stored.output
    assert SECRET not in stored.output and ENV_SECRET not in stored.output
    assert [s for s, _ in jr.steps(rollback.id)] == [Step.PLANNED, Step.RUN_COMMAND]
    assert store is not None


async def test_failing_command_is_a_failed_rollback(
    journal: tuple[RollbackStore, Journal], tmp_path: Path
) -> None:
    """A non-zero exit code fails the rollback, naming the code."""
    _, jr = journal
    script, log = tmp_path / "record.py", tmp_path / "calls.jsonl"
    script.write_text(RECORDER)
    rollback = jr.begin(record())
    with pytest.raises(StrategyFailed, match="exited with code 3"):
        await strategy(jr, script, log, tmp_path, EXIT="3").execute(rollback)


async def test_resume_never_runs_the_command_a_second_time(
    journal: tuple[RollbackStore, Journal], tmp_path: Path
) -> None:
    """A daemon killed while the command ran does not run it again after a restart."""
    docker_client().close()  # it asks the engine what the service runs now
    _, jr = journal
    script, log = tmp_path / "record.py", tmp_path / "calls.jsonl"
    script.write_text(RECORDER)
    rollback = jr.begin(record())
    jr.step(rollback, Step.RUN_COMMAND, datetime.now(UTC))
    with pytest.raises(StrategyFailed, match="not run a second time"):
        await strategy(jr, script, log, tmp_path).resume(rollback)
    assert not log.exists()


async def test_command_is_killed_at_its_timeout(tmp_path: Path) -> None:
    """A hanging command and its children are killed after the limit."""
    started = time.monotonic()
    result = await run_command(
        ["sh", "-c", "sleep 30 & sleep 30; echo never"], dict(os.environ), None, 0.5, str
    )
    assert result.exit_code is None and not result.ok
    assert "killed after 500ms" in result.output
    assert time.monotonic() - started < 10


async def test_missing_program_is_a_clear_failure() -> None:
    """A command that cannot start says so."""
    result = await run_command(["/nonexistent/deploy"], {}, None, 5, str)
    assert result.exit_code == 127 and "cannot run '/nonexistent/deploy'" in result.output


def test_tags_placeholders_and_bounds() -> None:
    """Tags come from the reference (registry ports are not tags); placeholders fill single
    words; long output keeps its head and tail."""
    assert image_tag("registry:5000/app:abc123") == "abc123"
    assert image_tag("registry:5000/app") == ""
    assert image_tag("app@sha256:" + "1" * 64) == ""
    assert render("deploy '{service} x' {lkg_tag}", {"service": "web", "lkg_tag": "v1"}) == [
        "deploy",
        "web x",
        "v1",
    ]
    text = "a" * OUTPUT_LIMIT + "b" * OUTPUT_LIMIT
    cut = bound(text)
    assert cut.startswith("aaa") and cut.endswith("bbb") and "characters left out" in cut
    assert len(cut) < OUTPUT_LIMIT + 100

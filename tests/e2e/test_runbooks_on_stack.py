"""Runbooks work where on-call stands: every command of every runbook's Diagnosis section,
typed in a shell next to the stack's compose file with opsmon's config, exits 0 within 10 s
against the running stack."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from monitor.config import load_config
from monitor.runbook_context import RunbookContext
from monitor.runbooks import load_catalogue, localize_runbook
from monitor.settings import Settings
from tests.e2e.deployment import COMPOSE_FILE, Deployment
from tests.e2e.watcher import Watcher
from tests.support.receiver import Receiver

COMMAND_TIMEOUT = 10.0


def diagnosis_commands(config: Path) -> list[tuple[str, str]]:
    """(runbook id, command line) for every line of every Diagnosis code block, rendered for
    the running config as the daemon's pages and `opsmon explain` show them."""
    context = RunbookContext.of(load_config(config, environ=dict(os.environ)).config)
    found = []
    for original in load_catalogue(Settings().runbooks_dir).runbooks.values():
        runbook = localize_runbook(original, context)
        for step in runbook.steps:
            command = step.command.replace("\\\n", " ")
            for line in command.splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    found.append((runbook.id, line))
    return found


def run(command: str, deployment: Deployment, config: Path) -> str | None:
    """Run one command as on-call would; None if it exited 0 in time, else what went wrong."""
    env = {
        **deployment.environment(),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "OPSMON_CONFIG": str(config),
        "COMPOSE_FILE": str(COMPOSE_FILE),
        "COMPOSE_PROJECT_NAME": deployment.project,
    }
    try:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=COMPOSE_FILE.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"did not return within {COMMAND_TIMEOUT:.0f}s"
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()
        return f"exit {done.returncode}: {last[-1] if last else ''}"
    return None


def test_every_diagnosis_command_runs_against_the_stack(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Each Diagnosis command of each runbook exits 0 within 10 s next to the running stack."""
    # On-call diagnoses a stack that opsmon watches: its /healthz and /metrics answer.
    watcher = Watcher(deployment, tmp_path, Receiver())
    config = watcher.configure()
    commands = diagnosis_commands(config)
    assert commands, "no Diagnosis commands found"
    watcher.start()
    try:
        # Independent read-only commands: a few at a time keeps the suite's time down.
        with ThreadPoolExecutor(max_workers=4) as pool:
            problems = list(pool.map(lambda c: run(c[1], deployment, config), commands))
    finally:
        watcher.stop()
    failures = [
        f"{runbook_id}: {command!r}: {problem}"
        for (runbook_id, command), problem in zip(commands, problems, strict=True)
        if problem is not None
    ]
    assert not failures, f"{len(failures)} of {len(commands)} commands failed:\n" + "\n".join(
        failures
    )

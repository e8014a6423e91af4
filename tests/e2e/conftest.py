"""Fixtures of the end-to-end suite: the stack's images (built if missing, locally; in CI
scripts/test-env.sh has built them and a missing one fails), a fresh deployment per scenario,
`opsmon run` watching it, and a summary of what each scenario observed (pages, rollback
decision, seconds fault -> page and bad deploy -> healthy), printed at the end of the session
and written to $OPSMON_E2E_SUMMARY (default /tmp/opsmon-e2e-summary.md)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e import images
from tests.e2e.deployment import Deployment, logs
from tests.e2e.watcher import Watcher
from tests.support.environment import IN_CI, missing
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until

SUMMARY_PATH = Path(os.environ.get("OPSMON_E2E_SUMMARY", "/tmp/opsmon-e2e-summary.md"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is marked `e2e` (and needs the engine)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def stack_images() -> images.Images:
    """The stack's images; built here when missing outside CI, a failure when missing in CI."""
    if shutil.which("docker-compose") is None or shutil.which("docker") is None:
        missing("docker and docker-compose are needed (scripts/test-env.sh installs them)")
    absent = images.missing_images()
    if absent and IN_CI:
        pytest.fail(f"e2e images missing (scripts/test-env.sh builds them): {absent}")
    if absent:
        images.ensure(print)
    return images.images()


@dataclass
class Row:
    """What one scenario observed."""

    scenario: str
    pages: str = ""
    decision: str = ""
    fault_to_page: float | None = None
    deploy_to_healthy: float | None = None
    outcome: str = ""


@dataclass
class Summary:
    """The scenario table of the session."""

    rows: list[Row] = field(default_factory=list)

    def markdown(self) -> str:
        """The table as Markdown."""
        lines = [
            "| scenario | outcome | pages sent | rollback decision | s fault->page "
            "| s bad deploy->healthy |",
            "| --- | --- | --- | --- | --- | --- |",
        ]

        def secs(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f}"

        for r in self.rows:
            lines.append(
                f"| {r.scenario} | {r.outcome} | {r.pages or 'none'} | {r.decision or 'none'} "
                f"| {secs(r.fault_to_page)} | {secs(r.deploy_to_healthy)} |"
            )
        return "\n".join(lines) + "\n"


_SUMMARY = Summary()


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Iterator[Row]:
    """The scenario's row of the summary table; the test fills it in as it observes."""
    row = Row(scenario=request.node.name.removeprefix("test_"))
    _SUMMARY.rows.append(row)
    yield row


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Note each scenario's outcome (passed or failed) in its row."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call":
        return
    name = item.name.removeprefix("test_")
    for row in _SUMMARY.rows:
        if row.scenario == name:
            row.outcome = report.outcome


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the scenario table and write it to the summary file."""
    if not _SUMMARY.rows:
        return
    table = _SUMMARY.markdown()
    SUMMARY_PATH.write_text(table)
    terminalreporter.write_sep("-", f"e2e scenarios (also in {SUMMARY_PATH})")
    terminalreporter.write(table)


@pytest.fixture
def deployment(stack_images: images.Images) -> Iterator[Deployment]:
    """A fresh Compose project of the stack running the good release, serving."""
    deployment = Deployment(stack_images)
    try:
        deployment.deploy("good")
        try:
            deployment.wait_serving(timeout=90)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nbackend log:\n{logs(deployment, 'backend')}\n"
                f"frontend log:\n{logs(deployment, 'frontend')}"
            ) from exc
        yield deployment
    finally:
        deployment.down()


@pytest.fixture
def watcher(deployment: Deployment, tmp_path: Path) -> Iterator[Watcher]:
    """`opsmon run` on the deployment, started once the good release is its last known good."""
    hooks = Receiver().start()
    watcher = Watcher(deployment, tmp_path, hooks)
    watcher.configure()
    try:
        watcher.start()
        good = stack_images_ref(deployment, "good")
        wait_until(lambda: watcher.lkg() == good, timeout=60, interval=0.2)
        yield watcher
    finally:
        watcher.stop()
        hooks.stop()


def stack_images_ref(deployment: Deployment, variant: str) -> str:
    """The image reference of a backend variant."""
    return deployment.images.backend[variant]


__all__ = ["IN_CI", "Row"]

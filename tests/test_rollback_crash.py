"""A daemon SIGKILLed in the middle of a rollback finishes it, exactly once, when it starts
again; and behind a socket proxy that allows only rollback's calls, nothing is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.rollback.journal import Journal, Status, Step
from monitor.rollback.store import open_store
from tests.support.docker_proxy import DockerProxy
from tests.support.rollback import Deployment, wait_answers
from tests.support.rollback_daemon import Opsmon

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def proxy() -> Iterator[DockerProxy]:
    """The socket proxy opsmon talks to."""
    server = DockerProxy().start()
    yield server
    server.stop()


def starts(deployment: Deployment) -> int:
    """How many times a container of the service started (each start appends a line)."""
    mountpoint = deployment.client.api.inspect_volume(deployment.volume)["Mountpoint"]
    return len(Path(mountpoint, "starts").read_text().splitlines())


def test_sigkill_between_stopping_v2_and_starting_v1_completes_exactly_once(
    deployment: Deployment, opsmon: Opsmon, proxy: DockerProxy
) -> None:
    """The daemon is killed while its `start` of the restored v1 is on the wire (v2 stopped
    and renamed, v1 created). After a restart it starts v1 and verifies it: one rollback,
    one create, v1 started once, RollbackPerformed sent once."""
    opsmon.configure(docker_host=proxy.host)
    deployment.deploy("v1")
    opsmon.start()
    opsmon.wait_lkg("v1")
    proxy.hold(lambda method, path: method == "POST" and path.endswith("/start"))
    bad_id = deployment.deploy("v2")

    assert proxy.held.wait(40), "the rollback never tried to start the restored container"
    opsmon.kill()
    proxy.drop_held()

    # What the killed daemon left: v2 stopped and renamed, v1 created but not started.
    left = deployment.inspect()
    assert left["Image"] == deployment.images.ids["v1"] and not left["State"]["Running"]
    assert deployment.inspect(bad_id)["Name"] == f"/{deployment.name}_failed_{bad_id[:12]}"
    store = open_store(opsmon.state_dir)
    [interrupted] = Journal(store).in_flight("web")
    assert interrupted.step is Step.START_NEW
    store.close()

    opsmon.start()
    opsmon.wait_alert("RollbackPerformed", timeout=40)
    wait_answers(deployment.health_url, 200)

    store = open_store(opsmon.state_dir)
    journal = Journal(store)
    [done] = journal.recent("web")
    assert done.id == interrupted.id and done.status is Status.SUCCEEDED
    steps = [step for step, _ in journal.steps(done.id)]
    assert steps.count(Step.CREATE_NEW) == 1 and steps.count(Step.STOP_OLD) == 1
    assert steps.count(Step.START_NEW) == 2  # written before the lost call and before the redo
    store.close()
    assert deployment.inspect()["Id"] == left["Id"]
    # The failed v2 is kept as a copy without the service's Compose labels.
    assert [c["Id"] for c in deployment.containers()] == [left["Id"]]
    kept = deployment.inspect(f"{deployment.name}_failed_{bad_id[:12]}")
    assert kept["Config"]["Labels"]["opsmon.failed-from"] == bad_id
    assert starts(deployment) == 3  # v1, v2, and v1 once more
    assert len(opsmon.alerts("RollbackPerformed")) == 1

    changes = [call.change for call in proxy.changes()]
    # The rollback, then the failed container retired: a removal probe (of no container), its
    # copy made, it removed, the copy named.
    retire = ["remove", "create", "remove", "rename"]
    assert changes == ["stop", "rename", "create", "start", "start", *retire]
    assert not [call for call in proxy.calls if call.verdict == "denied"]

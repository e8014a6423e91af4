"""Which container is a Compose service's: the containers rollback retires (`<name>_failed_<id12>`,
`<name>_unused_<id12>`) keep the service's Compose labels, yet opsmon never takes one for the
service's container (checks, rollback, discovery), on the real engine."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from monitor.docker.discovery import Discovery
from monitor.docker.selection import Selector, best_candidate, is_retired_name
from monitor.rollback.docker_ops import ContainerOps
from tests.support.cli import run_opsmon
from tests.support.rollback import Deployment, wait_answers
from tests.support.rollback_parts import Parts, deploy_v1_then_v2, plan

pytestmark = pytest.mark.docker


def opsmon_sees(deployment: Deployment, tmp_path: Path) -> dict[str, object]:
    """`opsmon check --json` of a container check on the deployment's service: its facts."""
    path = tmp_path / "opsmon.yml"
    path.write_text(
        textwrap.dedent(f"""\
        docker: {{host: "unix:///var/run/docker.sock"}}
        checks:
          - {{name: web-container, type: container, project: {deployment.project}, service: web}}
        """)
    )
    done = run_opsmon("check", "--config", str(path), "--json")
    assert done.returncode in (0, 1), done.stderr
    (entry,) = json.loads(done.stdout)
    facts: dict[str, object] = entry["facts"]
    return facts


async def service_container(ops: ContainerOps, deployment: Deployment) -> str | None:
    """The container rollback takes for the service (as `RollbackCoordinator.current`)."""
    summaries = await ops.service_containers(deployment.service, deployment.project)
    return best_candidate(summaries, Selector(deployment.project, deployment.service))


async def test_a_failed_container_started_by_hand_is_not_the_service(
    deployment: Deployment, parts: Parts, tmp_path: Path
) -> None:
    """After a rollback, the kept v2 container started by hand (to look at it) while the
    restored one is stopped is still not the service's: opsmon reports the restored one."""
    lkg = deploy_v1_then_v2(deployment)
    bad_id = deployment.inspect()["Id"]
    await parts.strategy.execute(parts.journal.begin(plan(deployment, lkg)))
    restored = deployment.inspect()["Id"]
    deployment.client.api.stop(restored, timeout=5)
    deployment.client.api.start(bad_id)

    assert await service_container(parts.ops, deployment) == restored
    facts = opsmon_sees(deployment, tmp_path)
    assert facts["CONTAINER"] == deployment.name and facts["STATE"] == "exited"


async def test_the_replacement_set_aside_by_an_undo_is_not_the_service(
    deployment: Deployment, parts: Parts, tmp_path: Path
) -> None:
    """A rollback of an exited v2 that is undone leaves the v1 replacement stopped as
    `<name>_unused_<id12>`, created after v2: the service's container is still v2."""
    lkg = deploy_v1_then_v2(deployment)
    bad_id = deployment.inspect()["Id"]
    deployment.client.api.stop(bad_id, timeout=5)
    record = parts.journal.begin(replace(plan(deployment, lkg), old_was_running=False))
    await parts.strategy.execute(record)
    await parts.strategy.undo(parts.journal.get(record.id) or record)
    unused = [c["Id"] for c in deployment.containers() if "_unused_" in c["Names"][0]]
    assert len(unused) == 1 and deployment.inspect()["Id"] == bad_id

    assert await service_container(parts.ops, deployment) == bad_id
    facts = opsmon_sees(deployment, tmp_path)
    assert facts["CONTAINER"] == deployment.name
    assert facts["IMAGE"] == deployment.images.ref("v2")


async def test_discovery_plans_from_the_service_container_not_the_failed_one(
    deployment: Deployment, parts: Parts
) -> None:
    """Discovered checks take the labels of the service's container, not those of the
    older v2 container kept as `_failed_` (which a bad deploy may have changed)."""
    lkg = deploy_v1_then_v2(deployment)
    await parts.strategy.execute(parts.journal.begin(plan(deployment, lkg)))
    summaries = deployment.containers()
    assert len(summaries) == 2
    by_name = {s["Names"][0].lstrip("/"): s for s in summaries}
    # The labels as the v2 deploy changed them (the engine cannot relabel; a copy shows it).
    failed = next(s for n, s in by_name.items() if is_retired_name(n))
    failed = {**failed, "Labels": {**failed["Labels"], "opsmon.http.url": "http://127.0.0.1:1/"}}
    restored = {**by_name[deployment.name]}
    restored["Labels"] = {**restored["Labels"], "opsmon.http.url": deployment.health_url}
    plan_ = Discovery({}).plan([failed, restored], reserved=())
    assert [s.url for s in plan_.specs.values() if s.type == "http"] == [  # type: ignore[attr-defined]
        deployment.health_url
    ]
    wait_answers(deployment.health_url, 200)


@pytest.mark.parametrize(
    ("name", "retired"),
    [
        ("app_backend_1_failed_5e0c7d2a91b3", True),
        ("app_backend_1_unused_5e0c7d2a91b3", True),
        ("app-backend-1_failed_0123456789ab", True),
        ("app_backend_1", False),
        ("app_failed_backend_1", False),
        ("app_backend_1_failed_5e0c7d2a", False),
        ("app_backend_1_failed_5E0C7D2A91B3", False),
    ],
)
def test_retired_names(name: str, retired: bool) -> None:
    """Only the names rollback gives (`_failed_`/`_unused_` and a 12-digit hex id) retire."""
    assert is_retired_name(name) is retired
    assert (
        Selector(project="app", service="backend").matches(
            {"com.docker.compose.project": "app", "com.docker.compose.service": "backend"}, name
        )
        is not retired
    )
    assert Selector(name=name).matches({}, name)

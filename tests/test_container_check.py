"""`type: container` against real containers: state, health, exit reasons, OOM, environment."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.checks.container import ContainerCheck, ContainerSpec
from monitor.checks.context import CheckContext
from monitor.config import ConfigError, load_config
from monitor.core.result import CheckResult
from monitor.docker.access import DockerAccess
from monitor.metrics import Metrics
from tests.support.docker import MAIN_HOST, Stack, nanoseconds, stack, wait_for_state
from tests.support.waiting import async_wait_until

pytestmark = pytest.mark.docker
CANARY = "canary-env-value-7f3a91"


@pytest.fixture
def compose() -> Iterator[Stack]:
    with stack() as made:
        yield made


@pytest.fixture
async def context(metrics: Metrics) -> AsyncIterator[CheckContext]:
    made = CheckContext(metrics, docker=DockerAccess(MAIN_HOST))
    yield made
    assert made.docker is not None
    await made.docker.aclose()
    await made.http.aclose()


def make_check(context: CheckContext, **fields: Any) -> ContainerCheck:
    spec = ContainerSpec.model_validate({"name": "web", "type": "container", **fields})
    return ContainerCheck(spec, context)


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def until(check: ContainerCheck, predicate: Any, within: float = 20) -> CheckResult:
    """Run the check until its result satisfies `predicate`."""
    last: list[CheckResult] = []

    async def attempt() -> CheckResult | None:
        result = await check.run()
        last[:] = [result]
        return result if predicate(result) else None

    try:
        found = await async_wait_until(attempt, timeout=within, interval=0.1)
    except AssertionError:
        raise AssertionError(f"last result: {last}") from None
    assert found is not None
    return found


async def test_running_healthy_container(
    compose: Stack, context: CheckContext, metrics: Metrics
) -> None:
    """A running container with a passing HEALTHCHECK is healthy, with its facts and metrics."""
    compose.run(
        "web",
        "sleep 300",
        healthcheck={"test": ["CMD-SHELL", "true"], "interval": nanoseconds(0.2), "retries": 1},
    )
    check = make_check(context, project=compose.project, service="web")
    result = await until(check, lambda r: r.facts.get("HEALTH") == "healthy")
    assert result.ok, result.reason
    facts = result.facts
    assert facts["STATE"] == "running"
    assert facts["CONTAINER"] == f"{compose.project}-web-1"
    assert facts["IMAGE"] == "local/busybox:1"
    assert str(facts["IMAGE_ID"]).startswith("sha256:")
    assert facts["STARTED_AT"] and facts["RESTARTS"] == 0 and facts["OOM_KILLED"] is False
    labels = {"project": compose.project, "service": "web"}
    assert sample(metrics, "opsmon_container_up", **labels) == 1
    assert sample(metrics, "opsmon_container_health_status", status="healthy", **labels) == 1
    assert sample(metrics, "opsmon_container_health_status", status="unhealthy", **labels) == 0


async def test_failing_healthcheck_is_unhealthy_with_probe_output(
    compose: Stack, context: CheckContext
) -> None:
    """A failing HEALTHCHECK makes the check fail as `unhealthy`, quoting the probe's output."""
    compose.run(
        "api",
        "sleep 300",
        healthcheck={
            "test": ["CMD-SHELL", "echo database probe failed; exit 1"],
            "interval": nanoseconds(0.2),
            "retries": 1,
        },
    )
    check = make_check(context, project=compose.project, service="api")
    result = await until(check, lambda r: r.facts.get("HEALTH") == "unhealthy")
    assert not result.ok and result.kind == "unhealthy"
    assert "database probe failed" in result.reason
    assert result.facts["HEALTH_OUTPUT"] == "database probe failed"


async def test_conditions_can_expect_a_finished_job(compose: Stack, context: CheckContext) -> None:
    """Conditions replace the default judgement: a one-shot job that exited 0 can be healthy."""
    compose.run("migrate", "exit 0")
    wait_for_state(compose, f"{compose.project}-migrate-1", "exited")
    check = make_check(
        context,
        project=compose.project,
        service="migrate",
        conditions=["[STATE] == exited", "[EXIT_CODE] == 0"],
    )
    assert (await check.run()).ok
    failing = make_check(
        context, project=compose.project, service="migrate", conditions=["[EXIT_CODE] == 3"]
    )
    result = await failing.run()
    assert not result.ok and result.kind == "exited"
    assert (
        result.reason.startswith("exited with code 0") and "[EXIT_CODE] (0) == 3" in result.reason
    )


async def test_crash_reports_exit_code(compose: Stack, context: CheckContext) -> None:
    """A container that exits non-zero is reported as `exited with code N`."""
    compose.run("worker", "exit 3")
    wait_for_state(compose, f"{compose.project}-worker-1", "exited")
    result = await make_check(context, project=compose.project, service="worker").run()
    assert not result.ok and result.kind == "exited"
    assert result.reason.startswith("exited with code 3")
    assert result.facts["EXIT_CODE"] == 3


async def test_oom_kill_is_reported_and_counted_once(
    compose: Stack, context: CheckContext, metrics: Metrics
) -> None:
    """A container killed for memory is `OOM-killed`, and counted once however often checked."""
    compose.run("hog", 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo "$x"', mem_limit="16m")
    state = wait_for_state(compose, f"{compose.project}-hog-1", "exited")
    assert state["OOMKilled"], state
    check = make_check(context, project=compose.project, service="hog")
    first, second = await check.run(), await check.run()
    assert first.kind == second.kind == "oom"
    assert first.reason.startswith("OOM-killed")
    assert first.facts["OOM_KILLED"] is True
    labels = {"project": compose.project, "service": "hog"}
    assert sample(metrics, "opsmon_container_oom_kills_total", **labels) == 1


async def test_missing_required_env_names_without_values(
    compose: Stack, context: CheckContext
) -> None:
    """`required_env` lists the missing or empty names, and never any value of the environment."""
    compose.run(
        "backend",
        "sleep 300",
        environment={"DATABASE_URL": "", "API_SECRET": CANARY, "NODE_ENV": "production"},
    )
    check = make_check(
        context,
        project=compose.project,
        service="backend",
        required_env=["DATABASE_URL", "ANTHROPIC_API_KEY", "API_SECRET", "NODE_ENV"],
    )
    result = await until(check, lambda r: r.facts.get("STATE") == "running")
    assert not result.ok and result.kind == "environment"
    assert result.reason == (
        "required environment variables missing or empty: DATABASE_URL, ANTHROPIC_API_KEY"
    )
    assert result.facts["MISSING_ENV"] == ["DATABASE_URL", "ANTHROPIC_API_KEY"]
    everything = json.dumps([result.reason, dict(result.facts)])
    assert CANARY not in everything and "production" not in everything


async def test_env_pattern_in_logs_gives_only_the_pattern_name(
    compose: Stack, context: CheckContext
) -> None:
    """A container that dies at start-up logging `Invalid environment variables` fails as
    `environment`, naming the pattern; the log line itself (and its values) stays inside."""
    compose.run(
        "backend",
        'echo "Invalid environment variables: DATABASE_URL=$DATABASE_URL"; exit 1',
        environment={"DATABASE_URL": f"postgres://app:{CANARY}@db/app"},
    )
    wait_for_state(compose, f"{compose.project}-backend-1", "exited")
    check = make_check(context, project=compose.project, service="backend", inspect_logs=True)
    result = await check.run()
    assert not result.ok and result.kind == "environment"
    assert "'invalid_environment'" in result.reason
    assert result.reason.startswith("exited with code 1")
    assert result.facts["LOG_PATTERN"] == "invalid_environment"
    assert CANARY not in json.dumps([result.reason, dict(result.facts)])
    plain = await make_check(context, project=compose.project, service="backend").run()
    assert plain.kind == "exited", "without inspect_logs the logs are not read"


ZOD_EXIT = (
    "echo 'Invalid environment variables:'; "
    'echo \'{ "_errors": [], "FEATURE_STORE_URL": { "_errors": ["Required"] } }\'; '
    'echo "DATABASE_URL=$DATABASE_URL" > /dev/null; exit 1'
)


async def test_crash_loop_at_start_names_the_missing_variable(
    compose: Stack, context: CheckContext
) -> None:
    """A container restarted by its policy that exits at start for a variable its environment
    lacks: `environment` naming FEATURE_STORE_URL (from its log, not required_env), never a
    bare crash loop, and no value of its environment."""
    compose.run(
        "backend",
        f"sleep 0.3; {ZOD_EXIT}",
        environment={"DATABASE_URL": f"postgres://app:{CANARY}@db/app", "NODE_ENV": "x"},
        restart_policy={"Name": "always"},
    )
    check = make_check(
        context,
        project=compose.project,
        service="backend",
        inspect_logs=True,
        crash_loop={"restarts": 2, "window": "10m"},
    )
    result = await until(check, lambda r: not r.ok and r.kind == "environment", within=40)
    assert result.facts["MISSING_ENV"] == ["FEATURE_STORE_URL"]
    assert "FEATURE_STORE_URL" in result.reason
    assert CANARY not in json.dumps([result.reason, dict(result.facts)])


async def test_selects_by_name_and_by_label(compose: Stack, context: CheckContext) -> None:
    """A container can be selected by name or by labels instead of Compose project/service."""
    name = f"{compose.project}-plain"
    compose.run("plain", "sleep 300", name=name, compose=False, labels={"team": compose.project})
    by_name = make_check(context, container=name)
    by_label = make_check(context, labels={"team": compose.project})
    for check in (by_name, by_label):
        result = await until(check, lambda r: r.facts.get("STATE") == "running")
        assert result.ok and result.facts["CONTAINER"] == name


async def test_missing_container(compose: Stack, context: CheckContext) -> None:
    """No matching container is a failure of kind `missing` that says what was looked for."""
    result = await make_check(context, project=compose.project, service="ghost").run()
    assert not result.ok and result.kind == "missing"
    assert result.reason == f"no container matches project={compose.project} service=ghost"
    assert result.facts["STATE"] == "missing"


async def test_unreachable_engine_is_unknown_with_the_reason(
    tmp_path: Path, metrics: Metrics
) -> None:
    """Without an engine the check reports UNKNOWN (not a guess), saying why."""
    socket = tmp_path / "no-engine.sock"
    context = CheckContext(metrics, docker=DockerAccess(f"unix://{socket}"))
    try:
        result = await make_check(context, project="shop", service="web").run()
    finally:
        assert context.docker is not None
        await context.docker.aclose()
        await context.http.aclose()
    assert result.unknown and not result.ok and result.kind == "docker_unavailable"
    assert f"socket {socket} does not exist" in result.reason


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "say which container to watch"),
        ({"project": "shop"}, "`project` needs `service`"),
        ({"container": "web", "labels": {"a": "b"}}, "select by `container`"),
        ({"service": "web", "required_env": ["BAD-NAME"]}, "'BAD-NAME' is not an environment"),
        (
            {"service": "web", "conditions": ["[STATUS] == 200"]},
            "[STATUS] is not a placeholder of container checks",
        ),
        ({"service": "web", "log_patterns": {"x": "("}}, "not a valid regular expression"),
    ],
)
def test_config_errors_are_specific(tmp_path: Path, fields: dict[str, Any], message: str) -> None:
    """A container check with a bad selection or field is rejected with file, line and reason."""
    item = {"name": "web", "type": "container", **fields}
    path = tmp_path / "opsmon.yml"
    path.write_text("checks:\n" + textwrap.indent(json.dumps([item])[1:-1], "  - "))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert message in text and "checks[0]" in text and f"{path}:2" in text

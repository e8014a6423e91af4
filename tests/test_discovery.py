"""Checks from container labels: what `opsmon.enable` and `opsmon.http.*` produce, stable names,
bad labels reported; discovered checks appear and disappear with their containers."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.checks.container import ContainerSpec
from monitor.checks.http import HttpSpec
from monitor.docker.discovery import Discovery, check_name
from tests.support.docker import MAIN_HOST, Stack, inprocess_daemon, stack
from tests.support.environment import free_port

DEFAULTS = {"interval": 30.0, "timeout": 5.0, "failure_threshold": 3, "success_threshold": 2}


def summary(
    labels: dict[str, str], name: str = "shop-web-1", created: int = 1, oneoff: bool = False
) -> dict[str, Any]:
    if oneoff:
        labels = {**labels, "com.docker.compose.oneoff": "True"}
    return {"Id": f"id-{name}", "Names": [f"/{name}"], "Labels": labels, "Created": created}


def compose_labels(project: str, service: str, **extra: str) -> dict[str, str]:
    return {
        "com.docker.compose.project": project,
        "com.docker.compose.service": service,
        **{key.replace("_", "."): value for key, value in extra.items()},
    }


def test_enable_label_gives_a_container_check() -> None:
    """`opsmon.enable=true` on a Compose container gives a container check for its service."""
    plan = Discovery(DEFAULTS).plan(
        [summary(compose_labels("shop", "web", opsmon_enable="true"))], []
    )
    assert plan.problems == [] and list(plan.specs) == ["web"]
    spec = plan.specs["web"]
    assert isinstance(spec, ContainerSpec)
    assert (spec.project, spec.service, spec.interval) == ("shop", "web", 30.0)


def test_http_labels_give_an_http_check_with_conditions() -> None:
    """`opsmon.http.url` and `;`-separated `opsmon.http.conditions` add an HTTP check."""
    labels = compose_labels(
        "shop",
        "api",
        opsmon_enable="true",
        opsmon_http_url="http://127.0.0.1:4000/api/health",
        opsmon_http_conditions="[STATUS] == 200; [BODY].status == ok",
    )
    plan = Discovery(DEFAULTS).plan([summary(labels, "shop-api-1")], [])
    http = plan.specs["api-http"]
    assert isinstance(http, HttpSpec)
    assert http.url == "http://127.0.0.1:4000/api/health"
    assert [c.text for c in http.conditions] == ["[STATUS] == 200", "[BODY].status == ok"]
    assert http.depends_on == ("api",) and http.service == "api"


def test_names_avoid_collisions_and_stay_stable() -> None:
    """Names come from the service, avoid configured names, and keep across scans."""
    discovery = Discovery(DEFAULTS)
    first = summary(compose_labels("shop", "web", opsmon_enable="true"), "shop-web-1", 1)
    second = summary(compose_labels("blog", "web", opsmon_enable="true"), "blog-web-1", 2)
    plain = summary({"opsmon.enable": "true"}, "My_App.1", 3)
    plan = discovery.plan([first, second, plain], reserved=["web"])
    assert sorted(plan.specs) == ["blog-web", "my-app-1", "shop-web"]
    again = discovery.plan([plain, second, first], reserved=["web"])
    assert sorted(again.specs) == sorted(plan.specs)
    assert again.specs["shop-web"] == plan.specs["shop-web"]
    assert check_name("--Weird__Name!!") == "weird-name"


def test_what_is_not_discovered() -> None:
    """`opsmon.enable=false`, one-off `run` containers and extra replicas add nothing."""
    off = summary(compose_labels("shop", "a", opsmon_enable="false", opsmon_http_url="http://x"))
    oneoff = summary(compose_labels("shop", "b", opsmon_enable="true"), "b", oneoff=True)
    replica_1 = summary(compose_labels("shop", "c", opsmon_enable="true"), "shop-c-1", 1)
    replica_2 = summary(compose_labels("shop", "c", opsmon_enable="true"), "shop-c-2", 2)
    plan = Discovery(DEFAULTS).plan([off, oneoff, replica_1, replica_2], [])
    assert list(plan.specs) == ["c"]


def test_bad_labels_are_reported_not_fatal() -> None:
    """A label that cannot make a check is reported with the container; the rest still works."""
    labels = compose_labels(
        "shop", "web", opsmon_enable="true", opsmon_http_url="ftp://nope", opsmon_http_conditions=""
    )
    maybe = summary(compose_labels("shop", "db", opsmon_enable="maybe"), "shop-db-1", 2)
    plan = Discovery(DEFAULTS).plan([summary(labels), maybe], [])
    assert list(plan.specs) == ["web"]
    assert any("shop-web-1" in p and "http:// or https://" in p for p in plan.problems)
    assert any("shop-db-1" in p and "'maybe' is not true/false" in p for p in plan.problems)


@pytest.fixture
def compose() -> Iterator[Stack]:
    with stack() as made:
        yield made


@pytest.mark.docker
async def test_discovered_checks_appear_and_disappear(tmp_path: Path, compose: Stack) -> None:
    """A labelled container gets a container check and an HTTP check, marked `discovered` in
    /api/status; when the container is removed both checks go away."""
    service = f"app{compose.project[-6:]}"
    port = free_port()
    text = textwrap.dedent(f"""\
        defaults: {{interval: 1h, timeout: 2s, failure_threshold: 1, success_threshold: 1}}
        docker: {{host: "{MAIN_HOST}", discovery: true}}
        """)
    async with inprocess_daemon(tmp_path, text) as run:
        await run.wait("docker", lambda c: c["state"] == "healthy")
        assert run.names() == {"docker"}
        compose.run(
            service,
            "mkdir -p /tmp/www && echo ok > /tmp/www/health && "
            f"httpd -f -p 127.0.0.1:{port} -h /tmp/www",
            labels={
                "opsmon.enable": "true",
                "opsmon.http.url": f"http://127.0.0.1:{port}/health",
                "opsmon.http.conditions": "[STATUS] == 200;[BODY] == pat(ok*)",
            },
        )
        await run.wait(service, lambda c: c["state"] == "healthy")
        await run.wait(f"{service}-http", lambda c: c["state"] == "healthy", within=20)
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{run.port}/api/status")
        checks = {c["name"]: c for c in answer.json()["checks"]}
        assert checks[service]["discovered"] is True and checks[service]["type"] == "container"
        assert checks[f"{service}-http"]["discovered"] is True
        assert checks["docker"]["discovered"] is False
        labels = {"project": compose.project, "service": service}
        assert run.metric("opsmon_container_up", **labels) == 1

        compose.remove(f"{compose.project}-{service}-1")
        await run.wait("docker", lambda c: service not in run.names() and c is not None)
        assert run.names() == {"docker"}
        assert run.metric("opsmon_container_up", **labels) is None

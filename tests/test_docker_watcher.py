"""The Docker watcher inside a running daemon: container events update checks at once, the
engine going away makes them UNKNOWN and the `docker` self-check unhealthy, and after the engine
comes back every container is read again."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.docker.watcher import DockerWatcher
from tests.support.docker import (
    MAIN_HOST,
    ReadOnlyProxy,
    Stack,
    inprocess_daemon,
    second_engine,
    stack,
    wait_for_state,
)
from tests.support.http_target import Answer, serve
from tests.support.waiting import async_wait_until

pytestmark = pytest.mark.docker
# Far longer than any test: whatever changes within a test came through the event stream.
NO_POLL = "1h"


@pytest.fixture
def compose() -> Iterator[Stack]:
    with stack() as made:
        yield made


def config(host: str, checks: str, defaults: str = "") -> str:
    return textwrap.dedent(f"""\
        defaults: {{interval: {NO_POLL}, timeout: 5s, failure_threshold: 1, success_threshold: 1}}
        docker: {{host: "{host}"}}
        checks:
        """) + textwrap.indent(textwrap.dedent(checks), "  ")


def container_check(name: str, project: str, service: str, extra: str = "") -> str:
    return f"""\
- name: {name}
  type: container
  project: {project}
  service: {service}
{extra}"""


def watcher_of(daemon: object) -> DockerWatcher:
    components = getattr(daemon, "components", [])
    return next(c for c in components if isinstance(c, DockerWatcher))


async def test_docker_kill_is_seen_through_the_event(tmp_path: Path, compose: Stack) -> None:
    """`docker kill` flips the check to unhealthy with the reason, long before any poll."""
    compose.run("web", "sleep 300")
    text = config(MAIN_HOST, container_check("web", compose.project, "web"))
    async with inprocess_daemon(tmp_path, text) as run:
        await run.wait("web", lambda c: c["state"] == "healthy")
        compose.client.api.kill(f"{compose.project}-web-1")
        check = await run.wait("web", lambda c: c["state"] == "unhealthy", within=10)
        assert check["last_result"]["kind"] == "exited"
        assert check["last_result"]["reason"].startswith("exited with code 137")
        assert "SIGKILL sent through the Docker API (docker kill)" in check["last_result"]["reason"]
        labels = {"project": compose.project, "service": "web"}
        assert run.metric("opsmon_container_up", **labels) == 0
        assert (run.metric("opsmon_docker_events_total", action="die") or 0) >= 1
        assert run.metric("opsmon_docker_up") == 1
        assert run.moves("web") == [("unknown", "healthy"), ("healthy", "unhealthy")]


async def test_graceful_stop_is_not_a_crash(tmp_path: Path, compose: Stack) -> None:
    """`docker stop` is reported as stopped on request, even when it ends in SIGKILL (137)."""
    compose.run("web", "sleep 300")
    text = config(MAIN_HOST, container_check("web", compose.project, "web"))
    async with inprocess_daemon(tmp_path, text) as run:
        await run.wait("web", lambda c: c["state"] == "healthy")
        await asyncio.to_thread(compose.client.api.stop, f"{compose.project}-web-1", timeout=1)
        check = await run.wait("web", lambda c: c["state"] == "unhealthy", within=10)
        assert check["last_result"]["kind"] == "stopped"
        assert check["last_result"]["reason"].startswith("stopped on request (SIGTERM")
        labels = {"project": compose.project, "service": "web"}
        assert run.metric("opsmon_container_oom_kills_total", **labels) is None


async def test_restart_policy_crash_loop(tmp_path: Path, compose: Stack) -> None:
    """A container that exits 1 and is restarted by its policy over and over is a crash loop."""
    text = config(MAIN_HOST, container_check("worker", compose.project, "worker"))
    async with inprocess_daemon(tmp_path, text) as run:
        compose.run("worker", "sleep 0.2; exit 1", restart_policy={"Name": "always"})
        check = await run.wait(
            "worker", lambda c: (c["last_result"] or {}).get("kind") == "crash_loop", within=20
        )
        reason = check["last_result"]["reason"]
        assert reason.startswith("crash loop: restarted 3 times within 10m")
        assert "last exit: exited with code 1" in reason
        assert check["state"] == "unhealthy"
        assert check["last_result"]["facts"]["RESTARTS_10M"] >= 3


async def test_health_status_event_updates_at_once(tmp_path: Path, compose: Stack) -> None:
    """A container turning unhealthy is reported from its `health_status` event."""
    marker = "/tmp/healthy"
    compose.run(
        "api",
        f"touch {marker}; sleep 300",
        healthcheck={
            "test": ["CMD-SHELL", f"test -f {marker} || (echo marker gone; exit 1)"],
            "interval": 200_000_000,
            "retries": 1,
        },
    )
    text = config(MAIN_HOST, container_check("api", compose.project, "api"))
    async with inprocess_daemon(tmp_path, text) as run:
        await run.wait("api", lambda c: c["last_result"]["facts"].get("HEALTH") == "healthy")
        await asyncio.to_thread(
            compose.client.containers.get(f"{compose.project}-api-1").exec_run, f"rm {marker}"
        )
        check = await run.wait("api", lambda c: c["state"] == "unhealthy", within=10)
        assert check["last_result"]["kind"] == "unhealthy"
        assert (
            check["last_result"]["reason"] == "Docker health check reports unhealthy: marker gone"
        )
        labels = {"project": compose.project, "service": "api", "status": "unhealthy"}
        assert run.metric("opsmon_container_health_status", **labels) == 1


async def test_unreachable_engine_leaves_everything_else_running(tmp_path: Path) -> None:
    """With no engine, container checks are UNKNOWN with the reason, the `docker` self-check is
    unhealthy, and other checks and the daemon's endpoints carry on."""
    socket = tmp_path / "gone.sock"
    with serve() as target:
        target.routes["/health"] = Answer(body=b"ok")
        checks = container_check("web", "shop", "web") + textwrap.dedent(f"""\
            - name: site
              type: http
              url: {target.url("/health")}
            """)
        async with inprocess_daemon(tmp_path, config(f"unix://{socket}", checks)) as run:
            web = await run.wait("web", lambda c: c["last_result"] is not None)
            assert web["state"] == "unknown"
            assert web["last_result"]["kind"] == "docker_unavailable"
            assert f"socket {socket} does not exist" in web["last_result"]["reason"]
            engine = await run.wait("docker", lambda c: c["state"] == "unhealthy")
            assert engine["type"] == "docker"
            assert f"socket {socket} does not exist" in engine["last_error"]
            assert run.metric("opsmon_docker_up") == 0
            await run.wait("site", lambda c: c["state"] == "healthy")
            async with httpx.AsyncClient() as client:
                answer = await client.get(f"http://127.0.0.1:{run.port}/healthz")
            assert answer.status_code == 200


async def test_engine_restart_reconnects_and_resyncs(tmp_path: Path) -> None:
    """The engine stopping mid-run makes container checks UNKNOWN and `docker` unhealthy; once it
    is back the stream reconnects, every container is read again and each check ends in the
    right state, without duplicate transitions (replayed events change nothing)."""
    with second_engine() as engine, stack(engine.host) as compose:
        # Both leave at once on SIGTERM, so the engine's shutdown takes no stop timeout.
        server = "trap 'exit 0' TERM; sleep 300 & wait"
        compose.run("db", server, restart_policy={"Name": "always"})
        compose.run("job", server)
        checks = container_check("db", compose.project, "db") + container_check(
            "job", compose.project, "job"
        )
        async with inprocess_daemon(tmp_path, config(engine.host, checks)) as run:
            watcher = watcher_of(run.daemon)
            for name in ("db", "job", "docker"):
                await run.wait(name, lambda c: c["state"] == "healthy")
            before_outage = len(run.transitions)
            await asyncio.to_thread(engine.stop)
            for name in ("db", "job"):
                check = await run.wait(name, lambda c: c["state"] == "unknown")
                assert "cannot reach the Docker engine" in check["last_result"]["reason"]
            await run.wait("docker", lambda c: c["state"] == "unhealthy")
            assert run.metric("opsmon_docker_up") == 0

            await asyncio.to_thread(engine.start)
            await run.wait("docker", lambda c: c["state"] == "healthy")
            await run.wait("db", lambda c: c["state"] == "healthy")
            job = await run.wait("job", lambda c: c["state"] == "unhealthy")
            assert job["last_result"]["kind"] == "stopped"
            assert job["last_result"]["reason"].startswith(
                "stopped when the Docker engine shut down"
            )
            assert run.metric("opsmon_docker_up") == 1

            settled = list(run.transitions)
            stream = watcher.stream
            assert stream is not None
            connections = stream.connections
            starts = run.metric("opsmon_docker_events_total", action="start")
            stream.reconnect()  # asks again `since` the last event: the engine replays it
            await async_wait_until(lambda: _true(stream.connections > connections))
            await run.wait("db", lambda c: c["state"] == "healthy")
            await _quiet(run)
            assert run.metric("opsmon_docker_events_total", action="start") == starts
            assert run.transitions == settled
        after = [t for t in run.transitions[before_outage:]]
        db = [(t.previous.value, t.current.value) for t in after if t.check == "db"]
        job = [(t.previous.value, t.current.value) for t in after if t.check == "job"]
        # Whether a check read the stop before the engine was gone is a matter of timing (under
        # load it may not): the move into UNKNOWN comes from either state.
        assert db[-1] == ("unknown", "healthy") and db[-2][1] == "unknown", db
        assert [m for m in db if m[1] == "healthy"] == [("unknown", "healthy")], db
        assert job[-1] == ("unknown", "unhealthy") and job[-2][1] == "unknown", job
        assert not [m for m in job if m[1] == "healthy"], job
        assert run.moves("docker") == [
            ("unknown", "healthy"),
            ("healthy", "unhealthy"),
            ("unhealthy", "healthy"),
        ]


async def _true(value: bool) -> bool:
    return value


async def _quiet(run: object) -> None:
    """Wait until no event-driven refresh is in flight."""
    watcher = watcher_of(getattr(run, "daemon", None))
    await async_wait_until(lambda: _true(not watcher.busy), timeout=10)


async def test_read_only_socket_proxy(tmp_path: Path, compose: Stack) -> None:
    """Through `tcp://` (a socket proxy letting only GET through) events and checks work, and
    opsmon sends nothing but GET requests."""
    proxy = ReadOnlyProxy(MAIN_HOST.removeprefix("unix://"))
    await proxy.start()
    try:
        compose.run("web", "sleep 300")
        text = config(proxy.host, container_check("web", compose.project, "web"))
        async with inprocess_daemon(tmp_path, text) as run:
            await run.wait("web", lambda c: c["state"] == "healthy")
            await run.wait("docker", lambda c: c["state"] == "healthy")
            compose.client.api.kill(f"{compose.project}-web-1")
            check = await run.wait("web", lambda c: c["state"] == "unhealthy", within=10)
            assert "docker kill" in check["last_result"]["reason"]
    finally:
        await proxy.close()
    methods = {method for method, _ in proxy.requests}
    paths = {path.split("?")[0].split("/", 2)[-1] for _, path in proxy.requests}
    assert methods == {"GET"}, proxy.requests
    assert any(p.endswith("events") for p in paths) and any("containers" in p for p in paths)
    wait_for_state(compose, f"{compose.project}-web-1", "exited")


async def test_reload_turns_docker_watching_on_and_off(
    tmp_path: Path, compose: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without container checks no engine is needed (nothing Docker runs); a reload that adds
    one starts the watcher, and a reload that removes it stops it again."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing-here.sock")
    with serve() as target:
        target.routes["/health"] = Answer(body=b"ok")
        site = f"- {{name: site, type: http, url: '{target.url('/health')}'}}\n"
        async with inprocess_daemon(
            tmp_path, config(MAIN_HOST, site).replace(f'docker: {{host: "{MAIN_HOST}"}}\n', "")
        ) as run:
            await run.wait("site", lambda c: c["state"] == "healthy")
            watcher = watcher_of(run.daemon)
            assert run.names() == {"site"} and watcher.stream is None
            assert run.daemon.context.docker is None

            compose.run("web", "sleep 300")
            path = tmp_path / "opsmon.yml"
            path.write_text(
                config(MAIN_HOST, site + container_check("web", compose.project, "web"))
            )
            assert await run.daemon.reload()
            await run.wait("web", lambda c: c["state"] == "healthy")
            await run.wait("docker", lambda c: c["state"] == "healthy")
            compose.client.api.kill(f"{compose.project}-web-1")
            await run.wait("web", lambda c: c["state"] == "unhealthy", within=10)

            path.write_text(config(MAIN_HOST, site))
            assert await run.daemon.reload()
            assert run.names() == {"site"} and watcher.stream is None
            labels = {"project": compose.project, "service": "web"}
            assert run.metric("opsmon_container_up", **labels) is None

"""The daemon end to end: endpoints, metrics through promtool, transitions, reload, clean stop."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from monitor.config import load_config
from monitor.daemon import LOOP_STALL_LIMIT, Daemon
from monitor.settings import Settings
from tests.support.cli import running_daemon
from tests.support.environment import free_port, missing
from tests.support.http_target import Answer, Target, serve
from tests.support.waiting import async_wait_until, wait_until

CANARY = "canary-bearer-5e1d9c"
HEALTHY = {"status": "ok", "services": {"database": "ok"}}
BROKEN = {"status": "error", "services": {"database": "error"}}


@pytest.fixture
def backend() -> Iterator[Target]:
    with serve() as target:
        target.routes["/api/health"] = Answer(body=HEALTHY)
        yield target


def config_text(backend: Target, interval: str = "200ms", extra: str = "") -> str:
    return (
        textwrap.dedent(f"""\
        defaults:
          {{interval: {interval}, timeout: 150ms, failure_threshold: 2, success_threshold: 2}}
        checks:
          - name: backend-health
            type: http
            service: backend
            url: {backend.url("/api/health")}
            headers: {{Authorization: "Bearer ${{API_TOKEN}}"}}
            conditions: ["[STATUS] == 200", "[BODY].services.database == ok"]
        """)
        + extra
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "opsmon.yml"
    path.write_text(text)
    return path


def status(port: int) -> dict[str, dict[str, object]]:
    body = httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=2).json()
    return {check["name"]: check for check in body["checks"]}


def test_endpoints_and_metrics_pass_promtool(tmp_path: Path, backend: Target) -> None:
    """A running daemon serves /healthz, /readyz, /api/status and /metrics that promtool accepts."""
    promtool = shutil.which("promtool")
    if promtool is None:
        missing("promtool")
    port = free_port()
    path = write(tmp_path, config_text(backend))
    with running_daemon(path, port, env={"API_TOKEN": CANARY}) as daemon:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/readyz").status_code == 200
        wait_until(lambda: status(port)["backend-health"]["state"] == "healthy")
        check = status(port)["backend-health"]
        assert check["service"] == "backend" and check["since"]
        metrics = httpx.get(f"{base}/metrics").text
        lint = subprocess.run(
            [promtool, "check", "metrics"], input=metrics, capture_output=True, text=True
        )
        assert lint.returncode == 0 and lint.stdout + lint.stderr == "", lint.stdout + lint.stderr
        for name in (
            'opsmon_check_success{check="backend-health",service="backend",type="http"} 1.0',
            'opsmon_check_healthy{check="backend-health",service="backend",type="http"} 1.0',
            'opsmon_check_runs_total{check="backend-health",result="success",type="http"}',
            'opsmon_check_duration_seconds_bucket{check="backend-health",le="0.005",type="http"}',
            "opsmon_scheduler_lag_seconds_bucket",
            'opsmon_build_info{version="',
            "# TYPE opsmon_alerts_sent_total counter",
            "# TYPE opsmon_alert_delivery_failures_total counter",
        ):
            assert name in metrics, name
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=10)
    assert CANARY not in metrics and CANARY not in json.dumps(check) and CANARY not in output


def test_transitions_are_debounced_and_logged(tmp_path: Path, backend: Target) -> None:
    """A broken backend turns unhealthy after the threshold with the failed condition as
    evidence, logged once at INFO as JSON, and /api/status shows its diagnosis, root cause and
    runbook link; it turns healthy again after it is fixed."""
    port = free_port()
    with running_daemon(
        write(tmp_path, config_text(backend)), port, env={"API_TOKEN": CANARY}
    ) as daemon:
        wait_until(lambda: status(port)["backend-health"]["state"] == "healthy")
        backend.routes["/api/health"] = Answer(status=503, body=BROKEN)
        wait_until(lambda: status(port)["backend-health"]["state"] == "unhealthy")
        check = status(port)["backend-health"]
        assert "[STATUS] (503) == 200" in str(check["last_error"])
        assert "[BODY].services.database (error) == ok" in str(check["last_error"])
        backend.routes["/api/health"] = Answer(body=HEALTHY)
        wait_until(lambda: status(port)["backend-health"]["state"] == "healthy")
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=10)
    events = [json.loads(line) for line in output.splitlines()]
    [problem] = check["problems"]  # type: ignore[misc]
    assert problem["alertname"] == "DatabaseConnectionFailing"
    assert problem["root_cause"] == {"check": "backend-health", "service": "backend"}
    assert problem["diagnosis"].startswith("backend reports its database connection")
    assert problem["runbook_url"].endswith("/runbooks/database-connection-failing")
    changes = [e for e in events if e["event"] == "check_state_changed"]
    assert [(e["previous"], e["current"]) for e in changes] == [
        ("unknown", "healthy"),
        ("healthy", "unhealthy"),
        ("unhealthy", "healthy"),
    ]
    assert all(e["level"] == "info" and e["check"] == "backend-health" for e in changes)
    assert changes[1]["reason"].startswith("[STATUS] (503) == 200")
    assert all(e["timestamp"].endswith("Z") for e in events)
    assert CANARY not in output


def test_sigterm_stops_within_5s_with_checks_in_flight(tmp_path: Path, backend: Target) -> None:
    """SIGTERM cancels in-flight checks, closes the server and exits 0 within 5 seconds."""
    backend.routes["/api/health"] = Answer(delay=60)
    text = config_text(backend, interval="30s").replace("timeout: 150ms", "timeout: 25s")
    port = free_port()
    with running_daemon(
        write(tmp_path, text), port, env={"API_TOKEN": CANARY}, ready=False
    ) as daemon:
        wait_until(lambda: len(backend.requests) >= 1)
        started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=10)
        elapsed = time.monotonic() - started
    assert code == 0
    assert elapsed < 5, elapsed


def test_sighup_reloads_and_keeps_old_config_when_new_is_bad(
    tmp_path: Path, backend: Target
) -> None:
    """SIGHUP applies a valid new config; an invalid one is logged and the old one keeps running."""
    backend.routes["/api/ready"] = Answer(body={"ready": True})
    path = write(tmp_path, config_text(backend))
    port = free_port()
    with running_daemon(path, port, env={"API_TOKEN": CANARY}) as daemon:
        extra = f"  - name: backend-ready\n    type: http\n    url: {backend.url('/api/ready')}\n"
        path.write_text(config_text(backend, extra=extra))
        daemon.send_signal(signal.SIGHUP)
        wait_until(lambda: status(port).get("backend-ready", {}).get("state") == "healthy")
        path.write_text("checks:\n  - name: broken\n    type: http\n    url: nope\n")
        daemon.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:  # the rejection must not drop the running checks
            assert set(status(port)) == {"backend-health", "backend-ready"}
            time.sleep(0.1)
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=10)
    rejected = [
        json.loads(line) for line in output.splitlines() if "config_reload_rejected" in line
    ]
    assert rejected and f"{path}:4: checks[0].url" in rejected[0]["problems"][0]


class SteppingClock:
    """The system clock with a monotonic offset a test can push forward."""

    def __init__(self) -> None:
        from monitor.clock import SystemClock

        self._system = SystemClock()
        self.offset = 0.0

    def now(self):  # type: ignore[no-untyped-def]
        return self._system.now()

    def monotonic(self) -> float:
        return self._system.monotonic() + self.offset


@pytest.fixture
async def inprocess(
    tmp_path: Path, backend: Target
) -> AsyncIterator[tuple[Daemon, SteppingClock, int]]:
    path = write(tmp_path, config_text(backend, interval="1s"))
    port = free_port()
    clock = SteppingClock()
    daemon = Daemon(
        load_config(path, {"API_TOKEN": CANARY}), Settings(listen=f"127.0.0.1:{port}"), clock=clock
    )
    task = asyncio.create_task(daemon.run())
    async with httpx.AsyncClient() as client:

        async def ready() -> bool:
            try:
                return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        await async_wait_until(ready)
    yield daemon, clock, port
    daemon.request_stop()
    assert await asyncio.wait_for(task, 10) == 0


async def test_healthz_fails_when_loop_stalls(inprocess: tuple[Daemon, SteppingClock, int]) -> None:
    """/healthz answers 503 when the event loop has not ticked within the bound."""
    daemon, clock, _ = inprocess
    assert daemon.liveness() == (True, "ok")
    clock.offset += LOOP_STALL_LIMIT + 1
    ok, why = daemon.liveness()
    assert not ok and "event loop stalled" in why


async def test_healthz_fails_when_scheduler_stopped(
    inprocess: tuple[Daemon, SteppingClock, int],
) -> None:
    """/healthz answers 503 'scheduler stopped' once the scheduler no longer runs."""
    daemon, _, port = inprocess
    daemon.scheduler.shutdown()
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/healthz")
    assert response.status_code == 503 and response.text == "scheduler stopped"


def test_listen_address_in_use_is_reported(tmp_path: Path, backend: Target) -> None:
    """A busy listen address makes `opsmon run` exit 2 with the address in the message."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = write(tmp_path, config_text(backend))
        from tests.support.cli import run_opsmon

        result = run_opsmon(
            "run",
            "--config",
            str(path),
            env={"API_TOKEN": CANARY, "OPSMON_LISTEN": f"127.0.0.1:{port}"},
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stdout


def test_listen_address_from_the_environment_is_not_masked(tmp_path: Path, backend: Target) -> None:
    """An address is not a secret: read through ${VAR}, the start log still shows it."""
    port = free_port()
    path = write(tmp_path, "listen: ${OPSMON_ADDRESS}\n" + config_text(backend))
    env = {"API_TOKEN": CANARY, "OPSMON_LISTEN": "", "OPSMON_ADDRESS": f"127.0.0.1:{port}"}
    with running_daemon(path, port, env=env) as daemon:
        pass
    assert daemon.stdout is not None
    logs = daemon.stdout.read()
    started = next(json.loads(line) for line in logs.splitlines() if "daemon_started" in line)
    assert started["listen"] == f"127.0.0.1:{port}"
    assert CANARY not in logs

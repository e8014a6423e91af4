"""`opsmon explain`: every check once, then each problem with its diagnosis, evidence and the
first command of its runbook, against real servers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from monitor.demo import DEMO_CONFIG, SampleBackend
from tests.support.cli import run_opsmon
from tests.support.environment import free_port
from tests.support.waiting import wait_until


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Serve `app` on a free loopback port in a thread; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=10)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def demo_backend() -> Iterator[str]:
    """The demo's sample backend, as `opsmon demo` runs it."""
    with serve(SampleBackend().app()) as url:
        yield url


def explain(backend: str, *args: str) -> tuple[int, str, str]:
    """`opsmon explain` on the demo config pointed at `backend`."""
    done = run_opsmon(
        "explain", "--config", str(DEMO_CONFIG), *args, env={"DEMO_BACKEND_URL": backend}
    )
    return done.returncode, done.stdout, done.stderr


DEMO_CASES = [
    (
        "database",
        "CRITICAL  DatabaseConnectionFailing  (root cause: check backend-health, service backend)",
        "/runbooks/database-connection-failing",
        "$ docker compose exec db pg_isready -h db -U postgres",
    ),
    (
        "mastra",
        "CRITICAL  HealthCheckFailing  (root cause: check backend-health, service backend)",
        "/runbooks/health-check-failing",
        "$ curl -s -w '\\nHTTP %{http_code} in %{time_total}s\\n' http://backend:4000/api/health",
    ),
    (
        "latency",
        "WARNING  SlowResponses  (root cause: check backend-health, service backend)",
        "/runbooks/slow-responses",
        "$ curl -s -o /dev/null -w 'connect=%{time_connect}s",
    ),
]


@pytest.mark.parametrize(
    ("component", "headline", "link", "command"), DEMO_CASES, ids=[c[0] for c in DEMO_CASES]
)
def test_demo_with_a_broken_component_prints_the_right_runbook(
    demo_backend: str, component: str, headline: str, link: str, command: str
) -> None:
    """Breaking a demo component makes `explain` print the matching diagnosis, its evidence,
    the runbook link and the runbook's first command, and exit 1."""
    httpx.post(f"{demo_backend}/demo/break/{component}").raise_for_status()
    code, out, err = explain(demo_backend)
    assert code == 1, err
    first = out.split("\n\n")[1]  # problems are printed critical first
    assert first.startswith(headline), out
    assert "Runbook: " in first and f"http://127.0.0.1:9110{link}" in first
    assert command in first
    assert "  Evidence:\n    backend-health: " in first


def test_demo_database_problem_shows_evidence_and_rollback_advice(demo_backend: str) -> None:
    """The evidence names the failing conditions with the values seen; a database problem is
    not one a rollback fixes."""
    httpx.post(f"{demo_backend}/demo/break/database").raise_for_status()
    code, out, _ = explain(demo_backend)
    assert code == 1
    assert "backend-health: [STATUS] (503) == 200" in out
    assert "backend-health: [BODY].services.database (error) == ok" in out
    assert "Automatic rollback: would not help" in out
    assert "Then: opsmon runbooks show database-connection-failing" in out


def test_healthy_demo_has_no_problem(demo_backend: str) -> None:
    """With nothing broken, explain says so and exits 0."""
    code, out, err = explain(demo_backend)
    assert (code, out.strip()) == (0, "No problem found (2 checks ran)."), err


def test_explain_one_check(demo_backend: str) -> None:
    """`explain CHECK` shows only the problems that check is part of; an unknown name is 2."""
    httpx.post(f"{demo_backend}/demo/break/database").raise_for_status()
    code, out, _ = explain(demo_backend, "backend-ready")
    assert code == 1
    assert "ServiceNotReady" in out and "DatabaseConnectionFailing" not in out
    code, _, err = explain(demo_backend, "nope")
    assert code == 2
    assert "no check named nope (known: backend-health, backend-ready)" in err

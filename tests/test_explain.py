"""`opsmon explain`: every check once, then each problem with its diagnosis, evidence and the
first command of its runbook, against real servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.demo import DEMO_CONFIG, SampleBackend
from tests.support.backends import database_backend, serve
from tests.support.cli import run_opsmon
from tests.support.docker import stack
from tests.support.environment import free_port
from tests.support.postgres import PostgresFactory
from tests.support.waiting import wait_until


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
        "$ docker compose exec -T db pg_isready -h db -U postgres",
        (
            "backend-health: [STATUS] (503) == 200",
            "backend-health: [BODY].services.database (error) == ok",
            "Automatic rollback: would not help",
            # With the same --config, so the runbook renders for the same config.
            f"Then: opsmon runbooks show database-connection-failing --config {DEMO_CONFIG}",
        ),
    ),
    (
        "mastra",
        "CRITICAL  HealthCheckFailing  (root cause: check backend-health, service backend)",
        "/runbooks/health-check-failing",
        "$ curl -s -w '\\nHTTP %{http_code} in %{time_total}s\\n' {backend}/api/health",
        ("backend-health: [BODY].services.mastra (error) == ok", "Automatic rollback: could help"),
    ),
    (
        "latency",
        "WARNING  SlowResponses  (root cause: check backend-health, service backend)",
        "/runbooks/slow-responses",
        "$ curl -s -o /dev/null -w 'connect=%{time_connect}s",
        ("backend-health: [RESPONSE_TIME] (",),
    ),
]


@pytest.mark.parametrize(
    ("component", "headline", "link", "command", "evidence"),
    DEMO_CASES,
    ids=[c[0] for c in DEMO_CASES],
)
def test_demo_with_a_broken_component_prints_the_right_runbook(
    demo_backend: str,
    component: str,
    headline: str,
    link: str,
    command: str,
    evidence: tuple[str, ...],
) -> None:
    """Breaking a demo component makes `explain` print the matching diagnosis, its evidence
    (each failed condition with its value), whether a rollback could help, the runbook link
    and the runbook's first command (with the check's own URL), and exit 1."""
    httpx.post(f"{demo_backend}/demo/break/{component}").raise_for_status()
    code, out, err = explain(demo_backend)
    assert code == 1, err
    first = out.split("\n\n")[1]  # problems are printed critical first
    assert first.startswith(headline), out
    assert "Runbook: " in first and f"http://127.0.0.1:9110{link}" in first
    assert command.replace("{backend}", demo_backend) in first
    assert "  Evidence:\n    backend-health: " in first
    for line in evidence:
        assert line in first


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


@pytest.mark.postgres
def test_database_failure_is_told_apart_from_the_backend_side(
    make_postgres: PostgresFactory, tmp_path: Path
) -> None:
    """Real PostgreSQL: a backend with a wrong DATABASE_URL while opsmon connects fine is
    "from the backend's side" (first step: DATABASE_URL); the server stopped makes the
    database the root and the backend affected. No password is ever printed."""
    cluster = make_postgres()
    wrong = cluster.dsn(password="canary-wrong-pw-4711")
    config = tmp_path / "opsmon.yml"
    config.write_text(
        "public_url: http://opsmon.example:9110\n"
        "defaults: {timeout: 3s, interval: 10s}\n"
        "checks:\n"
        "  - {name: database, type: postgres, service: db, dsn: '${OPSMON_TEST_DSN}'}\n"
        "  - name: backend-health\n"
        "    type: http\n"
        "    service: backend\n"
        "    url: ${BACKEND_URL}/api/health\n"
        "    depends_on: [database]\n"
        "    conditions: ['[STATUS] == 200', '[BODY].services.database == ok']\n"
    )
    secret = "app-pw-for-tests"
    with serve(database_backend(wrong)) as backend:
        env = {"OPSMON_TEST_DSN": cluster.dsn(), "BACKEND_URL": backend}
        done = run_opsmon("explain", "--config", str(config), env=env)
        assert done.returncode == 1, done.stderr
        assert done.stdout.splitlines()[2].startswith(
            "CRITICAL  DatabaseConnectionFailing  "
            "(root cause: check backend-health, service backend)"
        )
        assert "DATABASE_URL" in done.stdout.splitlines()[3]
        assert "database: opsmon's own PostgreSQL check connects fine" in done.stdout
        assert 'echo "$DATABASE_URL"' in done.stdout
        # The runbook's own masked example survives (bold markers are stripped outside code).
        assert "It must read `postgresql://USER:***@db:5432/Neola`:" in done.stdout
        assert "http://opsmon.example:9110/runbooks/database-connection-failing" in done.stdout

        cluster.stop()
        done = run_opsmon("explain", "--config", str(config), env=env)
        assert done.returncode == 1, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "1 problem found by 2 checks:"
        assert lines[2] == (
            "CRITICAL  DatabaseConnectionFailing  (root cause: check database, service db)"
        )
        assert "  Affected: backend-health (symptoms of this cause)" in lines
        assert "connection refused" in done.stdout
        # The first step is rendered for the config: the check's host, port and user.
        assert (
            f"$ docker compose exec -T db pg_isready -h 127.0.0.1 -p {cluster.port} -U app"
            in done.stdout
        )
    for output in (done.stdout, done.stderr):
        assert secret not in output and "canary-wrong-pw-4711" not in output


@pytest.mark.docker
def test_container_without_a_required_variable(tmp_path: Path) -> None:
    """Real Docker: a container started without a required variable gives exactly one
    EnvironmentVariablesMissing naming it, its health check listed as affected, the first
    command for its Compose project, and no value of any of its variables in the output."""
    canary = "canary-value-5b1c9e"
    with stack() as compose:
        compose.run(
            "backend",
            "echo 'Invalid environment variables'; exit 1",
            environment={"ANTHROPIC_API_KEY": canary, "NODE_ENV": f"prod-{canary}"},
        )
        wait_until(lambda: compose.state(f"{compose.project}-backend-1")["Status"] == "exited")
        config = tmp_path / "opsmon.yml"
        config.write_text(
            "checks:\n"
            "  - name: backend-container\n"
            "    type: container\n"
            f"    project: {compose.project}\n"
            "    service: backend\n"
            "    required_env: [DATABASE_URL, ANTHROPIC_API_KEY, NODE_ENV]\n"
            "  - name: backend-health\n"
            "    type: http\n"
            "    service: backend\n"
            f"    url: http://127.0.0.1:{free_port()}/api/health\n"
        )
        done = run_opsmon("explain", "--config", str(config))
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "1 problem found by 2 checks:"
    assert lines[2] == (
        "CRITICAL  EnvironmentVariablesMissing  "
        "(root cause: check backend-container, service backend)"
    )
    assert "not set (DATABASE_URL)" in lines[3]
    assert "  Affected: backend-health (symptoms of this cause)" in lines
    # The first step names the stack's Compose project (from the container check).
    first_step = (
        f"$ docker compose -p {compose.project} logs --tail=200 backend"
        " | grep -A 20 'Invalid environment"
    )
    assert first_step in done.stdout
    assert canary not in done.stdout + done.stderr

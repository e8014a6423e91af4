"""Diagnosis in the alerts, with real parts: one outage pages once, names its root cause, lists
what it took down, links a runbook that opens, and leaks no secret."""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.backends import database_backend, serve
from tests.support.cli import running_daemon
from tests.support.docker import stack
from tests.support.environment import free_port
from tests.support.postgres import PostgresFactory
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until

ALERTING = """\
alerting:
  group_wait: 2s
  group_interval: 1s
  channels:
    - {name: hooks, type: webhook, url: "${HOOK_URL}"}
"""


def alerts(receiver: Receiver) -> list[tuple[str, str, str]]:
    """`(status, alertname, check)` of every alert delivered so far, in order."""
    return [
        (a["status"], a["labels"]["alertname"], a["labels"].get("check", ""))
        for request in receiver.accepted()
        for a in request.json["alerts"]
    ]


@pytest.mark.postgres
def test_database_outage_pages_once_with_the_backend_affected(
    make_postgres: PostgresFactory, receiver: Receiver, tmp_path: Path
) -> None:
    """Stopping the real database sends exactly one DatabaseConnectionFailing, listing the
    backend's health check as affected, whose runbook link opens; starting it sends one
    RESOLVED. The backend's own failure never pages."""
    cluster = make_postgres()
    port = free_port()
    config = tmp_path / "opsmon.yml"
    config.write_text(
        textwrap.dedent(f"""\
        public_url: http://127.0.0.1:{port}
        state_dir: {tmp_path / "state"}
        defaults: {{interval: 500ms, timeout: 450ms, failure_threshold: 2, success_threshold: 2}}
        checks:
          - {{name: database, type: postgres, service: db, dsn: "${{OPSMON_TEST_DSN}}"}}
          - name: backend-health
            type: http
            service: backend
            url: ${{BACKEND_URL}}/api/health
            depends_on: [database]
            conditions: ["[STATUS] == 200", "[BODY].services.database == ok"]
        """)
        + ALERTING
    )
    with serve(database_backend(cluster.dsn())) as backend:
        env = {"OPSMON_TEST_DSN": cluster.dsn(), "BACKEND_URL": backend, "HOOK_URL": receiver.url()}
        with running_daemon(config, port, env=env) as daemon:
            cluster.stop()
            wait_until(lambda: alerts(receiver), timeout=30)
            cluster.start()
            wait_until(lambda: len(alerts(receiver)) >= 2, timeout=30)
            firing: dict[str, Any] = receiver.accepted()[0].json["alerts"][0]
            runbook = httpx.get(firing["annotations"]["runbook_url"], timeout=5)
            daemon.send_signal(signal.SIGTERM)
            output, _ = daemon.communicate(timeout=10)
    assert alerts(receiver) == [
        ("firing", "DatabaseConnectionFailing", "database"),
        ("resolved", "DatabaseConnectionFailing", "database"),
    ]
    assert "backend-health" in firing["annotations"]["affected"]
    assert "connection refused" in firing["annotations"]["description"]
    assert "pg_isready" in firing["annotations"]["description"]
    assert runbook.status_code == 200 and "Database connection fails" in runbook.text
    password = cluster.dsn().split(":")[2].split("@")[0]
    sent = "".join(r.body.decode() for r in receiver.accepted())
    assert password not in sent and password not in output


@pytest.mark.docker
def test_missing_variable_pages_once_naming_it_without_values(
    receiver: Receiver, tmp_path: Path
) -> None:
    """A container started without a required variable sends one EnvironmentVariablesMissing
    naming the variable; no value of any of its variables appears in alerts or logs."""
    canary = "canary-env-value-83f1"
    port = free_port()
    with stack() as compose:
        compose.run(
            "backend",
            "echo 'Invalid environment variables'; exit 1",
            environment={"ANTHROPIC_API_KEY": canary, "NODE_ENV": f"prod-{canary}"},
        )
        wait_until(lambda: compose.state(f"{compose.project}-backend-1")["Status"] == "exited")
        config = tmp_path / "opsmon.yml"
        config.write_text(
            textwrap.dedent(f"""\
            public_url: http://127.0.0.1:{port}
            state_dir: {tmp_path / "state"}
            defaults: {{interval: 500ms, timeout: 450ms, failure_threshold: 2}}
            checks:
              - name: backend-container
                type: container
                project: {compose.project}
                service: backend
                required_env: [DATABASE_URL, ANTHROPIC_API_KEY, NODE_ENV]
                inspect_logs: true
              - name: backend-health
                type: http
                service: backend
                url: http://127.0.0.1:{free_port()}/api/health
            """)
            + ALERTING
        )
        with running_daemon(config, port, env={"HOOK_URL": receiver.url()}) as daemon:
            wait_until(lambda: alerts(receiver), timeout=30)
            status = httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=5).text
            daemon.send_signal(signal.SIGTERM)
            output, _ = daemon.communicate(timeout=10)
    assert alerts(receiver) == [("firing", "EnvironmentVariablesMissing", "backend-container")]
    annotations = receiver.accepted()[0].json["alerts"][0]["annotations"]
    assert "DATABASE_URL" in annotations["summary"] + annotations["description"]
    assert "backend-health" in annotations["affected"]
    everything = json.dumps([r.json for r in receiver.accepted()]) + status + output
    assert canary not in everything

"""Runbooks rendered for the running config: real URLs, the compose file and project, no
`logs -f`, and the escalation contacts."""

from __future__ import annotations

from pathlib import Path

from monitor.config import load_config
from monitor.runbook_context import RunbookContext, escalation_section, localize
from monitor.runbooks import load_catalogue, localize_runbook

CONFIG = """
runbooks:
  compose_file: /srv/app/docker-compose.prod.yml
  escalation: ["backend owners: #backend-oncall"]
checks:
  - {name: backend-health, type: http, service: backend, url: "http://127.0.0.1:4100/api/health"}
  - {name: frontend, type: http, service: frontend, url: "https://shop.example.com/"}
  - {name: backend-container, type: container, service: backend, project: shop}
"""


def context(tmp_path: Path, text: str = CONFIG) -> RunbookContext:
    """The context of a config file with these contents."""
    path = tmp_path / "opsmon.yml"
    path.write_text(text)
    return RunbookContext.of(load_config(path, environ={}).config)


def test_commands_use_the_real_urls_compose_file_and_project(tmp_path: Path) -> None:
    """`http://backend:4000` becomes the backend check's URL, `docker compose` names the file
    and the project, `logs -f` (which never returns) becomes `logs --tail=200`."""
    ctx = context(tmp_path)
    assert ctx.urls == {"backend": "http://127.0.0.1:4100", "frontend": "https://shop.example.com"}
    assert localize("curl -s http://backend:4000/api/ready", ctx) == (
        "curl -s http://127.0.0.1:4100/api/ready"
    )
    compose = "docker compose -f /srv/app/docker-compose.prod.yml -p shop"
    assert localize("docker compose logs -f backend", ctx) == f"{compose} logs --tail=200 backend"
    assert localize("docker compose -f docker-compose.prod.yml up -d", ctx) == f"{compose} up -d"
    assert localize("curl http://mastra:4111/health", ctx) == "curl http://mastra:4111/health"


def test_without_a_runbooks_section_only_what_is_known_changes(tmp_path: Path) -> None:
    """No compose file configured: the runbook's own file name stays; the project of the
    container checks is still named."""
    ctx = context(
        tmp_path,
        CONFIG.split("checks:")[0].split("runbooks:")[0] + "checks:" + CONFIG.split("checks:")[1],
    )
    assert ctx.compose == "docker compose -p shop"
    assert localize("docker compose ps", ctx) == "docker compose -p shop ps"
    assert localize("docker compose -f docker-compose.prod.yml up -d", ctx) == (
        "docker compose -f docker-compose.prod.yml -p shop up -d"
    )
    assert escalation_section(ctx) == ""


def test_every_bundled_runbook_renders_for_the_config(tmp_path: Path) -> None:
    """No rendered runbook keeps `http://backend:4000`, `logs -f` or a bare `docker compose`;
    each lists the escalation contacts."""
    ctx = context(tmp_path)
    for runbook in load_catalogue():
        shown = localize_runbook(runbook, ctx)
        for text in (shown.body, *(s.command for s in shown.steps)):
            assert "http://backend:4000" not in text, runbook.id
            assert "logs -f" not in text, runbook.id
            assert "docker compose ps" not in text, runbook.id
        assert "- backend owners: #backend-oncall" in shown.body


def test_compose_v1_command(tmp_path: Path) -> None:
    """`compose_command: docker-compose` (Compose v1) is what the commands call."""
    ctx = context(tmp_path, "runbooks: {compose_command: docker-compose, project: app}\n")
    assert localize("docker compose ps -aq backend", ctx) == "docker-compose -p app ps -aq backend"
    assert localize("docker compose -f docker-compose.prod.yml up -d", ctx) == (
        "docker-compose -f docker-compose.prod.yml -p app up -d"
    )


def test_exec_runs_without_a_terminal_and_opsmon_is_reached_at_its_public_url(
    tmp_path: Path,
) -> None:
    """`exec` gets -T (a pasted or piped command has no TTY); opsmon's own URL is the
    configured public_url."""
    ctx = context(tmp_path, "public_url: http://10.0.0.5:9110/\n" + CONFIG)
    compose = "docker compose -f /srv/app/docker-compose.prod.yml -p shop"
    assert localize("docker compose exec db pg_isready", ctx) == f"{compose} exec -T db pg_isready"
    assert localize("curl -s http://localhost:9110/metrics", ctx) == (
        "curl -s http://10.0.0.5:9110/metrics"
    )


def test_database_commands_use_the_checks_address_and_never_its_password(tmp_path: Path) -> None:
    """Network database commands take host, port and user from the postgres check's DSN,
    psql the database name; the password never appears; state_dir replaces the image's."""
    text = (
        CONFIG
        + "  - {name: database, type: postgres, service: db,"
        + ' dsn: "postgresql://app:canary-pw-7731@127.0.0.1:6543/shopdb"}\n'
        + "state_dir: /srv/opsmon-state\n"
    )
    ctx = context(tmp_path, text)
    compose = "docker compose -f /srv/app/docker-compose.prod.yml -p shop"
    assert localize("pg_isready -h db -U postgres", ctx) == (
        "pg_isready -h 127.0.0.1 -p 6543 -U app"
    )
    # Inside the db container the local socket stays (no password needed); the name changes.
    assert localize('docker compose exec db psql -U postgres -d Neola -c "SELECT 1"', ctx) == (
        f'{compose} exec -T db psql -U postgres -d shopdb -c "SELECT 1"'
    )
    assert localize("require('net').connect(5432,'db')", ctx) == (
        "require('net').connect(6543,'127.0.0.1')"
    )
    assert localize("df -h /var/lib/opsmon", ctx) == "df -h /srv/opsmon-state"
    rendered = [localize_runbook(runbook, ctx).body for runbook in load_catalogue()]
    assert any("-p 6543" in body for body in rendered)
    assert not any("canary-pw-7731" in body for body in rendered)


def test_service_urls_drop_the_credentials_of_the_checks_url(tmp_path: Path) -> None:
    """A check URL with `user:password@` gives runbook commands its host and port only (an
    IPv6 host keeps its brackets): the password never reaches a rendered runbook."""
    ctx = context(
        tmp_path,
        "checks:\n"
        '  - {name: api, type: http, service: backend, url: "http://ops:canary-url-pw-4410@127.0.0.1:4100/h"}\n'
        '  - {name: web, type: http, service: frontend, url: "http://[::1]:3100/"}\n',
    )
    assert ctx.urls == {"backend": "http://127.0.0.1:4100", "frontend": "http://[::1]:3100"}
    rendered = [localize_runbook(runbook, ctx).body for runbook in load_catalogue()]
    assert any("http://127.0.0.1:4100/api/health" in body for body in rendered)
    assert not any("canary-url-pw-4410" in body for body in rendered)


def test_check_commands_name_the_configs_own_checks(tmp_path: Path) -> None:
    """`opsmon explain database` and `opsmon check --only backend-health` name the config's
    check in that role (postgres; the backend's health URL) when it has no check of that
    name; a name it has, or a role two checks share, stays."""
    ctx = context(
        tmp_path,
        "checks:\n"
        '  - {name: shop-db, type: postgres, dsn: "postgresql://app@127.0.0.1:6543/shop"}\n'
        '  - {name: api-health, type: http, service: backend, url: "http://127.0.0.1:4100/api/health"}\n'
        '  - {name: api-ready, type: http, service: backend, url: "http://127.0.0.1:4100/api/ready"}\n'
        '  - {name: frontend, type: http, service: frontend, url: "http://127.0.0.1:3100/"}\n'
        "  - {name: web-1, type: container, service: backend, project: shop}\n"
        "  - {name: web-2, type: container, service: backend, project: shop}\n",
    )
    assert localize("opsmon explain database", ctx) == "opsmon explain shop-db"
    assert localize("opsmon check --only backend-health", ctx) == "opsmon check --only api-health"
    assert localize("opsmon explain backend-ready", ctx) == "opsmon explain api-ready"
    assert localize("opsmon check --only frontend", ctx) == "opsmon check --only frontend"
    assert localize("opsmon explain backend-container", ctx) == "opsmon explain backend-container"
    assert localize("the `database` check", ctx) == "the `database` check"

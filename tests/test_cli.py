"""The real `opsmon` command: check, config validate, exit codes, output formats."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_opsmon, running_daemon
from tests.support.environment import free_port_v6, ipv6_loopback
from tests.support.http_target import Answer, Target, serve
from tests.support.waiting import wait_until

CANARY = "canary-header-token-7f3a"


@pytest.fixture
def backend() -> Iterator[Target]:
    with serve() as target:
        target.routes["/api/health"] = Answer(body={"status": "ok", "services": {"database": "ok"}})
        target.routes["/api/ready"] = Answer(status=503, body={"ready": False})
        yield target


def write_config(tmp_path: Path, backend: Target) -> Path:
    path = tmp_path / "opsmon.yml"
    path.write_text(
        textwrap.dedent(f"""\
        checks:
          - name: backend-health
            type: http
            service: backend
            url: {backend.url("/api/health")}
            headers: {{Authorization: "Bearer ${{API_TOKEN}}"}}
            conditions: ["[STATUS] == 200", "[BODY].services.database == ok"]
          - name: backend-ready
            type: http
            service: backend
            url: {backend.url("/api/ready")}
            conditions: ["[STATUS] == 200", "[BODY].ready == true"]
        """)
    )
    return path


def test_check_prints_table_and_exits_1_when_any_unhealthy(tmp_path: Path, backend: Target) -> None:
    """`opsmon check` prints one row per check with the reason and exits 1 if any failed."""
    result = run_opsmon(
        "check", "--config", str(write_config(tmp_path, backend)), env={"API_TOKEN": CANARY}
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "TYPE", "SERVICE", "RESULT", "TIME", "REASON"]
    health = next(line for line in lines if line.startswith("backend-health"))
    ready = next(line for line in lines if line.startswith("backend-ready"))
    assert " healthy " in health
    assert " unhealthy " in ready and "[STATUS] (503) == 200" in ready
    assert CANARY not in result.stdout + result.stderr
    health = next(headers for _, path, headers in backend.requests if path == "/api/health")
    assert health["Authorization"] == f"Bearer {CANARY}"


def test_check_only_and_json(tmp_path: Path, backend: Target) -> None:
    """`--only NAME --json` runs just that check and prints machine-readable results; exit 0."""
    result = run_opsmon(
        "check",
        "--config",
        str(write_config(tmp_path, backend)),
        "--only",
        "backend-health",
        "--json",
        env={"API_TOKEN": CANARY},
    )
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)
    assert entry["name"] == "backend-health" and entry["ok"] is True
    assert entry["facts"]["STATUS"] == 200
    assert [r[1] for r in backend.requests] == ["/api/health"]


def test_check_unknown_only_is_exit_2(tmp_path: Path, backend: Target) -> None:
    """`--only` with a name that is not configured says so and exits 2."""
    result = run_opsmon(
        "check",
        "--config",
        str(write_config(tmp_path, backend)),
        "--only",
        "nope",
        env={"API_TOKEN": CANARY},
    )
    assert result.returncode == 2
    assert "no check named nope" in result.stderr


def test_check_config_error_is_exit_2(tmp_path: Path, backend: Target) -> None:
    """A missing variable makes `check` exit 2 and name the variable, never a value."""
    result = run_opsmon(
        "check", "--config", str(write_config(tmp_path, backend)), env={"API_TOKEN_OTHER": CANARY}
    )
    assert result.returncode == 2
    assert "environment variable API_TOKEN is not set" in result.stderr


def test_config_validate(tmp_path: Path, backend: Target) -> None:
    """`config validate` exits 0 on a valid file and 2 with file:line:key on an invalid one."""
    path = write_config(tmp_path, backend)
    ok = run_opsmon("config", "validate", "--config", str(path), env={"API_TOKEN": CANARY})
    assert ok.returncode == 0 and "valid (2 checks)" in ok.stdout
    assert CANARY not in ok.stdout
    path.write_text(
        path.read_text().replace(
            "type: http\n    service: backend\n    url",
            "type: http\n    service: backend\n    interval: 0s\n    url",
            1,
        )
    )
    bad = run_opsmon("config", "validate", "--config", str(path), env={"API_TOKEN": CANARY})
    assert bad.returncode == 2
    assert f"{path}:5: checks[0].interval: must be > 0" in bad.stdout


def test_config_validate_rejects_conditions_that_cannot_work(tmp_path: Path) -> None:
    """The issue-13 conditions fail `config validate` with exit 2, one located line each."""
    path = tmp_path / "opsmon.yml"
    path.write_text(
        textwrap.dedent("""\
        checks:
          - name: api
            type: http
            url: http://127.0.0.1:9/
            conditions:
              - "[STAUS] == 200"
              - "len([BODY].a == 1"
              - "[STATUS] < 1s"
              - "[IP] == 127.0.0.1"
          - name: db
            type: postgres
            dsn: postgresql://app@127.0.0.1:9/app
            conditions: ["[IP] == 127.0.0.1"]
        """)
    )
    result = run_opsmon("config", "validate", "--config", str(path))
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert [line.split(": ", 2)[:2] for line in lines] == [
        [f"{path}:6", "checks[0].conditions[0]"],
        [f"{path}:7", "checks[0].conditions[1]"],
        [f"{path}:8", "checks[0].conditions[2]"],
        [f"{path}:13", "checks[1].conditions[0]"],
    ]
    assert "[STAUS] is not a placeholder of http checks (did you mean [STATUS]?" in lines[0]
    assert "unbalanced parentheses" in lines[1]
    assert "[STATUS] is a number, not a time" in lines[2]
    assert "[IP] is not a placeholder of postgres checks" in lines[3]


def test_config_path_from_environment(tmp_path: Path, backend: Target) -> None:
    """Without --config, $OPSMON_CONFIG is used."""
    path = write_config(tmp_path, backend)
    result = run_opsmon("config", "validate", env={"OPSMON_CONFIG": str(path), "API_TOKEN": CANARY})
    assert result.returncode == 0 and str(path) in result.stdout


def test_config_path_falls_back_to_local_file(tmp_path: Path, backend: Target) -> None:
    """Without --config or $OPSMON_CONFIG, ./opsmon.yml in the working directory is used."""
    write_config(tmp_path, backend)
    result = run_opsmon(
        "config", "validate", cwd=tmp_path, env={"OPSMON_CONFIG": "", "API_TOKEN": CANARY}
    )
    assert result.returncode == 0 and "opsmon.yml: valid" in result.stdout


def test_run_with_bad_config_exits_2(tmp_path: Path) -> None:
    """`opsmon run` with an invalid config exits 2 at start, naming the problem."""
    path = tmp_path / "opsmon.yml"
    path.write_text("checks:\n  - name: a\n    type: http\n    url: nope\n")
    result = run_opsmon("run", "--config", str(path), timeout=30)
    assert result.returncode == 2
    assert f"{path}:4: checks[0].url" in result.stderr


# What a command that needs no network, engine or web server must not import (the daemon and
# `opsmon check` do, lazily, for the check types and channels the config uses).
HEAVY_MODULES = (
    "httpx",
    "docker",
    "psycopg",
    "uvicorn",
    "starlette",
    "prometheus_client",
    "aiosmtplib",
    "markdown_it",
)
_PROBE = (
    "import sys\n"
    "from monitor.cli import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    "print('IMPORTED', ' '.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n"
)


def _imported_by(*args: str, cwd: Path) -> set[str]:
    """Run `opsmon ARGS` in a fresh interpreter; return the heavy modules it imported."""
    probe = _PROBE.format(heavy=HEAVY_MODULES)
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("IMPORTED"))
    return set(line.split()[1:])


def test_help_imports_no_heavy_library(tmp_path: Path) -> None:
    """`opsmon --help` prints usage without importing httpx, docker, psycopg, uvicorn, ..."""
    assert _imported_by("--help", cwd=tmp_path) == set()


def test_config_validate_imports_no_heavy_library(tmp_path: Path) -> None:
    """`opsmon config validate` checks a config without importing any network library."""
    path = tmp_path / "opsmon.yml"
    path.write_text("checks:\n  - {name: web, type: http, url: 'http://127.0.0.1:1/'}\n")
    assert _imported_by("config", "validate", "--config", str(path), cwd=tmp_path) == set()


def test_runbooks_list_imports_no_heavy_library(tmp_path: Path) -> None:
    """`opsmon runbooks list` lists the runbooks without importing markdown_it or the rest."""
    assert _imported_by("runbooks", "list", cwd=tmp_path) == set()


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "checks: []\n"])
def test_config_that_watches_nothing_is_valid_with_a_warning(tmp_path: Path, text: str) -> None:
    """An empty config or `checks: []` still validates (exit 0), but stderr says that nothing
    will be watched; `check` says the same."""
    path = tmp_path / "opsmon.yml"
    path.write_text(text)
    validated = run_opsmon("config", "validate", "--config", str(path))
    assert validated.returncode == 0, validated.stderr
    assert "valid (0 checks)" in validated.stdout
    warning = f"{path}: warning: no checks and no container discovery: nothing will be watched"
    assert warning in validated.stderr
    assert "warning" not in validated.stdout
    checked = run_opsmon("check", "--config", str(path))
    assert checked.returncode == 0 and warning in checked.stderr


def test_config_with_checks_gives_no_warning(tmp_path: Path, backend: Target) -> None:
    """A config that watches something validates without any warning."""
    path = write_config(tmp_path, backend)
    validated = run_opsmon("config", "validate", "--config", str(path), env={"API_TOKEN": CANARY})
    assert validated.returncode == 0 and validated.stderr == ""


def test_ipv6_listen_address_validates(tmp_path: Path) -> None:
    """`listen: "[::1]:9110"` is valid; an unbracketed IPv6 host is refused, saying how to write
    it, with file, line and key."""
    path = tmp_path / "opsmon.yml"
    path.write_text('listen: "[::1]:9110"\n')
    ok = run_opsmon("config", "validate", "--config", str(path))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    path.write_text("state_dir: ./state\nlisten: ::1:9110\n")
    bad = run_opsmon("config", "validate", "--config", str(path))
    assert bad.returncode == 2
    assert f"{path}:2: listen: an IPv6 host goes in brackets, as in [::1]:9110" in bad.stdout


def test_run_serves_on_ipv6_loopback(tmp_path: Path, backend: Target) -> None:
    """With `listen: "[::1]:PORT"` the daemon answers /healthz and /api/status over IPv6 and
    logs the bracketed address."""
    ipv6_loopback()
    port = free_port_v6()
    path = write_config(tmp_path, backend)
    path.write_text(f'listen: "[::1]:{port}"\nstate_dir: {tmp_path / "state"}\n' + path.read_text())
    env = {"API_TOKEN": CANARY, "OPSMON_LISTEN": ""}
    with running_daemon(path, port, env=env, ready=False) as process:

        def answers() -> bool:
            try:
                return httpx.get(f"http://[::1]:{port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return process.poll() is not None

        wait_until(answers, timeout=20)
        assert process.poll() is None, process.stdout.read()  # type: ignore[union-attr]
        status = httpx.get(f"http://[::1]:{port}/api/status", timeout=2).json()
        assert {c["name"] for c in status["checks"]} == {"backend-health", "backend-ready"}
    log = process.stdout.read()  # type: ignore[union-attr]
    assert f'"listen": "[::1]:{port}"' in log


DB_CANARY = "canary-db-pw-5d21"


def write_runbook_config(tmp_path: Path) -> Path:
    """A config naming its own backend URL, database, project, state_dir and contacts; the
    DSN carries a canary password from the environment."""
    path = tmp_path / "opsmon.yml"
    path.write_text(
        textwrap.dedent("""\
        state_dir: /srv/shop-opsmon
        public_url: http://127.0.0.1:9311
        runbooks:
          compose_file: /srv/shop/docker-compose.prod.yml
          escalation: ["shop backend on-call: #shop-backend"]
        checks:
          - {name: shop-db, type: postgres, service: db, dsn: "${SHOP_DATABASE_URL}"}
          - name: backend-health
            type: http
            service: backend
            url: http://127.0.0.1:4711/api/health
          - {name: backend-container, type: container, project: shop, service: backend}
        """)
    )
    return path


SHOP_ENV = {"SHOP_DATABASE_URL": f"postgresql://shopper:{DB_CANARY}@127.0.0.1:6544/shopdb"}


def test_runbooks_show_renders_for_the_given_config(tmp_path: Path) -> None:
    """`runbooks show NAME --config FILE` prints the commands for that config (its URLs, compose
    file and project, database address and check, state_dir, contacts), never the DSN
    password."""
    path = write_runbook_config(tmp_path)
    shown = run_opsmon(
        "runbooks", "show", "DatabaseConnectionFailing", "--config", str(path), env=SHOP_ENV
    )
    assert shown.returncode == 0, shown.stderr
    compose = "docker compose -f /srv/shop/docker-compose.prod.yml -p shop"
    assert f"    {compose} exec -T db pg_isready -h 127.0.0.1 -p 6544 -U shopper" in shown.stdout
    assert "    curl -s http://127.0.0.1:4711/api/health" in shown.stdout
    assert f"    {compose} ps db" in shown.stdout
    assert "- shop backend on-call: #shop-backend" in shown.stdout
    assert "    opsmon check --only shop-db" in shown.stdout  # the config's check, not `database`
    assert "opsmon explain database" not in shown.stdout
    assert "http://backend:4000" not in shown.stdout
    assert DB_CANARY not in shown.stdout + shown.stderr
    state = run_opsmon(
        "runbooks", "show", "state-store-failing", "--config", str(path), env=SHOP_ENV
    )
    assert state.returncode == 0, state.stderr
    assert "/srv/shop-opsmon" in state.stdout and "/var/lib/opsmon" not in state.stdout
    assert DB_CANARY not in state.stdout + state.stderr


def test_runbooks_show_finds_the_config_as_other_commands_do(tmp_path: Path) -> None:
    """Without --config, `runbooks show` renders for $OPSMON_CONFIG, else ./opsmon.yml, as
    `opsmon explain` and `opsmon run` do; with none of them it prints the shipped runbook."""
    path = write_runbook_config(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    by_env = run_opsmon(
        "runbooks",
        "show",
        "database-connection-failing",
        cwd=other,
        env={**SHOP_ENV, "OPSMON_CONFIG": str(path)},
    )
    assert by_env.returncode == 0, by_env.stderr
    assert "pg_isready -h 127.0.0.1 -p 6544 -U shopper" in by_env.stdout
    local = run_opsmon(
        "runbooks",
        "show",
        "database-connection-failing",
        cwd=tmp_path,
        env={**SHOP_ENV, "OPSMON_CONFIG": ""},
    )
    assert local.returncode == 0, local.stderr
    assert local.stdout == by_env.stdout
    generic = run_opsmon(
        "runbooks", "show", "database-connection-failing", cwd=other, env={"OPSMON_CONFIG": ""}
    )
    assert generic.returncode == 0, generic.stderr
    assert "    docker compose exec db pg_isready -h db -U postgres" in generic.stdout
    assert DB_CANARY not in by_env.stdout + by_env.stderr + local.stdout + local.stderr


def test_runbooks_show_with_a_broken_config_says_why_or_prints_the_generic_page(
    tmp_path: Path,
) -> None:
    """A config that does not load is a config error (exit 2, file:line: key: message) that
    names `--generic`, which prints the shipped runbook whatever the config."""
    path = write_runbook_config(tmp_path)
    broken = run_opsmon("runbooks", "show", "database-connection-failing", "--config", str(path))
    assert broken.returncode == 2
    assert f"{path}:7: checks[0].dsn" in broken.stderr
    assert "--generic" in broken.stderr and broken.stdout == ""
    generic = run_opsmon(
        "runbooks",
        "show",
        "database-connection-failing",
        "--generic",
        cwd=tmp_path,
        env={"OPSMON_CONFIG": ""},
    )
    assert generic.returncode == 0, generic.stderr
    assert "    docker compose exec db pg_isready -h db -U postgres" in generic.stdout

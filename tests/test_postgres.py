"""The PostgreSQL check against real PostgreSQL 15 servers on 127.0.0.1 (scram passwords).

Tests that only read use the shared `postgres` cluster; tests that stop, freeze, exhaust or
restart a server use their own (`make_postgres`).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from monitor.checks.context import CheckContext
from monitor.checks.postgres import FAILURE_KINDS, PostgresCheck, PostgresSpec
from monitor.clock import SystemClock
from monitor.config import ConfigError, load_config
from monitor.core.result import CheckResult
from monitor.logs import configure_logging
from monitor.metrics import Metrics
from monitor.redaction import Redactor
from monitor.runner import CheckRunner
from tests.support.certs import self_signed
from tests.support.cli import run_opsmon
from tests.support.environment import free_port
from tests.support.postgres import (
    APP_DATABASE,
    APP_PASSWORD,
    APP_USER,
    PostgresCluster,
    PostgresFactory,
    PostgresTemplate,
    chown_to_postgres,
)
from tests.support.waiting import async_wait_until

REPO = Path(__file__).resolve().parent.parent
# Needs URL-encoding (@, /, !) so both the written and the decoded form are grepped for.
CANARY = "canary-Pw!7q@x/Z"


@pytest.fixture
async def context() -> AsyncIterator[CheckContext]:
    ctx = CheckContext(Metrics())
    yield ctx
    await ctx.http.aclose()


def make_spec(dsn: str, **fields: Any) -> PostgresSpec:
    base: dict[str, Any] = {"name": "database", "type": "postgres", "dsn": dsn, "timeout": 5}
    return PostgresSpec.model_validate(base | fields)


async def check(context: CheckContext, dsn: str, **fields: Any) -> CheckResult:
    result = await PostgresCheck(make_spec(dsn, **fields), context).run()
    assert result.ok or result.kind in FAILURE_KINDS, result.kind
    return result


def sample(context: CheckContext, name: str, **labels: str) -> float | None:
    return context.metrics.registry.get_sample_value(name, {"check": "database", **labels})


def open_sockets() -> set[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(f"{fd}:{target}")
    return found


async def until_kind(
    context: CheckContext, dsn: str, kind: str, within: float = 20, **fields: Any
) -> CheckResult:
    """Run the check until it reports `kind` (servers change state asynchronously)."""

    async def seen() -> CheckResult | None:
        result = await check(context, dsn, **fields)
        return result if result.kind == kind else None

    found = await async_wait_until(seen, timeout=within, interval=0.1)
    assert found is not None
    return found


# ---------------------------------------------------------------- healthy ---


@pytest.mark.parametrize("form", ["url", "keyvalue"])
async def test_healthy_server_reports_every_fact(
    postgres: PostgresCluster, context: CheckContext, form: str
) -> None:
    """A healthy server passes and yields every fact, whether the DSN is a URL or key=value."""
    dsn = postgres.dsn() if form == "url" else postgres.keyvalue_dsn()
    result = await check(context, dsn)
    assert result.ok, result.reason
    facts = result.facts
    assert facts["CONNECTED"] is True
    assert facts["SERVER_VERSION"].startswith("15.")
    assert facts["SERVER_VERSION_NUM"] // 10000 == 15
    assert facts["IN_RECOVERY"] is False
    assert "plpgsql" in facts["EXTENSIONS"]
    [(size,)] = postgres.sql(f"SELECT pg_database_size('{APP_DATABASE}')")
    assert abs(facts["DATABASE_SIZE_BYTES"] - size) < 1024 * 1024
    assert facts["MAX_CONNECTIONS"] == 20
    assert facts["CONNECTIONS_USED"] >= 1
    assert facts["CONNECTIONS_USED_RATIO"] == round(facts["CONNECTIONS_USED"] / 20, 4)
    assert facts["CONNECT_TIME"] > 0 and facts["QUERY_TIME"] > 0
    assert facts["RESPONSE_TIME"] >= facts["CONNECT_TIME"] + facts["QUERY_TIME"] - 0.2
    json.dumps(dict(facts))  # /api/status and `opsmon check --json` serialise them
    assert sample(context, "opsmon_postgres_up") == 1
    assert sample(context, "opsmon_postgres_connect_duration_seconds_count") == 1
    ratio = sample(context, "opsmon_postgres_connections_used_ratio")
    assert ratio == facts["CONNECTIONS_USED_RATIO"]


async def test_conditions_see_the_facts_and_extensions(
    postgres: PostgresCluster, context: CheckContext
) -> None:
    """Conditions read the facts; has([EXTENSIONS], x) fails for a missing extension, passes
    once it is created."""
    database = "ext_probe"
    postgres.sql(f"CREATE DATABASE {database} OWNER {APP_USER}", "postgres")
    dsn = postgres.dsn(dbname=database)
    passing = [
        "has([EXTENSIONS], plpgsql)",
        "[IN_RECOVERY] == false",
        "[SERVER_VERSION] == pat(15.*)",
        "[DATABASE_SIZE_BYTES] > 1000",
        "[CONNECT_TIME] < 5s",
        "[CONNECTED]",
    ]
    result = await check(context, dsn, conditions=passing)
    assert result.ok, result.reason

    wanted = ["has([EXTENSIONS], vector)", "has([EXTENSIONS], pg_trgm)"]
    result = await check(context, dsn, conditions=wanted)
    assert not result.ok and result.kind == "condition"
    assert "has([EXTENSIONS], vector) (false)" in result.reason
    assert "has([EXTENSIONS], pg_trgm) (false)" in result.reason

    postgres.sql("CREATE EXTENSION pg_trgm", database)
    result = await check(context, dsn, conditions=["has([EXTENSIONS], pg_trgm)"])
    assert result.ok, result.reason
    assert "pg_trgm" in result.facts["EXTENSIONS"]
    assert sample(context, "opsmon_postgres_failures_total", kind="condition") == 1


async def test_sql_ascii_database_gives_text_facts(
    make_postgres: PostgresFactory, context: CheckContext, tmp_path: Path
) -> None:
    """A SQL_ASCII database (text arrives as bytes) still gives text facts: has([EXTENSIONS],
    x) holds, and `opsmon check --json` prints them instead of crashing."""
    cluster = make_postgres()
    cluster.sql(
        f"CREATE DATABASE legacy OWNER {APP_USER} ENCODING 'SQL_ASCII' TEMPLATE template0",
        "postgres",
    )
    [(encoding,)] = cluster.sql("SHOW server_encoding", "legacy")
    assert encoding == b"SQL_ASCII"  # psycopg hands a SQL_ASCII database's text over as bytes
    dsn = cluster.dsn(dbname="legacy")
    result = await check(
        context, dsn, conditions=["has([EXTENSIONS], plpgsql)"], query="SELECT 'caf\u00e9'"
    )
    assert result.ok, result.reason
    assert result.facts["EXTENSIONS"] == ["plpgsql"]
    assert result.facts["RESULT"] == "caf\u00e9"
    json.dumps(dict(result.facts))

    config = tmp_path / "opsmon.yml"
    config.write_text(
        "checks:\n  - name: database\n    type: postgres\n    dsn: ${DATABASE_URL}\n"
        '    conditions: ["has([EXTENSIONS], plpgsql)"]\n'
    )
    shown = run_opsmon(
        "check", "--json", "--config", str(config), env={"DATABASE_URL": dsn}, cwd=tmp_path
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "Traceback" not in shown.stderr
    [row] = json.loads(shown.stdout)
    assert row["ok"] is True and row["facts"]["EXTENSIONS"] == ["plpgsql"]


async def test_connections_used_ratio_condition_trips_while_connections_are_held(
    postgres: PostgresCluster, context: CheckContext
) -> None:
    """Connections held by another role raise [CONNECTIONS_USED_RATIO] past its bound, even
    though the check's role cannot see their details; releasing them brings the check back."""
    bound = ["[CONNECTIONS_USED_RATIO] < 0.5"]
    assert (await check(context, postgres.dsn(), conditions=bound)).ok
    held = [await psycopg.AsyncConnection.connect(**postgres.admin_params()) for _ in range(10)]
    try:
        result = await check(context, postgres.dsn(), conditions=bound)
        assert not result.ok and result.kind == "condition"
        ratio = result.facts["CONNECTIONS_USED_RATIO"]
        assert ratio >= 11 / 20  # the held ten and the check's own connection
        assert result.reason == f"[CONNECTIONS_USED_RATIO] ({ratio}) < 0.5"
        assert sample(context, "opsmon_postgres_connections_used_ratio") == ratio
        assert sample(context, "opsmon_postgres_up") == 1  # saturated, not down
    finally:
        for conn in held:
            await conn.close()

    async def recovered() -> bool:
        return (await check(context, postgres.dsn(), conditions=bound)).ok

    await async_wait_until(recovered, timeout=10)


# ------------------------------------------------------------- the query ---


async def test_configured_query_and_expected_result(
    postgres: PostgresCluster, context: CheckContext
) -> None:
    """`query` with `expect` passes on the expected value and fails naming both values."""
    dsn = postgres.dsn()
    result = await check(context, dsn, query="SELECT current_user", expect=APP_USER)
    assert result.ok, result.reason
    assert result.facts["RESULT"] == APP_USER
    result = await check(context, dsn, query="SELECT 40 + 2", expect=42)
    assert result.ok, result.reason
    result = await check(context, dsn, query="SELECT 40 + 2", conditions=["[RESULT] == 42"])
    assert result.ok, result.reason

    result = await check(context, dsn, query="SELECT current_user", expect="someone-else")
    assert not result.ok and result.kind == "unexpected_result"
    assert result.reason == f"query returned {APP_USER}, expected someone-else"
    result = await check(context, dsn, query="SELECT 1 WHERE false", expect=1)
    assert result.reason == "query returned no rows, expected 1"


async def test_query_error_is_reported_and_facts_are_kept(
    postgres: PostgresCluster, context: CheckContext
) -> None:
    """A failing query is a `query_error` with the server's message; the facts gathered before
    it are still there and the server counts as up."""
    result = await check(context, postgres.dsn(), query="SELECT * FROM no_such_table")
    assert not result.ok and result.kind == "query_error"
    assert result.reason == (
        'query failed: relation "no_such_table" does not exist (SQLSTATE 42P01)'
    )
    assert result.facts["CONNECTED"] is True
    assert result.facts["SERVER_VERSION"].startswith("15.")
    assert sample(context, "opsmon_postgres_up") == 1
    assert sample(context, "opsmon_postgres_failures_total", kind="query_error") == 1


async def test_session_ended_by_the_server_is_connection_lost(
    postgres: PostgresCluster, context: CheckContext
) -> None:
    """A session the server ends mid-query (pg_terminate_backend) is `connection_lost`."""
    result = await check(
        context, postgres.dsn(), query="SELECT pg_terminate_backend(pg_backend_pid())"
    )
    assert not result.ok and result.kind == "connection_lost"
    assert result.reason == (
        f"lost the connection to 127.0.0.1:{postgres.port}:"
        " terminating connection due to administrator command"
    )


async def test_slow_query_is_canceled_by_the_derived_statement_timeout(
    postgres: PostgresCluster, context: CheckContext
) -> None:
    """A query slower than the check's timeout is canceled by the server (statement_timeout),
    so it neither outlives the check nor keeps running on the server."""
    result = await check(context, postgres.dsn(), query="SELECT pg_sleep(30)", timeout=1)
    assert not result.ok and result.kind == "timeout"
    assert "statement_timeout" in result.reason
    assert result.duration < 1.0  # the server canceled it before the check's own deadline
    assert result.facts["SERVER_VERSION"].startswith("15.")

    def sleeping() -> list[tuple[Any, ...]]:
        return postgres.sql(
            "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'"
            " AND state = 'active'"
        )

    assert sleeping() == []


async def test_role_statement_timeout_does_not_break_the_check(
    postgres: PostgresCluster, context: CheckContext
) -> None:
    """A role whose own statement_timeout is tiny still gets its facts and query: the check
    sets its own timeout for its transaction."""
    postgres.sql("CREATE ROLE hurried LOGIN PASSWORD 'hurried-pw'", "postgres")
    postgres.sql("ALTER ROLE hurried SET statement_timeout = '20ms'", "postgres")
    dsn = postgres.dsn(user="hurried", password="hurried-pw")
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        with pytest.raises(psycopg.errors.QueryCanceled):
            await conn.execute("SELECT pg_sleep(0.2)")
    result = await check(context, dsn, query="SELECT pg_sleep(0.2)")
    assert result.ok, result.reason
    assert "DATABASE_SIZE_BYTES" in result.facts


# -------------------------------------------------------- connect failures ---


async def test_wrong_password_is_named_and_never_leaks(
    postgres: PostgresCluster, context: CheckContext, tmp_path: Path
) -> None:
    """A wrong password is `auth_failed` ("authentication failed"); the planted password is in
    no reason, fact, log line, metric or CLI output."""
    dsn = postgres.dsn(password=CANARY)
    forms = {CANARY, quote(CANARY, safe=""), "Pw!7q"}

    logs = io.StringIO()
    # An empty redactor: the check itself must keep the password out, not the log pipeline.
    configure_logging(Redactor(), "DEBUG", "json", stream=logs)
    psycopg_logger = logging.getLogger("psycopg")
    quiet = psycopg_logger.level
    psycopg_logger.setLevel(logging.DEBUG)  # its connection-attempt lines too
    spec = make_spec(dsn, failure_threshold=1)
    runner = CheckRunner(PostgresCheck(spec, context), context.metrics, SystemClock(), [])
    try:
        result = await runner.run_once()
    finally:
        psycopg_logger.setLevel(quiet)
    assert not result.ok and result.kind == "auth_failed"
    assert result.reason == (
        f'authentication failed for user "app" on 127.0.0.1:{postgres.port}:'
        ' password authentication failed for user "app"'
    )
    assert sample(context, "opsmon_postgres_failures_total", kind="auth_failed") == 1
    assert sample(context, "opsmon_postgres_up") == 0
    log_text = logs.getvalue()
    assert "authentication failed" in log_text  # the state change was logged, with its reason
    outputs = {
        "reason": result.reason,
        "facts": json.dumps(dict(result.facts)),
        "logs": log_text,
        "metrics": context.metrics.render().decode(),
        "status": json.dumps(runner.status()),
    }

    config = tmp_path / "opsmon.yml"
    config.write_text("checks:\n  - {name: database, type: postgres, dsn: '${DATABASE_URL}'}\n")
    for extra in ([], ["--json"]):
        cli = run_opsmon(
            "check", "--config", str(config), *extra, env={"DATABASE_URL": dsn}, cwd=tmp_path
        )
        assert cli.returncode == 1, cli.stderr
        assert "authentication failed" in cli.stdout
        outputs[f"cli{extra}"] = cli.stdout + cli.stderr
    for where, text in outputs.items():
        for form in forms:
            assert form not in text, f"password leaked into {where}"


async def test_missing_database(postgres: PostgresCluster, context: CheckContext) -> None:
    """A database that does not exist is `database_missing`, naming it."""
    result = await check(context, postgres.dsn(dbname="no_such_db"))
    assert not result.ok and result.kind == "database_missing"
    assert result.reason == f'database "no_such_db" does not exist on 127.0.0.1:{postgres.port}'
    assert result.connected is False


async def test_unresolvable_host_is_host_not_found(
    postgres: PostgresCluster, context: CheckContext
) -> None:
    """A host name that does not resolve is `host_not_found`. The name is invalid, so the
    resolver answers locally and no DNS query leaves the machine."""
    result = await check(context, postgres.keyvalue_dsn(host="db_missing!.invalid"))
    assert not result.ok and result.kind == "host_not_found"
    assert result.reason.startswith("host not found: cannot resolve db_missing!.invalid")


async def test_ssl_required_by_client_but_server_has_none(
    postgres: PostgresCluster, context: CheckContext
) -> None:
    """sslmode=require against a server without SSL is `ssl_unsupported`."""
    result = await check(context, postgres.dsn(sslmode="require"))
    assert not result.ok and result.kind == "ssl_unsupported"
    assert "does not support SSL" in result.reason


@pytest.fixture(scope="module")
def ssl_postgres(postgres_template: PostgresTemplate) -> Iterator[PostgresCluster]:
    """A cluster that accepts TCP only over SSL (hostssl), with a self-signed certificate."""
    cluster = postgres_template.clone(start=False)
    self_signed(cluster.root)
    for name in ("cert.pem", "key.pem"):
        chown_to_postgres(cluster.root / name)
    (cluster.root / "key.pem").chmod(0o600)
    cluster.settings.update(
        ssl="on",
        ssl_cert_file=str(cluster.root / "cert.pem"),
        ssl_key_file=str(cluster.root / "key.pem"),
    )
    cluster.write_hba(["hostssl all all 127.0.0.1/32 scram-sha-256"])
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.mark.parametrize("where", ["dsn", "spec"])
async def test_server_requiring_ssl_is_ssl_required(
    ssl_postgres: PostgresCluster, context: CheckContext, where: str
) -> None:
    """A hostssl-only server refuses a plain connection: `ssl_required`, whether sslmode=disable
    comes from the DSN or the check's `sslmode` key."""
    if where == "dsn":
        result = await check(context, ssl_postgres.dsn(sslmode="disable"))
    else:
        result = await check(context, ssl_postgres.dsn(sslmode="require"), sslmode="disable")
    assert not result.ok and result.kind == "ssl_required"
    assert result.reason.startswith("the server requires SSL")
    assert "sslmode=disable" in result.reason


async def test_wrong_password_over_ssl_is_auth_failed_not_ssl_required(
    ssl_postgres: PostgresCluster, context: CheckContext
) -> None:
    """With sslmode=prefer libpq retries a failed SSL login without SSL; the wrong password, not
    the retry's "no encryption", is what the check reports."""
    result = await check(context, ssl_postgres.dsn(password="not-the-password"))
    assert not result.ok and result.kind == "auth_failed"
    assert result.reason.endswith('password authentication failed for user "app"')
    result = await check(context, ssl_postgres.dsn(dbname="no_such_db", sslmode="allow"))
    assert not result.ok and result.kind == "database_missing"


async def test_ssl_connections_verify_the_server_certificate(
    ssl_postgres: PostgresCluster, context: CheckContext, tmp_path: Path
) -> None:
    """Over SSL the check connects (prefer, require, verify-full with the right root) and a
    certificate from an unknown CA is `ssl_failed`."""
    for sslmode in ("prefer", "require"):
        result = await check(context, ssl_postgres.dsn(sslmode=sslmode))
        assert result.ok, result.reason
    root = str(ssl_postgres.root / "cert.pem")
    result = await check(context, ssl_postgres.dsn(sslmode="verify-full", sslrootcert=root))
    assert result.ok, result.reason

    self_signed(tmp_path)  # some other CA
    other = str(tmp_path / "cert.pem")
    result = await check(context, ssl_postgres.dsn(sslmode="verify-full", sslrootcert=other))
    assert not result.ok and result.kind == "ssl_failed"
    assert "certificate verify failed" in result.reason


# ------------------------------------------------- servers that go wrong ---


async def test_stopped_server_is_connection_refused(
    make_postgres: PostgresFactory, context: CheckContext
) -> None:
    """After the server stops, the check says "connection refused" and the gauges follow."""
    cluster = make_postgres()
    assert (await check(context, cluster.dsn())).ok
    assert sample(context, "opsmon_postgres_connections_used_ratio") is not None
    cluster.stop()
    result = await check(context, cluster.dsn())
    assert not result.ok and result.kind == "connection_refused"
    assert result.reason == f"connection refused by 127.0.0.1:{cluster.port}"
    assert sample(context, "opsmon_postgres_up") == 0
    assert sample(context, "opsmon_postgres_failures_total", kind="connection_refused") == 1
    assert sample(context, "opsmon_postgres_connections_used_ratio") is None


async def test_frozen_server_fails_by_timeout_without_leaks(
    make_postgres: PostgresFactory, context: CheckContext
) -> None:
    """A SIGSTOPped server accepts TCP but never answers: the check fails by its own timeout,
    leaves no socket or task behind, and passes again after SIGCONT."""
    cluster = make_postgres()
    assert (await check(context, cluster.dsn())).ok
    sockets, tasks = open_sockets(), len(asyncio.all_tasks())
    cluster.freeze()
    try:
        for _ in range(2):
            result = await check(context, cluster.dsn(), timeout=0.5)
            assert not result.ok and result.kind == "timeout"
            assert result.reason == (
                f"timed out after 500ms connecting to 127.0.0.1:{cluster.port}"
                " (no answer from the server)"
            )
            assert result.duration < 0.5 + 0.25
        assert open_sockets() == sockets
        assert len(asyncio.all_tasks()) == tasks
    finally:
        cluster.thaw()
    result = await check(context, cluster.dsn())
    assert result.ok, result.reason


async def test_exhausted_max_connections_is_too_many_connections(
    make_postgres: PostgresFactory, context: CheckContext
) -> None:
    """With every slot held, the check is `too_many_connections`: first when only superuser
    slots are left, then when none are."""
    cluster = make_postgres({"max_connections": "3", "superuser_reserved_connections": "1"})
    held = [await psycopg.AsyncConnection.connect(cluster.dsn()) for _ in range(2)]
    try:
        result = await check(context, cluster.dsn())
        assert not result.ok and result.kind == "too_many_connections"
        assert "remaining connection slots are reserved" in result.reason
        with cluster.admin():
            result = await check(context, cluster.dsn())
            assert not result.ok and result.kind == "too_many_connections"
            assert "sorry, too many clients already" in result.reason
    finally:
        for conn in held:
            await conn.close()

    async def recovered() -> bool:
        return (await check(context, cluster.dsn())).ok

    await async_wait_until(recovered, timeout=10)
    assert sample(context, "opsmon_postgres_failures_total", kind="too_many_connections") == 2


async def test_server_shutting_down_then_gone(
    make_postgres: PostgresFactory, context: CheckContext
) -> None:
    """During a smart shutdown (a client still connected) the check is `shutting_down`; once
    the server is gone it is `connection_refused`."""
    cluster = make_postgres()
    held = await psycopg.AsyncConnection.connect(cluster.dsn())
    try:
        cluster.stop("smart", wait=False)
        result = await until_kind(context, cluster.dsn(), "shutting_down")
        assert result.reason == (
            f"the server at 127.0.0.1:{cluster.port} is shutting down and refuses new connections"
        )
    finally:
        await held.close()
    await until_kind(context, cluster.dsn(), "connection_refused")


async def test_server_starting_up_then_a_standby_in_recovery(
    make_postgres: PostgresFactory, context: CheckContext
) -> None:
    """A server still starting up is `starting_up`; the standby it becomes passes, with
    [IN_RECOVERY] true so a condition can demand a primary."""
    cluster = make_postgres(start=False)
    hold = cluster.root / "hold-recovery"
    hold.touch()
    (cluster.data / "standby.signal").touch()
    # The startup process waits in restore_command until the test lets it go on.
    cluster.settings["restore_command"] = f"'while [ -e {hold} ]; do sleep 0.05; done; false'"
    cluster.start(wait=False)
    try:
        result = await until_kind(context, cluster.dsn(), "starting_up")
        assert "the database system is starting up" in result.reason
    finally:
        hold.unlink()

    async def standby() -> CheckResult | None:
        result = await check(context, cluster.dsn())
        return result if result.ok else None

    result = await async_wait_until(standby, timeout=20, interval=0.1)
    assert result.facts["IN_RECOVERY"] is True
    result = await check(context, cluster.dsn(), conditions=["[IN_RECOVERY] == false"])
    assert not result.ok and result.reason == "[IN_RECOVERY] (true) == false"


# ------------------------------------------------------------------ CLI ---


def test_cli_check_only_database_healthy_then_connection_refused(
    make_postgres: PostgresFactory, tmp_path: Path
) -> None:
    """`opsmon check --only database` prints healthy (exit 0), and after the server stops,
    unhealthy with "connection refused" (exit 1)."""
    cluster = make_postgres()
    config = tmp_path / "opsmon.yml"
    config.write_text(
        textwrap.dedent(f"""\
        checks:
          - name: database
            type: postgres
            service: db
            dsn: ${{DATABASE_URL}}
            conditions: ["has([EXTENSIONS], plpgsql)", "[CONNECTIONS_USED_RATIO] < 0.8"]
          - name: elsewhere
            type: http
            url: http://127.0.0.1:{free_port()}/
        """)
    )
    env = {"DATABASE_URL": cluster.dsn()}
    args = ("check", "--only", "database", "--config", str(config))
    healthy = run_opsmon(*args, env=env, cwd=tmp_path)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    [row] = [line for line in healthy.stdout.splitlines() if line.startswith("database ")]
    assert "healthy" in row.split() and "elsewhere" not in healthy.stdout

    cluster.stop()
    down = run_opsmon(*args, env=env, cwd=tmp_path)
    assert down.returncode == 1, down.stdout + down.stderr
    [row] = [line for line in down.stdout.splitlines() if line.startswith("database ")]
    assert "unhealthy" in row.split()
    assert row.endswith(f"connection refused by 127.0.0.1:{cluster.port}")
    assert APP_PASSWORD not in down.stdout + down.stderr


# --------------------------------------------------------------- config ---


def write_check(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "opsmon.yml"
    path.write_text("checks:\n  - name: database\n    type: postgres\n" + body)
    return path


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        (f"postgresql://app:{CANARY} x@db/app", "not a valid PostgreSQL DSN: unexpected spaces"),
        (f"host=db password={CANARY} x", 'not a valid PostgreSQL DSN: missing "="'),
        ("postgresql://app:canary-Pw@db/app?schema=public", 'parameter: "schema"'),
        (f"postgresql+asyncpg://app:{quote(CANARY)}@db/app", "URL scheme 'postgresql+asyncpg'"),
        ("postgresql://app:canary-Pw@db/app?sslmode=sometimes", "sslmode must be one of"),
    ],
)
def test_bad_dsn_is_a_config_error_without_the_password(
    tmp_path: Path, dsn: str, message: str
) -> None:
    """A DSN libpq cannot use is a config error at its line that says why, without echoing the
    password."""
    path = write_check(tmp_path, "    dsn: ${DATABASE_URL}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"DATABASE_URL": dsn})
    text = str(caught.value)
    assert f"{path}:4: checks[0].dsn: " in text
    assert message in text
    for form in (CANARY, quote(CANARY, safe=""), "canary-Pw", " x"):
        assert form not in text


def test_check_keys_are_validated(tmp_path: Path) -> None:
    """Unknown sslmode values, blank queries and unknown keys are config errors."""
    path = write_check(
        tmp_path,
        "    dsn: postgresql://app@db/app\n    sslmode: sometimes\n    query: ' '\n    port: 5\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    text = str(caught.value)
    assert "checks[0].sslmode:" in text
    assert "checks[0].query: must not be blank" in text
    assert "checks[0].port: unknown key" in text


def test_reference_config_has_the_database_check(tmp_path: Path) -> None:
    """config/opsmon.yml validates with DATABASE_URL set; backend-health depends on database."""
    environ = {**os.environ, "DATABASE_URL": "postgresql://neola:secret-pw@db:5432/Neola"}
    loaded = load_config(REPO / "config" / "opsmon.yml", environ)
    database = loaded.config.check("database")
    assert isinstance(database, PostgresSpec)
    assert any("has([EXTENSIONS], vector)" in c.text for c in database.conditions)
    assert any("[CONNECTIONS_USED_RATIO]" in c.text for c in database.conditions)
    assert "database" in loaded.config.check("backend-health").depends_on
    cli = run_opsmon(
        "config",
        "validate",
        "--config",
        str(REPO / "config" / "opsmon.yml"),
        env={"DATABASE_URL": environ["DATABASE_URL"]},
        cwd=tmp_path,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "secret-pw" not in cli.stdout + cli.stderr

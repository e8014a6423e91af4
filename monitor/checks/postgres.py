"""`type: postgres`: a fresh connection each run, one query, the server's vital facts, close.

Each run opens a new connection (that is what "can the app connect?" means), sets a
transaction-local `statement_timeout` from what is left of the check's timeout, reads every
fact in one round trip, runs the configured query (or `SELECT 1` in that same round trip)
and closes. Failures get a bounded `kind` (a metric label) and a reason an on-call engineer
can act on; the DSN's password is scrubbed from everything the check says.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, SupportsFloat, cast
from urllib.parse import quote, quote_plus, unquote, urlsplit

from pydantic import ConfigDict, Field, field_validator

from monitor.checks.base import judge
from monitor.conditions import Facts, Kind, PlaceholderTable, show
from monitor.core.durations import format_duration
from monitor.core.json import JsonValue
from monitor.core.result import CheckResult, FailureKind
from monitor.core.spec import CheckSpec
from monitor.redaction import Redactor
from monitor.secrets import Secret

if TYPE_CHECKING:
    import psycopg

    from monitor.checks.context import CheckContext

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
SSL_MODES: tuple[str, ...] = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# libpq will not wait less than 2 s for a connection; the check's own deadline is the real bound.
_MIN_CONNECT_TIMEOUT = 2
# Passwords shorter than this are not scrubbed as free text (the config's rule for secrets too):
# masking "pw" everywhere would garble every reason and protect nothing.
_MIN_SCRUBBED = 4
_URL_SCHEMES = ("postgresql", "postgres")

# Every fact in one statement, so it costs one round trip. Only client backends count against
# max_connections (autovacuum, walsenders and background workers have their own slots). A role
# without pg_read_all_stats sees no backend_type for other roles' sessions, only their database
# and user, which background processes lack: those rows count as the client backends they are.
# The function under pg_stat_activity skips the view's joins: ~1 ms less on a new backend.
_FACTS_SQL = (
    "SELECT pg_is_in_recovery(),"
    " (SELECT count(*) FROM pg_stat_get_activity(NULL) WHERE backend_type = 'client backend'"
    "  OR (backend_type IS NULL AND datid IS NOT NULL AND usesysid IS NOT NULL)),"
    " current_setting('max_connections')::int,"
    " ARRAY(SELECT extname::text FROM pg_extension ORDER BY 1),"
    " pg_database_size(current_database())"
)

PLACEHOLDERS: PlaceholderTable = {
    "CONNECTED": Kind.BOOLEAN,
    "CONNECT_TIME": Kind.MILLISECONDS,
    "QUERY_TIME": Kind.MILLISECONDS,
    "RESPONSE_TIME": Kind.MILLISECONDS,
    "SERVER_VERSION": Kind.TEXT,
    "SERVER_VERSION_NUM": Kind.NUMBER,
    "IN_RECOVERY": Kind.BOOLEAN,
    "CONNECTIONS_USED": Kind.NUMBER,
    "MAX_CONNECTIONS": Kind.NUMBER,
    "CONNECTIONS_USED_RATIO": Kind.NUMBER,
    "EXTENSIONS": Kind.LIST,
    "DATABASE_SIZE_BYTES": Kind.NUMBER,
    "RESULT": Kind.DOCUMENT,
}

# Failure kinds, bounded: they label `opsmon_postgres_failures_total{check,kind}`.
FAILURE_KINDS = (
    FailureKind.CONNECTION_REFUSED,
    FailureKind.HOST_NOT_FOUND,
    FailureKind.TIMEOUT,
    FailureKind.AUTH_FAILED,
    FailureKind.DATABASE_MISSING,
    FailureKind.TOO_MANY_CONNECTIONS,
    FailureKind.SHUTTING_DOWN,
    FailureKind.STARTING_UP,
    FailureKind.SSL_REQUIRED,
    FailureKind.SSL_UNSUPPORTED,
    FailureKind.SSL_FAILED,
    FailureKind.CONNECTION_LOST,
    FailureKind.CONNECT_FAILED,
    FailureKind.QUERY_ERROR,
    FailureKind.UNEXPECTED_RESULT,
    FailureKind.CONDITION,
    FailureKind.CONFIG,
)


class PostgresSpec(CheckSpec):
    """A PostgreSQL server to connect to, and what to ask it."""

    # The DSN holds a password: validation errors must not echo it back.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    type: Literal["postgres"]
    dsn: Annotated[str, Secret(parts=lambda dsn: password_candidates(dsn)), Field(min_length=1)]
    query: str | None = Field(default=None, min_length=1)
    expect: str | int | float | bool | None = None
    sslmode: SslMode | None = None

    @field_validator("dsn")
    @classmethod
    def _dsn_parses(cls, value: str) -> str:
        parse_dsn(value)
        return value

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value


class DsnError(ValueError):
    """A DSN libpq cannot use; the message never contains the password."""


def password_candidates(dsn: str) -> set[str]:
    """Every form in which the DSN's password may appear in text (as written, decoded, encoded)."""
    found: set[str] = set()
    if "://" in dsn:
        try:
            raw = urlsplit(dsn).password
        except ValueError:
            raw = None
        if raw:
            found |= {raw, unquote(raw)}
        found |= {unquote(m) for m in re.findall(r"[?&]password=([^&#]*)", dsn)}
    else:
        for quoted, bare in re.findall(r"\bpassword\s*=\s*(?:'((?:\\.|[^'])*)'|(\S+))", dsn):
            found.add(re.sub(r"\\(.)", r"\1", quoted) if quoted else bare)
    with_encodings = set(found)
    for password in found:
        with_encodings |= {quote(password, safe=""), quote_plus(password, safe="")}
    return {p for p in with_encodings if len(p) >= _MIN_SCRUBBED}


def _safe_libpq_message(message: str, secrets: Iterable[str]) -> str:
    """A libpq DSN parse error with every quoted fragment masked unless it names an option."""
    names_an_option = message.startswith(("invalid connection option", "invalid URI query"))

    def mask(match: re.Match[str]) -> str:
        fragment = match.group(1)
        if fragment in ("=", "]"):  # libpq naming the character it looked for
            return match.group(0)
        harmless = names_an_option and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", fragment)
        if harmless and not any(fragment in s or s in fragment for s in secrets):
            return match.group(0)
        return '"***"'

    return re.sub(r'"([^"]*)"', mask, message.strip().splitlines()[0])


def parse_dsn(dsn: str) -> dict[str, str]:
    """The DSN (URL or key=value) as libpq parameters; DsnError says what is wrong, safely."""
    # psycopg loads here, not at import: only a config with a postgres check needs it.
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    stripped = dsn.strip()
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", stripped)
    if scheme and scheme.group(1).lower() not in _URL_SCHEMES:
        raise DsnError(
            f"URL scheme {scheme.group(1)!r} is not supported (use postgresql:// or postgres://)"
        )
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(stripped).items() if v is not None}
    except psycopg.ProgrammingError as exc:
        detail = _safe_libpq_message(str(exc), password_candidates(stripped))
        hint = ""
        if "URI query parameter" in detail:
            hint = " (libpq accepts only its own parameters; remove application-specific ones)"
        raise DsnError(f"not a valid PostgreSQL DSN: {detail}{hint}") from None
    if not params:
        raise DsnError("not a valid PostgreSQL DSN: it names no host, database or user")
    if params.get("sslmode", "prefer") not in SSL_MODES:
        raise DsnError(f"sslmode must be one of {', '.join(SSL_MODES)}")
    return params


@dataclass(frozen=True)
class _Failure:
    """How one libpq/server message maps to a kind and a reason."""

    pattern: re.Pattern[str]
    kind: FailureKind
    reason: str  # format fields: {target}, {host}, {user}, {database}, {detail}, {sslmode}


def _rule(pattern: str, kind: FailureKind, reason: str) -> _Failure:
    return _Failure(re.compile(pattern, re.IGNORECASE), kind, reason)


# Connection failures, first match wins. libpq gives no SQLSTATE for a failed connection, so
# the server's (English) FATAL text and libpq's own messages are what there is to go by.
# First match wins, searched over the whole message: with sslmode=prefer or allow, libpq
# retries after any failure, so one message can hold two attempts, and the specific cause
# (a wrong password, a missing database) must win over the retry's "no encryption".
CONNECT_FAILURES: tuple[_Failure, ...] = (
    _rule(
        r"server does not support SSL",
        FailureKind.SSL_UNSUPPORTED,
        "SSL is required (sslmode={sslmode}) but the server at {target} does not support SSL",
    ),
    _rule(
        r"password authentication failed|authentication failed for user|no password (was )?supplied"
        r"|fe_sendauth|password is required|role \".*\" is not permitted to log in",
        FailureKind.AUTH_FAILED,
        "authentication failed for user {user} on {target}: {detail}",
    ),
    _rule(
        r"database \".*\" does not exist",
        FailureKind.DATABASE_MISSING,
        "database {database} does not exist on {target}",
    ),
    _rule(
        r"too many clients|too many connections|remaining connection slots are reserved",
        FailureKind.TOO_MANY_CONNECTIONS,
        "too many connections: {target} refused a new connection ({detail})",
    ),
    _rule(
        r"shutting down",
        FailureKind.SHUTTING_DOWN,
        "the server at {target} is shutting down and refuses new connections",
    ),
    _rule(
        r"starting up|not yet accepting connections|not accepting connections|in recovery mode",
        FailureKind.STARTING_UP,
        "the server at {target} is starting up or recovering, not accepting connections yet"
        " ({detail})",
    ),
    _rule(
        r"certificate|SSL error|SSL SYSCALL|sslrootcert|tlsv1 alert|handshake",
        FailureKind.SSL_FAILED,
        "SSL with {target} failed: {detail}",
    ),
    _rule(r"Connection refused", FailureKind.CONNECTION_REFUSED, "connection refused by {target}"),
    _rule(
        r"failed to resolve host|could not translate host name|Name or service not known"
        r"|nodename nor servname|Temporary failure in name resolution|No address associated",
        FailureKind.HOST_NOT_FOUND,
        "host not found: cannot resolve {host} ({detail})",
    ),
    _rule(
        r"(?s)^(?!.*SSL encryption).*no pg_hba\.conf entry[^\n]*no encryption",
        FailureKind.SSL_REQUIRED,
        "the server requires SSL for this connection but the check connects without it"
        " (sslmode={sslmode}): {detail}",
    ),
    _rule(
        r"pg_hba\.conf rejects|no pg_hba\.conf entry",
        FailureKind.AUTH_FAILED,
        "authentication failed for user {user} on {target}: {detail}",
    ),
    _rule(
        r"connection timeout expired|timeout expired",
        FailureKind.TIMEOUT,
        "timed out connecting to {target}",
    ),
    _rule(
        r"server closed the connection unexpectedly|terminating connection|consuming input failed",
        FailureKind.CONNECTION_LOST,
        "{target} closed the connection while it was being set up ({detail})",
    ),
)


def _server_detail(message: str) -> str:
    """The useful part of a libpq message: the server's FATAL text, else libpq's own words."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    fatal = re.search(r"(?:FATAL|ERROR|PANIC):\s+(.*)", first)
    if fatal:
        return fatal.group(1).strip()
    first = re.sub(r"^connection failed:\s*(connection to server .*? failed:\s*)?", "", first)
    first = re.sub(r"^failed to resolve host '.*?':\s*", "", first)
    return re.sub(r"^\[Errno -?\d+\]\s*", "", first)


def _json_safe(value: object) -> JsonValue:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _text(value: object) -> str:
    """Text from the server as `str`: a SQL_ASCII database hands text over as bytes (psycopg
    cannot know their encoding), which would fail `has([EXTENSIONS], vector)` and JSON."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _same(actual: object, expected: object) -> bool:
    """`expect` matching: numbers by value, booleans as true/false, everything else as text."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return show(actual).lower() == show(expected).lower()
    try:
        return float(cast("str | SupportsFloat", actual)) == float(
            cast("str | SupportsFloat", expected)
        )
    except (TypeError, ValueError):
        return show(actual) == show(expected)


def _milliseconds(seconds: float) -> float:
    return round(seconds * 1000, 1)


class PostgresCheck:
    """Connects to `spec.dsn`, gathers facts and runs `spec.query` once per run."""

    def __init__(self, spec: PostgresSpec, context: CheckContext) -> None:
        self.spec = spec
        self._metrics = context.metrics
        params = parse_dsn(spec.dsn)
        self._redactor = Redactor(password_candidates(spec.dsn) | self._password_forms(params))
        if spec.sslmode is not None:
            params["sslmode"] = spec.sslmode
        params["connect_timeout"] = str(max(_MIN_CONNECT_TIMEOUT, math.ceil(spec.timeout)))
        params.setdefault("application_name", "opsmon")
        self._params: dict[str, Any] = params
        host = params.get("host") or params.get("hostaddr") or "local socket"
        self._host = host
        self._target = f"{host}:{params.get('port', '5432')}"
        self._user = f'"{params["user"]}"' if params.get("user") else "(default)"
        self._database = f'"{params.get("dbname") or params.get("user") or "(default)"}"'
        self._sslmode = params.get("sslmode", "prefer")

    @staticmethod
    def _password_forms(params: Mapping[str, str]) -> set[str]:
        password = params.get("password", "")
        if len(password) < _MIN_SCRUBBED:
            return set()
        return {password, quote(password, safe=""), quote_plus(password, safe="")}

    async def run(self) -> CheckResult:
        """One observation; records the PostgreSQL metrics and returns the result."""
        result = await self._attempt()
        name = self.spec.name
        answered = "SERVER_VERSION" in result.facts and "DATABASE_SIZE_BYTES" in result.facts
        self._metrics.postgres_up.labels(name).set(1 if answered else 0)
        ratio = result.facts.get("CONNECTIONS_USED_RATIO")
        if ratio is None:
            # A stale ratio from before the outage would look like a live reading.
            with contextlib.suppress(KeyError):
                self._metrics.postgres_connections_used_ratio.remove(name)
        else:
            self._metrics.postgres_connections_used_ratio.labels(name).set(ratio)
        if not result.ok:
            self._metrics.postgres_failures.labels(name, result.kind).inc()
        return result

    async def _attempt(self) -> CheckResult:
        spec = self.spec
        started = time.perf_counter()
        deadline = started + spec.timeout
        import psycopg

        facts: dict[str, object] = {"CONNECTED": False}
        conn: psycopg.AsyncConnection[Any] | None = None
        phase = "connecting to"
        try:
            async with asyncio.timeout(spec.timeout):
                conn = await psycopg.AsyncConnection.connect(autocommit=True, **self._params)
                connected = time.perf_counter()
                self._metrics.postgres_connect_duration.labels(spec.name).observe(
                    connected - started
                )
                facts["CONNECTED"] = True
                facts["CONNECT_TIME"] = _milliseconds(connected - started)
                version = conn.info.parameter_status("server_version") or ""
                facts["SERVER_VERSION"] = version.split(" ")[0]
                facts["SERVER_VERSION_NUM"] = conn.info.server_version
                phase = "querying"
                row = await self._query(conn, deadline, facts)
                finished = time.perf_counter()
        except TimeoutError as exc:
            # asyncio keeps the CancelledError behind this timeout on the running task; its
            # traceback holds psycopg's frames and with them the half-open socket. Cut it, so
            # the socket closes now, not at the task's next cancellation.
            _drop_tracebacks(exc)
            return self._failure(
                FailureKind.TIMEOUT,
                f"timed out after {format_duration(spec.timeout)} {phase} {self._target}"
                + (" (no answer from the server)" if phase == "connecting to" else ""),
                started,
                facts,
            )
        except (psycopg.Error, _StatementTimeout) as exc:
            kind, reason = self._describe(exc, connected=cast("bool", facts["CONNECTED"]))
            return self._failure(kind, reason, started, facts)
        finally:
            if conn is not None:
                # Never waits on the network: a frozen server cannot hold the check here.
                await conn.close()
        facts["QUERY_TIME"] = _milliseconds(finished - connected)
        facts["RESPONSE_TIME"] = _milliseconds(finished - started)
        elapsed = finished - started
        if spec.query is not None:
            facts["RESULT"] = _json_safe(row[0]) if row else None
            if spec.expect is not None and not (row and _same(row[0], spec.expect)):
                shown = show(facts["RESULT"]) if row else "no rows"
                return CheckResult.failure(
                    FailureKind.UNEXPECTED_RESULT,
                    f"query returned {shown}, expected {show(spec.expect)}",
                    duration=elapsed,
                    facts=facts,
                    connected=True,
                )
        if spec.conditions:
            return judge(spec.conditions, facts, Facts(facts), duration=elapsed, connected=True)
        return CheckResult(ok=True, duration=elapsed, facts=facts, connected=True)

    async def _query(
        self, conn: psycopg.AsyncConnection[Any], deadline: float, facts: dict[str, object]
    ) -> tuple[Any, ...] | None:
        """Facts (and `SELECT 1`) in one round trip, then the configured query if there is one.

        Everything runs in one transaction that is never committed: `SET LOCAL` keeps the
        statement timeout off a pooled server connection (PgBouncer) and overrides a role's own
        low `statement_timeout`, which would otherwise cancel the facts query.
        """
        import psycopg

        margin = min(0.5, max(0.05, self.spec.timeout * 0.1))
        budget_ms = max(1, int((deadline - time.perf_counter() - margin) * 1000))
        script = f"BEGIN; SET LOCAL statement_timeout = {budget_ms}; {_FACTS_SQL}"
        if self.spec.query is None:
            script += "; SELECT 1"
        cursor = conn.cursor()
        await cursor.execute(script.encode())
        cursor.nextset()  # past BEGIN
        cursor.nextset()  # past SET
        row = await cursor.fetchone()
        if row is None:
            raise psycopg.DataError("the server facts query returned no row")
        in_recovery, backends, max_connections, extensions, size = row
        facts["IN_RECOVERY"] = bool(in_recovery)
        facts["CONNECTIONS_USED"] = int(backends)
        facts["MAX_CONNECTIONS"] = int(max_connections)
        facts["CONNECTIONS_USED_RATIO"] = round(int(backends) / max(1, int(max_connections)), 4)
        facts["EXTENSIONS"] = [_text(name) for name in extensions]
        facts["DATABASE_SIZE_BYTES"] = int(size)
        if self.spec.query is None:
            cursor.nextset()
            return await cursor.fetchone()
        try:
            await cursor.execute(self.spec.query.encode())
        except psycopg.errors.QueryCanceled:
            raise _StatementTimeout(budget_ms) from None
        return await cursor.fetchone() if cursor.description else None

    def _describe(
        self, exc: psycopg.Error | _StatementTimeout, connected: bool
    ) -> tuple[FailureKind, str]:
        """A bounded kind and a scrubbed, readable reason for a psycopg error."""
        import psycopg

        scrub = self._redactor.text
        if isinstance(exc, _StatementTimeout):
            return FailureKind.TIMEOUT, (
                f"query did not finish within {exc.budget_ms} ms"
                " (canceled by statement_timeout, derived from the check's timeout)"
            )
        if isinstance(exc, psycopg.ProgrammingError) and not connected:
            return FailureKind.CONFIG, scrub(f"cannot use this DSN: {_server_detail(str(exc))}")
        message = str(exc)
        detail = scrub(_server_detail(message))
        if connected:
            if isinstance(exc, psycopg.errors.QueryCanceled):
                return FailureKind.TIMEOUT, (
                    "server facts query canceled by statement_timeout"
                    f" (timeout {format_duration(self.spec.timeout)}): {detail}"
                )
            # No SQLSTATE: the socket died. Class 57: the server ended the session (shutdown,
            # crash restart, pg_terminate_backend).
            if isinstance(exc, psycopg.OperationalError) and (
                exc.sqlstate is None or exc.sqlstate.startswith("57P")
            ):
                return (
                    FailureKind.CONNECTION_LOST,
                    f"lost the connection to {self._target}: {detail}",
                )
            state = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
            return FailureKind.QUERY_ERROR, f"query failed: {detail}{state}"
        fields = {
            "target": self._target,
            "host": self._host,
            "user": self._user,
            "database": self._database,
            "detail": detail,
            "sslmode": self._sslmode,
        }
        for rule in CONNECT_FAILURES:
            match = rule.pattern.search(message)
            if match:
                # The detail comes from the attempt (line) that matched.
                line_start = message.rfind("\n", 0, max(0, match.end() - 1)) + 1
                line_end = message.find("\n", match.end() - 1)
                line = message[line_start : line_end if line_end >= 0 else len(message)]
                fields["detail"] = scrub(_server_detail(line))
                return rule.kind, scrub(rule.reason.format(**fields))
        return FailureKind.CONNECT_FAILED, scrub(f"cannot connect to {self._target}: {detail}")

    def _failure(
        self, kind: FailureKind, reason: str, started: float, facts: dict[str, object]
    ) -> CheckResult:
        elapsed = time.perf_counter() - started
        facts["RESPONSE_TIME"] = _milliseconds(elapsed)
        return CheckResult.failure(
            kind,
            self._redactor.text(reason),
            duration=elapsed,
            facts=facts,
            connected=bool(facts["CONNECTED"]),
        )


def _drop_tracebacks(exc: BaseException) -> None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current is not exc:
            current.__traceback__ = None
        current = current.__cause__ or current.__context__


class _StatementTimeout(Exception):
    """The configured query ran into the statement timeout this check set."""

    def __init__(self, budget_ms: int) -> None:
        super().__init__(f"statement timeout after {budget_ms} ms")
        self.budget_ms = budget_ms


def build(spec: PostgresSpec, context: CheckContext) -> PostgresCheck:
    """Registry entry point."""
    return PostgresCheck(spec, context)

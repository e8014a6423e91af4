"""Throwaway PostgreSQL 15 clusters for tests: real servers on 127.0.0.1 with password auth.

`initdb` runs once per session into a template (roles `postgres` and `app`, database `app`,
scram-sha-256 on TCP); each cluster is a copy of it on its own free port, so a test that
breaks its server (stop, SIGSTOP, exhaust connections) costs a copy and a start, not an
initdb. The session-wide `postgres` cluster is shared and must be left healthy; a test that
breaks a server asks `make_postgres` for its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import psycopg
import pytest

from tests.support.environment import free_port, missing

PG_BIN = Path(os.environ.get("OPSMON_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_OS_USER = "postgres"
SUPERUSER = "postgres"
APP_USER = "app"
APP_DATABASE = "app"
# Test-only credentials of a throwaway cluster on loopback.
SUPERUSER_PASSWORD = "super-pw-for-tests"
APP_PASSWORD = "app-pw-for-tests"
# Durability is worthless for a throwaway cluster and costs seconds on every start and stop.
_FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_wal_size": "64MB",
    "logging_collector": "off",
}


def _as_pg_user(argv: list[str]) -> list[str]:
    # initdb refuses to run as root; as any other user it runs as that user.
    return ["runuser", "-u", PG_OS_USER, "--", *argv] if os.geteuid() == 0 else argv


def chown_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, PG_OS_USER, PG_OS_USER)


def _run(argv: list[str], timeout: float = 60) -> str:
    done = subprocess.run(
        _as_pg_user(argv), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stdout}{done.stderr}")
    return done.stdout


def available() -> str | None:
    """Why PostgreSQL clusters cannot be made here, or None when they can."""
    for binary in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / binary).is_file():
            return f"PostgreSQL 15 server binary {PG_BIN / binary}"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam(PG_OS_USER)
        except KeyError:
            return f"the OS user {PG_OS_USER!r} (initdb must not run as root)"
    return None


@dataclass
class PostgresCluster:
    """One running (or stopped) PostgreSQL server in its own folder on its own port."""

    root: Path
    port: int
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def socket_dir(self) -> Path:
        return self.root

    def _options(self) -> str:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            **_FAST_SETTINGS,
            **self.settings,
        }
        return " ".join(f"-c {key}={value}" for key, value in settings.items())

    def start(self, wait: bool = True) -> None:
        """Start the server; with `wait`, return once it accepts connections."""
        _run(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                self._options(),
                "-w" if wait else "-W",
                "-t",
                "60",
                "start",
            ]
        )

    def stop(self, mode: str = "fast", wait: bool = True) -> None:
        """Stop the server (`smart`, `fast` or `immediate`); a stopped server is left alone."""
        if self.postmaster_pid() is None:
            return
        self.thaw()
        _run(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                mode,
                "-w" if wait else "-W",
                "-t",
                "60",
                "stop",
            ]
        )

    def postmaster_pid(self) -> int | None:
        """The postmaster's pid while the server runs."""
        try:
            first = (self.data / "postmaster.pid").read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        pid = int(first)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def freeze(self) -> None:
        """SIGSTOP the postmaster: the kernel still accepts TCP, nobody answers."""
        pid = self.postmaster_pid()
        assert pid is not None, "cannot freeze a stopped cluster"
        os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT the postmaster (harmless when it is not stopped)."""
        pid = self.postmaster_pid()
        if pid is not None:
            os.kill(pid, signal.SIGCONT)

    def dsn(
        self,
        *,
        user: str = APP_USER,
        password: str | None = APP_PASSWORD,
        dbname: str = APP_DATABASE,
        host: str = "127.0.0.1",
        **params: str,
    ) -> str:
        """A `postgresql://` URL for this server (password percent-encoded)."""
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        query = "&".join(f"{key}={quote(value, safe='')}" for key, value in params.items())
        return f"postgresql://{auth}@{host}:{self.port}/{quote(dbname, safe='')}" + (
            f"?{query}" if query else ""
        )

    def keyvalue_dsn(
        self,
        *,
        user: str = APP_USER,
        password: str = APP_PASSWORD,
        dbname: str = APP_DATABASE,
        **params: str,
    ) -> str:
        """The same target as a libpq `key=value` string (values quoted)."""

        def quoted(value: str) -> str:
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

        items = {
            "host": "127.0.0.1",
            "port": str(self.port),
            "user": user,
            "password": password,
            "dbname": dbname,
            **params,
        }
        return " ".join(f"{key}={quoted(value)}" for key, value in items.items())

    def admin_params(self, dbname: str = APP_DATABASE) -> dict[str, Any]:
        """Connection parameters of the superuser over the Unix socket (trusted), autocommit."""
        return {
            "host": str(self.socket_dir),
            "port": self.port,
            "user": SUPERUSER,
            "dbname": dbname,
            "autocommit": True,
        }

    def admin(self, dbname: str = APP_DATABASE) -> psycopg.Connection[Any]:
        """A superuser connection over the Unix socket (trusted), autocommit."""
        return psycopg.connect(**self.admin_params(dbname))

    def sql(self, statement: str, dbname: str = APP_DATABASE) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser and return its rows (empty for commands)."""
        with self.admin(dbname) as conn, conn.cursor() as cur:
            cur.execute(statement.encode())
            return cur.fetchall() if cur.description else []

    def write_hba(self, lines: list[str]) -> None:
        """Replace pg_hba.conf (local superuser access stays trusted for `admin`)."""
        text = "local all all trust\n" + "\n".join(lines) + "\n"
        (self.data / "pg_hba.conf").write_text(text)

    def destroy(self) -> None:
        """Stop the server at once and delete its folder."""
        with suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PostgresFactory(Protocol):
    """Makes a cluster of its own for one test; it is destroyed after the test."""

    def __call__(
        self, settings: Mapping[str, str] | None = None, start: bool = True
    ) -> PostgresCluster: ...


@dataclass
class PostgresTemplate:
    """A stopped, initialised data folder that clusters are copied from."""

    root: Path

    def clone(
        self, settings: Mapping[str, str] | None = None, start: bool = True
    ) -> PostgresCluster:
        """A new cluster on a free port, copied from the template; started unless told not to."""
        root = Path(tempfile.mkdtemp(prefix="opsmon-pg-"))
        chown_to_postgres(root)
        # cp -a keeps the owner (postgres) and the 0700 mode the server insists on.
        subprocess.run(["cp", "-a", str(self.root / "data"), str(root / "data")], check=True)
        cluster = PostgresCluster(root, free_port(), dict(settings or {}))
        if start:
            try:
                cluster.start()
            except Exception:
                log = cluster.log.read_text() if cluster.log.exists() else ""
                cluster.destroy()
                raise RuntimeError(f"cluster did not start:\n{log}") from None
        return cluster

    @classmethod
    def create(cls) -> PostgresTemplate:
        """initdb (scram on TCP), then roles and database, then a clean stop."""
        root = Path(tempfile.mkdtemp(prefix="opsmon-pgtpl-"))
        chown_to_postgres(root)
        pwfile = root / "pwfile"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n")
        chown_to_postgres(pwfile)
        _run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(root / "data"),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )
        template = cls(root)
        cluster = PostgresCluster(root, free_port())
        cluster.write_hba(["host all all 127.0.0.1/32 scram-sha-256"])
        cluster.start()
        try:
            cluster.sql(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{APP_PASSWORD}'", "postgres")
            cluster.sql(f"CREATE DATABASE {APP_DATABASE} OWNER {APP_USER}", "postgres")
        finally:
            cluster.stop()
        return template


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[PostgresTemplate]:
    """One initdb per session; every cluster is a copy of it."""
    why = available()
    if why:
        missing(why)
    template = PostgresTemplate.create()
    yield template
    shutil.rmtree(template.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(postgres_template: PostgresTemplate) -> Iterator[PostgresCluster]:
    """The shared, healthy cluster (max_connections=20). Tests must not break it."""
    cluster = postgres_template.clone({"max_connections": "20"})
    yield cluster
    cluster.destroy()


@pytest.fixture
def make_postgres(postgres_template: PostgresTemplate) -> Iterator[PostgresFactory]:
    """Clusters of the test's own, for tests that stop, freeze or exhaust their server."""
    made: list[PostgresCluster] = []

    def make(settings: Mapping[str, str] | None = None, start: bool = True) -> PostgresCluster:
        cluster = postgres_template.clone(settings, start)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.destroy()

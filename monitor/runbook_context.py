"""Runbooks rendered for where on-call stands: the running config's real URLs, the stack's
compose file and project, and the escalation contacts, instead of the reference stack's
`http://backend:4000` (which only resolves inside the Compose network) and a bare
`docker compose` (which needs the right folder and project).

`runbooks:` in the config:

    runbooks:
      compose_command: docker compose                    # or docker-compose (Compose v1)
      compose_file: /srv/app/docker-compose.prod.yml   # what `docker compose -f` names
      project: app                                       # else the project of the container checks
      escalation: ["backend owners: #backend-oncall", "Jane Doe +49 170 0000000"]

The database commands take the postgres check's host, port, user and database name (never
its password), and `/var/lib/opsmon` becomes the configured `state_dir`. `opsmon explain
NAME` and `opsmon check --only NAME` name the config's own check where the runbook names a
check of the reference config (`database`, `backend-health`, ...) that it does not have.

Pure text substitution over a runbook's Markdown (`localize`), so the HTML page, `opsmon
runbooks show`, `opsmon explain` and alert descriptions show the same commands.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

# `http://backend:4000` in a runbook: a Compose service name and port (the reference stack).
_SERVICE_URL = re.compile(r"\bhttps?://([a-z][a-z0-9_-]*):(\d+)")
_COMPOSE = re.compile(r"\bdocker compose\b(?!\s+-f\b)")
_COMPOSE_FILE = re.compile(r"\bdocker compose -f docker-compose\.prod\.yml\b")
# `logs -f` never returns: a runbook command must finish.
_FOLLOW = re.compile(r"\blogs -f\b")
# opsmon's own address in the runbooks (its default listen address).
_OPSMON_URL = re.compile(r"\bhttp://localhost:9110\b")
# The reference stack's database as the runbooks name it: host `db`, port 5432, `Neola`.
# Inside the db container (`exec db psql -U postgres`) the local socket stays: it needs no
# password; from elsewhere the network address is the postgres check's.
_PG_NETWORK = re.compile(r"\b(pg_isready|psql) -h db -U postgres\b")
_PG_DATABASE = re.compile(r"(\bpsql (?:-h \S+ -p \d+ )?-U \S+) -d Neola\b")
_NODE_CONNECT = re.compile(r"connect\(5432,'db'\)")
# opsmon's state_dir in its image.
_STATE_DIR = re.compile(r"/var/lib/opsmon\b")
# A runbook command naming a check: `opsmon explain NAME`, `opsmon check --only NAME`.
_CHECK_COMMAND = re.compile(r"\b(opsmon (?:explain|check --only)) ([a-z0-9-]+)")


@dataclass(frozen=True)
class _Role:
    """What identifies a check of the reference config in another config."""

    type: str
    service: str | None = None
    path_word: str | None = None  # a word of its URL's path (health vs. ready)

    def fits(self, spec: _Spec) -> bool:
        if spec.type != self.type or (self.service and spec.service != self.service):
            return False
        url = getattr(spec, "url", None)
        return self.path_word is None or (
            isinstance(url, str) and self.path_word in urlsplit(url).path
        )


# The checks of the reference config (config/opsmon.yml) that the runbooks' commands name.
_REFERENCE_CHECKS = {
    "database": _Role("postgres"),
    "backend-health": _Role("http", "backend", "health"),
    "backend-ready": _Role("http", "backend", "ready"),
    "frontend": _Role("http", "frontend"),
    "backend-container": _Role("container", "backend"),
    "frontend-container": _Role("container", "frontend"),
    "db-container": _Role("container", "db"),
}


def _base_url(url: str) -> str:
    """`scheme://host:port` of a check's URL: never its `user:password@`, path or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


@dataclass(frozen=True)
class DatabaseAddress:
    """Where the database answers, from the postgres check's DSN (never its password)."""

    host: str
    port: int
    user: str
    name: str

    @classmethod
    def of_dsn(cls, dsn: str) -> DatabaseAddress | None:
        """The address in a `postgresql://` DSN, or None if it names no host."""
        parts = urlsplit(dsn)
        if not parts.hostname:
            return None
        return cls(
            parts.hostname,
            parts.port or 5432,
            parts.username or "postgres",
            parts.path.lstrip("/") or parts.username or "postgres",
        )


class RunbooksConfig(BaseModel):
    """The `runbooks:` config section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    compose_command: str = Field(default="docker compose", min_length=1)
    compose_file: str | None = Field(default=None, min_length=1)
    project: str | None = Field(default=None, min_length=1)
    escalation: tuple[str, ...] = ()


class _Spec(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def service(self) -> str | None: ...


class _Config(Protocol):
    @property
    def public_url(self) -> str: ...
    @property
    def checks(self) -> Iterable[_Spec]: ...
    @property
    def runbooks(self) -> RunbooksConfig: ...
    @property
    def state_dir(self) -> Path: ...


@dataclass(frozen=True)
class RunbookContext:
    """What a runbook's commands are rendered with."""

    urls: Mapping[str, str] = field(default_factory=dict)  # service -> its base URL
    compose_command: str = "docker compose"
    compose_file: str | None = None
    project: str | None = None
    escalation: tuple[str, ...] = ()
    public_url: str | None = None  # where opsmon answers (its /metrics, /healthz)
    database: DatabaseAddress | None = None  # the postgres check's host, port, user, name
    state_dir: str | None = None  # opsmon's state_dir
    checks: Mapping[str, str] = field(default_factory=dict)  # reference check -> the config's

    @classmethod
    def of(cls, config: _Config) -> RunbookContext:
        """From the running config: each service's base URL from its HTTP checks, the compose
        file and project (`runbooks:`, else the project the container checks select)."""
        urls: dict[str, str] = {}
        projects: list[str] = []
        database: DatabaseAddress | None = None
        for spec in config.checks:
            dsn = getattr(spec, "dsn", None)
            if spec.type == "postgres" and database is None and isinstance(dsn, str):
                database = DatabaseAddress.of_dsn(dsn)
            url = getattr(spec, "url", None)
            if spec.type == "http" and spec.service and isinstance(url, str):
                urls.setdefault(spec.service, _base_url(url))
            project = getattr(spec, "project", None)
            if spec.type == "container" and isinstance(project, str) and project:
                projects.append(project)
        settings = config.runbooks
        project = settings.project or (projects[0] if len(set(projects)) == 1 else None)
        return cls(
            urls,
            settings.compose_command,
            settings.compose_file,
            project,
            settings.escalation,
            config.public_url.rstrip("/"),
            database,
            str(config.state_dir),
            _check_names(list(config.checks)),
        )

    @property
    def compose(self) -> str:
        """The `docker compose` invocation for the stack."""
        words = [self.compose_command]
        if self.compose_file:
            words.append(f"-f {self.compose_file}")
        if self.project:
            words.append(f"-p {self.project}")
        return " ".join(words)


def _check_names(specs: list[_Spec]) -> dict[str, str]:
    """Each reference check the config does not have, mapped to the one check of the config
    in the same role (type, service, health or ready), where there is exactly one."""
    names = {spec.name for spec in specs}
    found: dict[str, str] = {}
    for reference, role in _REFERENCE_CHECKS.items():
        fitting = [spec.name for spec in specs if role.fits(spec)]
        if reference not in names and len(fitting) == 1:
            found[reference] = fitting[0]
    return found


def localize(text: str, context: RunbookContext) -> str:
    """`text` (Markdown or a command) with the reference stack's service URLs, compose
    invocation and `logs -f` replaced for the running config."""
    text = _SERVICE_URL.sub(lambda m: context.urls.get(m.group(1), m.group(0)), text)
    text = _FOLLOW.sub("logs --tail=200", text)
    compose = context.compose
    if not context.compose_file:
        # Without a configured compose file the runbooks' own docker-compose.prod.yml stays.
        command = context.compose_command
        compose_with_file = compose.replace(command, f"{command} -f docker-compose.prod.yml", 1)
    else:
        compose_with_file = compose
    text = _COMPOSE_FILE.sub(lambda _: compose_with_file, text)
    text = _COMPOSE.sub(lambda _: compose, text)
    # A runbook command runs without a terminal (pasted, piped, scripted): no TTY for exec.
    text = re.sub(rf"({re.escape(compose)}) exec (?!-T\b)", r"\1 exec -T ", text)
    if context.public_url:
        text = _OPSMON_URL.sub(lambda _: str(context.public_url), text)
    if context.database:
        db = context.database
        address = f"-h {db.host} -p {db.port} -U {db.user}"
        text = _PG_NETWORK.sub(lambda m: f"{m.group(1)} {address}", text)
        text = _PG_DATABASE.sub(lambda m: f"{m.group(1)} -d {db.name}", text)
        text = _NODE_CONNECT.sub(lambda _: f"connect({db.port},'{db.host}')", text)
    if context.state_dir:
        text = _STATE_DIR.sub(lambda _: str(context.state_dir), text)
    if context.checks:
        names = context.checks
        text = _CHECK_COMMAND.sub(
            lambda m: f"{m.group(1)} {names.get(m.group(2), m.group(2))}", text
        )
    return text


def escalation_section(context: RunbookContext) -> str:
    """A Markdown section naming who to escalate to (empty without contacts)."""
    if not context.escalation:
        return ""
    lines = "\n".join(f"- {contact}" for contact in context.escalation)
    return f"\n## Escalation contacts\n\n{lines}\n"

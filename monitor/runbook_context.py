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

Pure text substitution over a runbook's Markdown (`localize`), so the HTML page, `opsmon
runbooks show`, `opsmon explain` and alert descriptions show the same commands.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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


class RunbooksConfig(BaseModel):
    """The `runbooks:` config section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    compose_command: str = Field(default="docker compose", min_length=1)
    compose_file: str | None = Field(default=None, min_length=1)
    project: str | None = Field(default=None, min_length=1)
    escalation: tuple[str, ...] = ()


class _Spec(Protocol):
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


@dataclass(frozen=True)
class RunbookContext:
    """What a runbook's commands are rendered with."""

    urls: Mapping[str, str] = field(default_factory=dict)  # service -> its base URL
    compose_command: str = "docker compose"
    compose_file: str | None = None
    project: str | None = None
    escalation: tuple[str, ...] = ()
    public_url: str | None = None  # where opsmon answers (its /metrics, /healthz)

    @classmethod
    def of(cls, config: _Config) -> RunbookContext:
        """From the running config: each service's base URL from its HTTP checks, the compose
        file and project (`runbooks:`, else the project the container checks select)."""
        urls: dict[str, str] = {}
        projects: list[str] = []
        for spec in config.checks:
            url = getattr(spec, "url", None)
            if spec.type == "http" and spec.service and isinstance(url, str):
                parts = urlsplit(url)
                urls.setdefault(spec.service, f"{parts.scheme}://{parts.netloc}")
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
    return text


def escalation_section(context: RunbookContext) -> str:
    """A Markdown section naming who to escalate to (empty without contacts)."""
    if not context.escalation:
        return ""
    lines = "\n".join(f"- {contact}" for contact in context.escalation)
    return f"\n## Escalation contacts\n\n{lines}\n"

"""What the gate reads from the engine, cut down to plain records (pure functions over
`docker inspect` data and log text): the new container, whether Docker restarts it after an
exit, and which environment variables its last log lines say are missing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from monitor.docker.lifecycle import (
    ContainerMemory,
    ContainerView,
    explain_exit,
    mask_values,
    parse_inspect,
)
from monitor.gate.verdict import Candidate, ContainerSeen

# A container whose run ended this soon after it started failed at start.
EARLY_EXIT = 60.0
# Phrases that name a missing variable, as frameworks print them: zod's format() output
# (`NAME: { _errors: [ 'Required' ] }`, or as JSON), "NAME: Required", "missing ... variable NAME",
# "NAME is not set / is required / is missing / is undefined".
_NAMED = (
    re.compile(
        r"\b([A-Z][A-Z0-9_]{2,})\b['\"]?\s*:\s*\{\s*['\"]?_errors['\"]?\s*:\s*\[\s*['\"]Required"
    ),
    re.compile(r"\b([A-Z][A-Z0-9_]{2,})\b['\"]?\s*:\s*['\"]?Required\b"),
    re.compile(
        r"(?i:missing|required|undefined|not set)[^\n]{0,40}?(?i:variable)s?:?\s+"
        r"['\"`]?([A-Z][A-Z0-9_]{2,})\b"
    ),
    re.compile(
        r"\b([A-Z][A-Z0-9_]{2,})\b['\"`]?\s+(?:is|was)\s+(?i:not set|required|missing|undefined)"
    ),
)
_INVALID_ENV = re.compile(r"(?i)invalid environment variables?")


def candidates(summaries: Iterable[Mapping[str, Any]]) -> list[Candidate]:
    """The engine's container list (`GET /containers/json`) as candidates."""
    return [
        Candidate(
            id=str(s.get("Id") or ""),
            image=str(s.get("Image") or ""),
            image_id=str(s.get("ImageID") or ""),
            state=str(s.get("State") or ""),
            created=float(s.get("Created") or 0),
        )
        for s in summaries
    ]


def will_restart(data: Mapping[str, Any]) -> bool:
    """Whether Docker brings the container back after its process exits."""
    state = data.get("State") or {}
    if state.get("Restarting"):
        return True
    policy = (data.get("HostConfig") or {}).get("RestartPolicy") or {}
    name = str(policy.get("Name") or "no")
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        retries = int(policy.get("MaximumRetryCount") or 0)
        count = int(data.get("RestartCount") or 0)
        return int(state.get("ExitCode") or 0) != 0 and (retries == 0 or count < retries)
    return False


def exited_early(view: ContainerView) -> bool:
    """Its last run ended within EARLY_EXIT of its start (it failed at start)."""
    ran = view.last_run_seconds()
    return ran is not None and ran <= EARLY_EXIT


def named_in_logs(text: str, env: Mapping[str, str]) -> list[str]:
    """Variables the log lines say are missing and that the container indeed lacks (set
    variables are left out: a name in a log line is no evidence when it has a value)."""
    found: list[str] = []
    for pattern in _NAMED:
        for match in pattern.finditer(text):
            name = match.group(1)
            if name not in found and not env.get(name):
                found.append(name)
    return found


def env_hint(text: str, named: Sequence[str]) -> str:
    """What the log lines say about the environment, for a person (names, never values)."""
    if named:
        return f"its log names missing environment variables: {', '.join(named)}"
    if _INVALID_ENV.search(text):
        return "its log says the environment variables are invalid"
    return ""


def container_seen(
    data: Mapping[str, Any], required_env: Sequence[str], log_text: str = ""
) -> ContainerSeen:
    """The gate's record of the container (`docker inspect` data), with the required
    variables it lacks and, for a container that failed at start, what its logs say."""
    view = parse_inspect(data)
    explanation = None if view.running else explain_exit(view, ContainerMemory(), None)
    missing = [n for n in required_env if not view.env.get(n)]
    named = named_in_logs(log_text, view.env) if log_text else []
    if named and (not view.running or view.restart_count > 0):
        # The lines are about a run that ended (the container may be running again).
        missing += [n for n in named if n not in missing]
    return ContainerSeen(
        id=view.id,
        name=view.name,
        image=view.image,
        image_id=view.image_id,
        status=view.status,
        started_at=view.started_at,
        restart_count=view.restart_count,
        exit_code=view.exit_code,
        # Docker's own flag only: exit code 137 is also what `docker stop` of a process that
        # ignores SIGTERM gives.
        oom_killed=view.oom_killed,
        will_restart=will_restart(data),
        exit_reason=explanation.reason if explanation is not None else "",
        missing_env=tuple(missing),
        env_hint=env_hint(log_text, named) if log_text else "",
        last_log_line=last_line(log_text, view.env.values()),
    )


def last_line(text: str, secrets: Iterable[str], limit: int = 200) -> str:
    """The last non-empty log line, with the container's environment values masked."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    line = mask_values(lines[-1], secrets)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def wants_logs(data: Mapping[str, Any]) -> bool:
    """Whether the container's last log lines are worth reading: it stopped early, or it
    restarted."""
    view = parse_inspect(data)
    return view.restart_count > 0 or (not view.running and exited_early(view))

"""`type: container`: a container's state through the Docker API, and why it is not running.

The check reads `docker inspect` on every run (the poll at its interval, and at once on each
event the Docker watcher sees for it). It reports state, health, exit code, restarts, OOM kills,
image and start time as facts; without conditions a container is healthy when it runs, is not
`unhealthy` and is not crash-looping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.checks.base import judge
from monitor.conditions import Facts, Kind, PlaceholderTable
from monitor.core.duration_fields import PositiveDuration
from monitor.core.durations import format_duration
from monitor.core.result import CheckResult, FailureKind
from monitor.core.spec import CheckSpec
from monitor.docker.access import DockerAccess, DockerUnavailable
from monitor.docker.events import ContainerEvent
from monitor.docker.lifecycle import (
    ContainerMemory,
    ContainerView,
    Explanation,
    explain_exit,
    parse_inspect,
)
from monitor.docker.selection import Selector, best_candidate

if TYPE_CHECKING:
    from monitor.checks.context import CheckContext

PLACEHOLDERS: PlaceholderTable = {
    "STATE": Kind.TEXT,
    "HEALTH": Kind.TEXT,
    "HEALTH_OUTPUT": Kind.TEXT,
    "EXIT_CODE": Kind.NUMBER,
    "RESTARTS": Kind.NUMBER,
    "RESTARTS_10M": Kind.NUMBER,
    "OOM_KILLED": Kind.BOOLEAN,
    "IMAGE": Kind.TEXT,
    "IMAGE_ID": Kind.TEXT,
    "STARTED_AT": Kind.TEXT,
    "FINISHED_AT": Kind.TEXT,
    "CONTAINER": Kind.TEXT,
    "MISSING_ENV": Kind.LIST,
    "LOG_PATTERN": Kind.TEXT,
}
HEALTH_STATUSES = ("none", "starting", "healthy", "unhealthy")
DEFAULT_LOG_PATTERNS = {"invalid_environment": "Invalid environment variables"}
# A container that dies this soon after starting most likely failed its own start-up checks.
EARLY_EXIT = 60.0
_TEN_MINUTES = 600.0
# How far back the engine's events are read when a container is first seen.
REBUILD_SLACK = 60.0
REBUILD_HORIZON = 86400.0
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATTERN_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# Names like FEATURE_STORE_URL (at least one underscore: plain words in capitals are not).
_LOG_ENV_NAME = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
_STACK_FRAME = re.compile(r"^\s+at\s")
LOG_NAME_LINES = 40


@dataclass(frozen=True)
class LogMatch:
    """A start-up log pattern found in a container's last lines, and the environment variable
    names those lines mention that the container does not have set (names only)."""

    pattern: str
    variables: tuple[str, ...] = ()


def variables_named(text: str, env: Mapping[str, str]) -> tuple[str, ...]:
    """Environment variable names in `text` (the log from the pattern on, up to a stack
    trace) that `env` lacks or has empty: what an env validator (zod, envalid) complained of."""
    lines = []
    for line in text.splitlines()[:LOG_NAME_LINES]:
        if _STACK_FRAME.match(line):
            break
        lines.append(line)
    names = _LOG_ENV_NAME.findall("\n".join(lines))
    return tuple(dict.fromkeys(n for n in names if not env.get(n)))


class CrashLoop(BaseModel):
    """How many restarts within which window count as a crash loop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    restarts: int = Field(default=3, ge=1)
    window: PositiveDuration = 600.0


class ContainerSpec(CheckSpec):
    """Which container to watch (Compose project + service, a name, or labels) and what else
    to verify (required environment, start-up log patterns)."""

    type: Literal["container"]
    project: str | None = Field(default=None, min_length=1)
    container: str | None = Field(default=None, min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    required_env: tuple[str, ...] = ()
    crash_loop: CrashLoop = CrashLoop()
    inspect_logs: bool = False
    log_patterns: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_LOG_PATTERNS))
    log_lines: int = Field(default=50, ge=1, le=1000)

    @model_validator(mode="after")
    def _one_selection(self) -> ContainerSpec:
        if self.container and (self.labels or self.project):
            raise ValueError("select by `container` (a name) or by `project`/`service`/`labels`")
        if self.project and not self.service:
            raise ValueError("`project` needs `service` (or select by `labels`)")
        if not (self.container or self.labels or self.service):
            raise ValueError(
                "say which container to watch: `service` (with `project`), `container` or `labels`"
            )
        return self

    @field_validator("required_env")
    @classmethod
    def _env_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not _ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return names

    @field_validator("log_patterns")
    @classmethod
    def _patterns(cls, patterns: dict[str, str]) -> dict[str, str]:
        for name, pattern in patterns.items():
            if not _PATTERN_NAME.match(name):
                raise ValueError(f"pattern name {name!r} must match {_PATTERN_NAME.pattern}")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"pattern {name!r} is not a valid regular expression: {exc}"
                ) from None
        return patterns

    def selector(self) -> Selector:
        """The containers this check selects."""
        if self.container:
            return Selector(name=self.container)
        return Selector(project=self.project, service=self.service, labels=dict(self.labels))


def docker_access(context: CheckContext) -> DockerAccess:
    """The context's Docker access, made from `$DOCKER_HOST` when nobody configured one."""
    if context.docker is None:
        context.docker = DockerAccess.from_environment(os.environ)
    return context.docker


def forget_container_metrics(context: CheckContext, project: str, service: str) -> None:
    """Drop the container series of a check that went away."""
    metrics = context.metrics
    for gauge in (metrics.container_up, metrics.container_restarts):
        with contextlib.suppress(KeyError):
            gauge.remove(project, service)
    with contextlib.suppress(KeyError):
        metrics.container_oom_kills.remove(project, service)
    for status in HEALTH_STATUSES:
        with contextlib.suppress(KeyError):
            metrics.container_health_status.remove(project, service, status)


class ContainerCheck:
    """Inspects the selected container; remembers the events the watcher hands it."""

    def __init__(self, spec: ContainerSpec, context: CheckContext) -> None:
        self.spec = spec
        self.selector = spec.selector()
        self.memory = ContainerMemory()
        self.metric_labels = (spec.project or "", spec.service or spec.container or spec.name)
        self._context = context
        self._lock = asyncio.Lock()
        self._patterns = {name: re.compile(p) for name, p in spec.log_patterns.items()}
        self._log_matches: dict[tuple[str, str], LogMatch | None] = {}
        self._last_match: tuple[str, LogMatch] | None = None
        self._last_exit: Explanation | None = None
        self._retired = False

    def retire(self) -> None:
        """The check is gone: a run still in flight must not bring its metric series back."""
        self._retired = True
        forget_container_metrics(self._context, *self.metric_labels)

    def observe(self, event: ContainerEvent) -> None:
        """Remember an event for this check's container (called by the Docker watcher)."""
        self.memory.remember(event)

    def watches(self, event: ContainerEvent) -> bool:
        """Whether `event` concerns a container this check selects."""
        return self.selector.matches(event.attributes, event.name)

    async def run(self) -> CheckResult:
        # One run at a time, so results of event-driven runs are recorded in event order.
        async with self._lock:
            return await self._run()

    async def _run(self) -> CheckResult:
        started = time.perf_counter()
        docker = docker_access(self._context)
        try:
            async with asyncio.timeout(self.spec.timeout):
                view = await self._find(docker)
                if view is not None and not self.memory.knows(view.id):
                    await self._rebuild(docker, view)
                match = await self._log_match(docker, view) if view is not None else None
        except DockerUnavailable as exc:
            return CheckResult(
                ok=False,
                unknown=True,
                kind=FailureKind.DOCKER_UNAVAILABLE,
                reason=f"container state unknown: {exc.reason}",
                duration=time.perf_counter() - started,
            )
        except TimeoutError:
            return CheckResult(
                ok=False,
                unknown=True,
                kind=FailureKind.DOCKER_UNAVAILABLE,
                reason="container state unknown: the Docker engine did not answer within "
                f"{format_duration(self.spec.timeout)}",
                duration=time.perf_counter() - started,
            )
        duration = time.perf_counter() - started
        if view is None:
            return self._missing(duration)
        return self._judge(view, match, duration)

    async def _find(self, docker: DockerAccess) -> ContainerView | None:
        if self.selector.name:
            data = await docker.inspect(self.selector.name)
        else:
            summaries = await docker.containers(self.selector.filters())
            chosen = best_candidate(summaries, self.selector)
            data = await docker.inspect(chosen) if chosen else None
        return parse_inspect(data) if data else None

    async def _rebuild(self, docker: DockerAccess, view: ContainerView) -> None:
        """First sight of a container (a new one, or opsmon restarted): rebuild its restarts
        and stop requests from the engine's events of its last run and the crash-loop window,
        so that judgement does not depend on when opsmon started."""
        clock = self._context.clock
        wall = clock.now().timestamp()
        since = wall - self.spec.crash_loop.window
        if view.started_at is not None:
            since = min(since, view.started_at.timestamp() - REBUILD_SLACK)
        since = max(since, wall - REBUILD_HORIZON)
        raw = await docker.past_events(view.id, since, wall)
        events = [e for e in map(ContainerEvent.from_raw, raw) if e is not None]
        self.memory.rebuild(view, events, clock.monotonic(), wall)

    async def _log_match(self, docker: DockerAccess, view: ContainerView) -> LogMatch | None:
        if not self.spec.inspect_logs or not self._exited_early(view):
            return None
        key = (view.id, view.finished_at.isoformat() if view.finished_at else "")
        if key not in self._log_matches:
            text = await docker.log_tail(view.id, self.spec.log_lines)
            found = None
            for name, pattern in self._patterns.items():
                hit = pattern.search(text)
                if hit is not None:
                    found = LogMatch(name, variables_named(text[hit.start() :], view.env))
                    break
            if len(self._log_matches) > 64:
                self._log_matches.clear()
            self._log_matches[key] = found
            if found is not None:
                self._last_match = (view.id, found)
        return self._log_matches[key]

    def _exited_early(self, view: ContainerView) -> bool:
        """Its last run ended soon after it started: stopped now, or (restarted by its policy,
        crash-looping) running again after an exit within the crash-loop window."""
        if not view.running:
            ran = view.last_run_seconds()
            return ran is not None and ran <= EARLY_EXIT
        if view.restart_count == 0 or view.finished_at is None:
            return False
        since = self._context.clock.now().timestamp() - view.finished_at.timestamp()
        return since <= self.spec.crash_loop.window

    # --- judgement --------------------------------------------------------------------------
    def _missing(self, duration: float) -> CheckResult:
        if not self._retired:
            self._context.metrics.container_up.labels(*self.metric_labels).set(0)
            self._set_health_metric("none")
        reason = f"no container matches {self.selector.describe()}"
        removal = self.memory.removal
        if removal is not None:
            how = "stopped on request and removed" if removal.after_stop else "removed"
            reason += (
                f" (the last one, {removal.name}, was {how} at {removal.at:%Y-%m-%d %H:%M:%S} UTC)"
            )
        return CheckResult.failure(
            FailureKind.MISSING,
            reason,
            duration=duration,
            facts={"STATE": "missing"},
            connected=True,
        )

    def _state_explanation(self, view: ContainerView) -> Explanation:
        status = view.status
        if status == "created":
            return Explanation(FailureKind.NOT_RUNNING, "created but never started")
        if status == "paused":
            return Explanation(FailureKind.PAUSED, "paused (docker pause)")
        if status == "removing":
            return Explanation(FailureKind.NOT_RUNNING, "being removed")
        engine = self._context.docker.status if self._context.docker else None
        explanation = explain_exit(view, self.memory, engine)
        if status == "restarting":
            return replace(explanation, reason=f"{explanation.reason}; restarting")
        if status == "dead":
            return replace(explanation, reason=f"{explanation.reason}; dead")
        return explanation

    def _facts(
        self, view: ContainerView, oom: bool, restarts_10m: int, missing_env: list[str]
    ) -> dict[str, object]:
        return {
            "STATE": view.status,
            "HEALTH": view.health,
            "HEALTH_OUTPUT": view.health_output,
            "EXIT_CODE": view.exit_code,
            "RESTARTS": view.restart_count,
            "RESTARTS_10M": restarts_10m,
            "OOM_KILLED": oom,
            "IMAGE": view.image,
            "IMAGE_ID": view.image_id,
            "STARTED_AT": view.started_at.isoformat() if view.started_at else "",
            "FINISHED_AT": view.finished_at.isoformat() if view.finished_at else "",
            "CONTAINER": view.name,
            "MISSING_ENV": missing_env,
        }

    def _judge(self, view: ContainerView, match: LogMatch | None, duration: float) -> CheckResult:
        spec = self.spec
        now = self._context.clock.monotonic()
        self.memory.observe(view, now)
        restarts_10m = self.memory.restarts_within(_TEN_MINUTES, now)
        in_window = self.memory.restarts_within(spec.crash_loop.window, now)
        explanation = None if view.running else self._state_explanation(view)
        if explanation is not None and view.status != "created":
            self._last_exit = explanation
        oom = (
            view.oom_killed or self.memory.oom_event(view) or bool(explanation and explanation.oom)
        )
        if oom and self.memory.first_oom(view) and not self._retired:
            self._context.metrics.container_oom_kills.labels(*self.metric_labels).inc()
        if not self._retired:
            self._set_metrics(view)
        missing_env = [n for n in spec.required_env if not view.env.get(n)]
        facts = self._facts(view, oom, restarts_10m, missing_env)
        if match is not None:
            facts["LOG_PATTERN"] = match.pattern

        def fail(kind: FailureKind, reason: str) -> CheckResult:
            return CheckResult.failure(kind, reason, duration=duration, facts=facts, connected=True)

        if missing_env:
            plural = "s" if len(missing_env) > 1 else ""
            return fail(
                FailureKind.ENVIRONMENT,
                f"required environment variable{plural} missing or empty: {', '.join(missing_env)}",
            )
        if match is not None and explanation is not None:
            facts["MISSING_ENV"] = list(match.variables)
            return fail(
                FailureKind.ENVIRONMENT,
                f"{explanation.reason}; its last log lines match the pattern {match.pattern!r} "
                f"({_invalid(match)})",
            )
        if in_window >= spec.crash_loop.restarts:
            last = f" (last exit: {self._last_exit.reason})" if self._last_exit else ""
            if self._last_match is not None and self._last_match[0] == view.id:
                found = self._last_match[1]
                facts["LOG_PATTERN"] = found.pattern
                facts["MISSING_ENV"] = list(found.variables)
                return fail(
                    FailureKind.ENVIRONMENT,
                    f"crash loop: restarted {in_window} times within "
                    f"{format_duration(spec.crash_loop.window)}; its log lines match the pattern "
                    f"{found.pattern!r} ({_invalid(found)})",
                )
            return fail(
                FailureKind.CRASH_LOOP,
                f"crash loop: restarted {in_window} times within "
                f"{format_duration(spec.crash_loop.window)}{last}",
            )
        if spec.conditions:
            result = judge(spec.conditions, facts, Facts(facts), duration=duration, connected=True)
            if not result.ok and explanation is not None:
                result = replace(
                    result,
                    kind=explanation.kind,
                    reason=f"{explanation.reason}; {result.reason}",
                )
            return result
        if explanation is not None:
            return fail(explanation.kind, explanation.reason)
        if view.health == "unhealthy":
            output = f": {view.health_output}" if view.health_output else ""
            return fail(FailureKind.UNHEALTHY, f"Docker health check reports unhealthy{output}")
        return CheckResult(ok=True, duration=duration, facts=facts, connected=True)

    def _set_metrics(self, view: ContainerView) -> None:
        metrics = self._context.metrics
        metrics.container_up.labels(*self.metric_labels).set(1 if view.running else 0)
        metrics.container_restarts.labels(*self.metric_labels).set(view.restart_count)
        self._set_health_metric(view.health if view.health in HEALTH_STATUSES else "none")

    def _set_health_metric(self, current: str) -> None:
        gauge = self._context.metrics.container_health_status
        for status in HEALTH_STATUSES:
            gauge.labels(*self.metric_labels, status).set(1 if status == current else 0)


def _invalid(match: LogMatch) -> str:
    if match.variables:
        return f"environment variables missing or invalid: {', '.join(match.variables)}"
    return "environment variables missing or invalid"


def build(spec: ContainerSpec, context: CheckContext) -> ContainerCheck:
    """Registry entry point."""
    return ContainerCheck(spec, context)

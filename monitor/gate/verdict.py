"""The gate's judgement of one deploy: a pure state machine over plain records.

`step(state, observation)` takes what the gate saw at one moment (the service's new
container, the latest result of each of the service's own checks, the time) and returns the
next state plus the changes worth a progress line. It has no I/O, so every rule is tested
with plain values and a hand-made clock.

The rules, in order:
- evidence fails the deploy at once, without waiting out the timeout: an OOM kill, a
  required environment variable missing (named), a crash loop (`crash_loop_restarts`
  restarts of the new container), an exit that Docker will not restart (an exit at start),
  any own check unhealthy by its thresholds;
- every own check healthy, continuously for `healthy_for` -> promoted; any check not
  healthy, or a restart of the container, starts that stretch again;
- the deadline passes first -> timed out, with what was still missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from monitor.core.durations import format_duration

# Restarts of the new container that make a crash loop (the daemon's deploy tracking uses 3).
CRASH_LOOP_RESTARTS = 3


class Phase(StrEnum):
    """Where the gate stands."""

    WAITING_CONTAINER = "waiting_container"  # no new container of the service yet
    WAITING_HEALTHY = "waiting_healthy"  # the container runs; not every check is healthy
    HEALTHY = "healthy"  # every check healthy; waiting out `healthy_for`
    PROMOTED = "promoted"
    FAILED = "failed"
    TIMED_OUT = "timed_out"

    @property
    def final(self) -> bool:
        """A verdict: nothing changes any more."""
        return self in (Phase.PROMOTED, Phase.FAILED, Phase.TIMED_OUT)


class Evidence(StrEnum):
    """What failed a deploy (bounded: it goes into JSON and annotations)."""

    OOM = "oom"
    MISSING_ENV = "missing_env"
    CRASH_LOOP = "crash_loop"
    EXITED = "exited"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class ContainerSeen:
    """One look at the service's new container (`docker inspect`, cut down)."""

    id: str
    name: str
    image: str
    image_id: str
    status: str  # running, restarting, exited, dead, created, paused
    started_at: datetime | None
    restart_count: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    will_restart: bool = False  # its restart policy brings it back after an exit
    exit_reason: str = ""  # why it is not running, for a person ("exited with code 1 after 0.2s")
    missing_env: tuple[str, ...] = ()  # required variables it lacks (names only)
    env_hint: str = ""  # what its last log lines say about its environment, if anything
    last_log_line: str = ""  # its last log line after an exit (values of its env masked)

    @property
    def running(self) -> bool:
        """Its main process runs."""
        return self.status == "running"


@dataclass(frozen=True)
class CheckSeen:
    """The latest state of one own check of the service (after its thresholds)."""

    name: str
    health: str  # healthy | unhealthy | unknown
    reason: str = ""  # why the last run failed (empty when it passed)


@dataclass(frozen=True)
class Observation:
    """What the gate saw at `at`: the container (None: none yet) and the own checks (only
    results about this container; a check without one is `unknown`)."""

    at: datetime
    container: ContainerSeen | None
    checks: tuple[CheckSeen, ...] = ()


@dataclass(frozen=True)
class Rules:
    """The gate's settings."""

    healthy_for: float
    timeout: float
    crash_loop_restarts: int = CRASH_LOOP_RESTARTS


@dataclass(frozen=True)
class Failure:
    """Why the deploy failed, with the evidence lines."""

    evidence: Evidence
    summary: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """Something worth a progress line."""

    at: datetime
    text: str


@dataclass(frozen=True)
class GateState:
    """The gate's state for one service."""

    service: str
    started_at: datetime
    rules: Rules
    phase: Phase = Phase.WAITING_CONTAINER
    container: ContainerSeen | None = None
    checks: tuple[CheckSeen, ...] = ()
    healthy_since: datetime | None = None
    failure: Failure | None = None
    summary: str = ""  # the verdict (or the latest progress) in one sentence
    finished_at: datetime | None = None
    last_exit: str = ""  # why the container last stopped (kept while it runs again)

    @property
    def deadline(self) -> datetime:
        """When the gate gives up without a verdict."""
        return self.started_at + timedelta(seconds=self.rules.timeout)

    @property
    def passing(self) -> int:
        """Own checks healthy now."""
        return sum(1 for c in self.checks if c.health == "healthy")


def start(service: str, at: datetime, rules: Rules) -> GateState:
    """The state before anything was seen."""
    return GateState(service, at, rules, summary=f"waiting for the new container of {service}")


def _seconds(value: float) -> str:
    return format_duration(round(value, 1)) if value >= 1 else f"{value:.1f}s"


def _container_failure(
    service: str, seen: ContainerSeen, rules: Rules, last_exit: str
) -> Failure | None:
    """Evidence from the container alone (OOM, missing variables, crash loop, final exit);
    `last_exit` is the latest exit seen (a restarted container runs again when looked at)."""
    exit_detail = seen.exit_reason or last_exit or "not seen"
    hint: tuple[str, ...] = (seen.env_hint,) if seen.env_hint else ()
    if seen.last_log_line:
        hint += (f"last log line: {seen.last_log_line}",)
    if seen.oom_killed:
        return Failure(
            Evidence.OOM,
            f"{service} was OOM-killed ({exit_detail})",
            (f"{seen.name}: {exit_detail}",),
        )
    if seen.missing_env:
        names = ", ".join(seen.missing_env)
        plural = "s" if len(seen.missing_env) > 1 else ""
        stopped = "" if seen.running else f" ({exit_detail})"
        return Failure(
            Evidence.MISSING_ENV,
            f"{service} lacks the required environment variable{plural} {names}{stopped}",
            (f"{seen.name}: required environment variable{plural} missing or empty: {names}",),
        )
    if seen.restart_count >= rules.crash_loop_restarts:
        return Failure(
            Evidence.CRASH_LOOP,
            f"{service} crash-loops: restarted {seen.restart_count} times since the deploy "
            f"(last exit: {exit_detail})",
            (f"{seen.name}: restarted {seen.restart_count} times; last exit: {exit_detail}", *hint),
        )
    if seen.status in ("exited", "dead") and not seen.will_restart:
        return Failure(
            Evidence.EXITED,
            f"{service} exited at start: {exit_detail}"
            + (f"; {seen.env_hint}" if seen.env_hint else ""),
            (f"{seen.name}: {exit_detail}", *hint),
        )
    return None


def _check_failure(service: str, checks: Sequence[CheckSeen]) -> Failure | None:
    failing = [c for c in checks if c.health == "unhealthy"]
    if not failing:
        return None
    names = ", ".join(c.name for c in failing)
    return Failure(
        Evidence.UNHEALTHY,
        f"{service} is unhealthy by its checks' thresholds ({names})",
        tuple(f"{c.name}: {c.reason}" if c.reason else c.name for c in failing),
    )


def _describe(seen: ContainerSeen) -> str:
    return f"{seen.name} ({seen.image}, {seen.image_id.removeprefix('sha256:')[:12]})"


def _finish(
    state: GateState, phase: Phase, at: datetime, summary: str, failure: Failure | None = None
) -> tuple[GateState, list[Change]]:
    done = replace(state, phase=phase, summary=summary, failure=failure, finished_at=at)
    return done, [Change(at, summary)]


def _progress(checks: Sequence[CheckSeen]) -> str:
    passing = sum(1 for c in checks if c.health == "healthy")
    waiting = [
        f"{c.name}: {c.health}" + (f" ({c.reason})" if c.reason else "")
        for c in checks
        if c.health != "healthy"
    ]
    return f"checks passing {passing}/{len(checks)}" + (
        f"; {'; '.join(waiting)}" if waiting else ""
    )


def step(state: GateState, seen: Observation) -> tuple[GateState, list[Change]]:
    """The next state after `seen`, and the changes worth a progress line."""
    if state.phase.final:
        return state, []
    rules, at, service = state.rules, seen.at, state.service
    changes: list[Change] = []
    container = seen.container
    healthy_since = state.healthy_since
    if container is not None:
        previous = state.container
        if previous is None or previous.id != container.id:
            started = (
                f", started {_seconds(max(0.0, (at - container.started_at).total_seconds()))} ago"
                if container.started_at is not None
                else ""
            )
            changes.append(Change(at, f"container {_describe(container)} seen{started}"))
            healthy_since = None
        elif container.restart_count > previous.restart_count:
            changes.append(
                Change(
                    at,
                    f"container {container.name} restarted (restart {container.restart_count}"
                    f"{': ' + container.exit_reason if container.exit_reason else ''})",
                )
            )
            healthy_since = None
        last_exit = container.exit_reason or (
            state.last_exit if previous is not None and previous.id == container.id else ""
        )
        state = replace(state, container=container, last_exit=last_exit)
        failure = _container_failure(service, container, rules, last_exit)
        if failure is not None:
            state = replace(state, checks=seen.checks)
            done, last = _finish(state, Phase.FAILED, at, failure.summary, failure)
            return done, changes + last
    if state.container is None:
        if at >= state.deadline:
            return _finish(
                state,
                Phase.TIMED_OUT,
                at,
                f"no verdict within {format_duration(rules.timeout)}: no new container of "
                f"{service} appeared",
            )
        return state, changes
    checks = seen.checks
    if _progress(checks) != _progress(state.checks):
        changes.append(Change(at, _progress(checks)))
    state = replace(state, checks=checks)
    failure = _check_failure(service, checks)
    if failure is not None:
        done, last = _finish(state, Phase.FAILED, at, failure.summary, failure)
        return done, changes + last
    all_healthy = bool(checks) and all(c.health == "healthy" for c in checks)
    all_healthy = all_healthy and state.container is not None and state.container.running
    if not all_healthy:
        healthy_since = None
    elif healthy_since is None:
        healthy_since = at
        changes.append(
            Change(
                at,
                f"every check of {service} healthy; promoting after "
                f"{format_duration(rules.healthy_for)} without a failure",
            )
        )
    state = replace(state, healthy_since=healthy_since)
    if healthy_since is not None and (at - healthy_since).total_seconds() >= rules.healthy_for:
        image = state.container.image if state.container is not None else "?"
        done, last = _finish(
            state,
            Phase.PROMOTED,
            at,
            f"{service} on {image} was healthy for {format_duration(rules.healthy_for)}: promoted",
        )
        return done, changes + last
    if at >= state.deadline:
        done, last = _finish(
            state,
            Phase.TIMED_OUT,
            at,
            f"no verdict within {format_duration(rules.timeout)}: {_progress(checks)}",
        )
        return done, changes + last
    phase = Phase.HEALTHY if healthy_since is not None else Phase.WAITING_HEALTHY
    summary = _progress(checks)
    return replace(state, phase=phase, summary=summary), changes


def next_wake(state: GateState, now: datetime, pause: float) -> float:
    """Seconds until the gate should look again: `pause`, or sooner when the healthy stretch
    or the deadline ends first."""
    ends = [state.deadline]
    if state.healthy_since is not None:
        ends.append(state.healthy_since + timedelta(seconds=state.rules.healthy_for))
    soonest = min((end - now).total_seconds() for end in ends)
    return max(0.0, min(pause, soonest))


@dataclass(frozen=True)
class Candidate:
    """A container of the service, from the engine's list."""

    id: str
    image: str
    image_id: str
    state: str
    created: float  # Unix seconds


@dataclass(frozen=True)
class Choice:
    """The container the gate judges, or why none yet."""

    id: str | None
    waiting_for: str = ""


def runs_image(candidate: Candidate, image: str) -> bool:
    """Whether the container runs `image`: its reference, or its id (a prefix of 12 or more
    hex digits, with or without `sha256:`)."""
    if image == candidate.image:
        return True
    wanted = image.removeprefix("sha256:")
    have = candidate.image_id.removeprefix("sha256:")
    return len(wanted) >= 12 and have.startswith(wanted)


def choose(candidates: Sequence[Candidate], image: str | None) -> Choice:
    """The new container: the one created most recently (with `image`: the newest one
    running that image reference or id)."""
    pool = list(candidates)
    if image is not None:
        pool = [c for c in pool if runs_image(c, image)]
        if not pool:
            return Choice(None, f"a container running {image}")
    if not pool:
        return Choice(None, "a container of the service")
    newest = max(pool, key=lambda c: (c.created, c.id))
    return Choice(newest.id)

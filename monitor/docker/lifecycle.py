"""What a container's state means: parsing `docker inspect`, remembering its events, and
telling a requested stop from a crash from an OOM kill. No I/O."""

from __future__ import annotations

import re
import signal
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor.core.durations import format_duration
from monitor.core.result import FailureKind
from monitor.docker.access import EngineStatus
from monitor.docker.events import ContainerEvent

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"
_ZERO_TIME = "0001-01-01T00:00:00Z"
_EVENTS_PER_CONTAINER = 64
_CONTAINERS_REMEMBERED = 32
# Docker stops a container with its stop signal, then SIGKILL after the grace period.
_DEFAULT_STOP_SIGNALS = frozenset(int(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT))
# A container stopped by an engine shutdown finishes shortly before the stream ends.
ENGINE_SHUTDOWN_LEAD = 5.0
# Engine and opsmon clocks (and event versus inspect stamps) differ by a little.
_SLACK = 1.0
_HEALTH_OUTPUT_MAX = 300
_SECRET_MIN = 4
MASK = "***"
_FRACTION = re.compile(r"\.(\d+)")


def parse_time(value: object) -> datetime | None:
    """Docker's RFC 3339 time with nanoseconds, or None for its zero time."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    # Python reads at most microseconds: cut Docker's nanoseconds down to six digits.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6], value.replace("Z", "+00:00"))
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def signal_number(value: object) -> int | None:
    """`15`, `SIGTERM` or `TERM` as a signal number."""
    text = str(value or "").strip().upper()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    name = text if text.startswith("SIG") else f"SIG{text}"
    try:
        return int(signal.Signals[name])
    except KeyError:
        return None


def signal_name(number: int) -> str:
    """`SIGTERM` for 15; `signal 99` for unknown numbers."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass(frozen=True)
class ContainerView:
    """The parts of `docker inspect` a container check uses. `env` stays private: only its
    names are ever reported."""

    id: str
    name: str
    status: str
    exit_code: int
    oom_killed: bool
    health: str
    health_output: str
    restart_count: int
    image: str
    image_id: str
    started_at: datetime | None
    finished_at: datetime | None
    stop_signal: int | None
    labels: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def running(self) -> bool:
        """Whether the container's main process runs (paused counts as not running)."""
        return self.status == "running"

    @property
    def project(self) -> str:
        """Its Compose project, or empty."""
        return self.labels.get(PROJECT_LABEL, "")

    @property
    def service(self) -> str:
        """Its Compose service, or empty."""
        return self.labels.get(SERVICE_LABEL, "")

    def last_run_seconds(self) -> float | None:
        """How long the last finished run lasted (None while running or never finished)."""
        if self.running or self.started_at is None or self.finished_at is None:
            return None
        # A process that exits at once can finish before Docker records it as started.
        return max(0.0, (self.finished_at - self.started_at).total_seconds())


def _env(entries: Iterable[object]) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in entries:
        name, _, value = str(entry).partition("=")
        env[name] = value
    return env


def mask_values(text: str, values: Iterable[str]) -> str:
    """`text` with every one of `values` (of a useful length) replaced by a mask."""
    for value in sorted({v for v in values if len(v) >= _SECRET_MIN}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def parse_inspect(data: Mapping[str, Any]) -> ContainerView:
    """A ContainerView from the JSON of `GET /containers/{id}/json`."""
    state = data.get("State") or {}
    config = data.get("Config") or {}
    env = _env(config.get("Env") or [])
    health = state.get("Health") or {}
    log = health.get("Log") or []
    output = str(log[-1].get("Output") or "").strip() if log else ""
    output = " ".join(mask_values(output, env.values()).split())
    if len(output) > _HEALTH_OUTPUT_MAX:
        output = output[: _HEALTH_OUTPUT_MAX - 3] + "..."
    return ContainerView(
        id=str(data.get("Id") or ""),
        name=str(data.get("Name") or "").lstrip("/"),
        status=str(state.get("Status") or "unknown"),
        exit_code=int(state.get("ExitCode") or 0),
        oom_killed=bool(state.get("OOMKilled")),
        health=str(health.get("Status") or "none"),
        health_output=output,
        restart_count=int(data.get("RestartCount") or 0),
        image=str(config.get("Image") or ""),
        image_id=str(data.get("Image") or ""),
        started_at=parse_time(state.get("StartedAt")),
        finished_at=parse_time(state.get("FinishedAt")),
        stop_signal=signal_number(config.get("StopSignal")),
        labels={str(k): str(v) for k, v in (config.get("Labels") or {}).items()},
        env=env,
    )


@dataclass(frozen=True)
class _Seen:
    at: float  # seconds since the epoch, engine clock
    action: str
    signal: int | None


@dataclass(frozen=True)
class _Observation:
    id: str
    started_at: datetime | None
    restart_count: int


@dataclass(frozen=True)
class Removal:
    """A watched container that was destroyed, and whether it had been stopped on request."""

    at: datetime
    name: str
    after_stop: bool


@dataclass(frozen=True)
class Explanation:
    """Why a container is not running: a bounded `kind` and a sentence for a person."""

    kind: FailureKind
    reason: str
    oom: bool = False


class ContainerMemory:
    """The events one check has seen for its containers and the restarts it has counted."""

    def __init__(self) -> None:
        self._events: dict[str, deque[_Seen]] = {}
        # Restarts by container id: a container replaced by a deploy or a rollback starts
        # with a clean count (its predecessor's crash loop is not its own).
        self._restarts: dict[str, deque[float]] = {}
        self._rebuilt: deque[str] = deque(maxlen=_CONTAINERS_REMEMBERED)
        self._last: _Observation | None = None
        self._ooms_counted: deque[tuple[str, datetime | None]] = deque(maxlen=64)
        self.removal: Removal | None = None

    def remember(self, event: ContainerEvent) -> None:
        """Keep what a later explanation needs: kills (with their signal), OOMs, destroys."""
        if event.action not in ("kill", "oom", "die", "start", "destroy"):
            return
        seen = self._events.get(event.id)
        if seen is None:
            if len(self._events) >= _CONTAINERS_REMEMBERED:
                self._events.pop(next(iter(self._events)))
            seen = self._events[event.id] = deque(maxlen=_EVENTS_PER_CONTAINER)
        number = signal_number(event.attributes.get("signal")) if event.action == "kill" else None
        seen.append(_Seen(event.seconds, event.action, number))
        if event.action == "destroy":
            moment = datetime.fromtimestamp(event.seconds, UTC)
            self.removal = Removal(
                moment, event.name, self._stopped_before(event.id, event.seconds)
            )
        elif event.action == "start":
            self.removal = None

    def _between(self, container: str, start: float, end: float) -> list[_Seen]:
        return [s for s in self._events.get(container, ()) if start - _SLACK <= s.at <= end]

    def _stopped_before(self, container: str, moment: float) -> bool:
        return any(
            s.action == "kill" and s.signal in _DEFAULT_STOP_SIGNALS
            for s in self._between(container, 0, moment)
        )

    def stop_request(self, view: ContainerView) -> int | None:
        """The stop signal sent through the API during the container's last run, if any."""
        if view.started_at is None:
            return None
        end = view.finished_at.timestamp() + _SLACK if view.finished_at else float("inf")
        stops = set(_DEFAULT_STOP_SIGNALS)
        if view.stop_signal is not None:
            stops.add(view.stop_signal)
        for seen in self._between(view.id, view.started_at.timestamp(), end):
            if seen.action == "kill" and seen.signal is not None and seen.signal in stops:
                return seen.signal
        return None

    def kill_signal(self, view: ContainerView) -> int | None:
        """Any signal sent through the API (e.g. `docker kill`) during the last run."""
        if view.started_at is None:
            return None
        end = view.finished_at.timestamp() + _SLACK if view.finished_at else float("inf")
        for seen in self._between(view.id, view.started_at.timestamp(), end):
            if seen.action == "kill" and seen.signal is not None:
                return seen.signal
        return None

    def oom_event(self, view: ContainerView) -> bool:
        """Whether an `oom` event came during the container's last (or current) run."""
        if view.started_at is None:
            return False
        end = view.finished_at.timestamp() + _SLACK if view.finished_at else float("inf")
        if view.running:
            end = float("inf")
        return any(
            s.action == "oom" for s in self._between(view.id, view.started_at.timestamp(), end)
        )

    def observe(self, view: ContainerView, now: float) -> int:
        """Count the restarts since the last observation of this check's container."""
        last, self._last = self._last, _Observation(view.id, view.started_at, view.restart_count)
        if last is None or last.id != view.id:
            # A new container (deploy, recreate) is not a restart of the old one.
            return 0
        by_policy = max(0, view.restart_count - last.restart_count)
        restarted = (
            view.started_at is not None
            and last.started_at is not None
            and view.started_at > last.started_at
        )
        manual = 0
        if restarted and by_policy == 0 and last.started_at is not None:
            # `docker start` after a crash counts; after a stop or kill through the API (docker
            # stop/kill/restart, compose) somebody acted on purpose: that is no crash loop.
            assert view.started_at is not None
            window = self._between(
                view.id, last.started_at.timestamp(), view.started_at.timestamp()
            )
            asked = any(s.action == "kill" for s in window)
            manual = 0 if asked else 1
        count = by_policy + manual
        self._count_restarts(view.id, [now] * count)
        return count

    def _count_restarts(self, container: str, moments: Iterable[float]) -> None:
        counted = self._restarts.get(container)
        if counted is None:
            if len(self._restarts) >= _CONTAINERS_REMEMBERED:
                self._restarts.pop(next(iter(self._restarts)))
            counted = self._restarts[container] = deque(maxlen=1024)
        counted.extend(moments)

    def restarts_within(self, window: float, now: float) -> int:
        """How many restarts of the current container were counted in the last `window`
        seconds."""
        if self._last is None:
            return 0
        return sum(1 for at in self._restarts.get(self._last.id, ()) if now - at <= window)

    def knows(self, container: str) -> bool:
        """Whether this memory has seen (or rebuilt) anything of `container`."""
        return (
            container in self._rebuilt
            or container in self._events
            or (self._last is not None and self._last.id == container)
        )

    def rebuild(
        self, view: ContainerView, events: Iterable[ContainerEvent], now: float, wall: float
    ) -> None:
        """Rebuild what was lost with a restart of opsmon from the engine's past events of
        `view`'s container: the kills (a stop on request stays one) and the restarts (a
        start after a die with no kill through the API in between), so a restart of opsmon
        changes no judgement. `now` is the monotonic clock, `wall` the Unix time."""
        self._rebuilt.append(view.id)
        died = asked = False
        restarts: list[float] = []
        for event in sorted(events, key=lambda e: e.time_nano):
            if event.id != view.id:
                continue
            self.remember(event)
            if event.action == "kill":
                asked = True
            elif event.action == "die":
                died = True
            elif event.action == "start":
                if died and not asked:
                    restarts.append(now - max(0.0, wall - event.seconds))
                died = asked = False
        self._count_restarts(view.id, restarts)

    def first_oom(self, view: ContainerView) -> bool:
        """True once per container run that ended (or goes on) after an OOM kill."""
        key = (view.id, view.started_at)
        if key in self._ooms_counted:
            return False
        self._ooms_counted.append(key)
        return True


def explain_exit(
    view: ContainerView, memory: ContainerMemory, engine: EngineStatus | None
) -> Explanation:
    """Why a container that is not running stopped: OOM, a requested stop, or a crash."""
    code = view.exit_code
    ran = view.last_run_seconds()
    after = f" after {format_duration(round(ran, 1))}" if ran is not None and ran < 3600 else ""
    if view.oom_killed or memory.oom_event(view):
        if code == 0:
            return Explanation(
                FailureKind.OOM,
                "OOM-killed: a process in the container ran out of memory "
                f"(the main process then exited with code 0{after})",
                oom=True,
            )
        return Explanation(FailureKind.OOM, f"OOM-killed (exit code {code}{after})", oom=True)
    if engine is not None and view.finished_at is not None:
        # The engine stops every container as it shuts down, just before the stream ends.
        outage = engine.outage_around(view.finished_at, ENGINE_SHUTDOWN_LEAD)
        if outage is not None:
            return Explanation(
                FailureKind.STOPPED, f"stopped when the Docker engine shut down (exit code {code})"
            )
    stop = memory.stop_request(view)
    if stop is not None:
        return Explanation(
            FailureKind.STOPPED,
            f"stopped on request ({signal_name(stop)} through the Docker API, as docker stop "
            f"or compose stop/down send it), exit code {code}",
        )
    killed = memory.kill_signal(view)
    if killed is not None:
        return Explanation(
            FailureKind.EXITED,
            f"exited with code {code}{after}: {signal_name(killed)} sent through the Docker API "
            "(docker kill)",
        )
    # Exit 137 alone is a SIGKILL from anyone (docker stop's SIGKILL after the grace period of
    # a process that ignores SIGTERM, a restart of opsmon that lost the kill event): only
    # State.OOMKilled or an `oom` event, handled above, is evidence of an OOM kill.
    detail = f" (killed by {signal_name(code - 128)})" if 128 < code < 160 else ""
    return Explanation(FailureKind.EXITED, f"exited with code {code}{after}{detail}")

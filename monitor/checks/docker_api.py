"""`type: docker`: the Docker engine itself answers (and its event stream is open).

The Docker watcher adds one of these, named `docker`, whenever container checks or discovery
are configured; when it fails, container checks report UNKNOWN rather than a guess.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Literal

from monitor.checks.container import docker_access
from monitor.conditions import PlaceholderTable
from monitor.core.durations import format_duration
from monitor.core.result import CheckResult, FailureKind
from monitor.core.spec import CheckSpec
from monitor.docker.access import DockerUnavailable

if TYPE_CHECKING:
    from monitor.checks.context import CheckContext

# The engine check judges by its own rules: it takes no conditions.
PLACEHOLDERS: PlaceholderTable = {}
# The event stream may be down this long (reconnecting after an engine restart) before it counts.
EVENTS_GRACE = 15.0


class DockerApiSpec(CheckSpec):
    """The engine of the configured Docker host."""

    type: Literal["docker"]


class DockerApiCheck:
    """Asks the engine for its version (`GET /version`) and looks at the event stream."""

    def __init__(self, spec: DockerApiSpec, context: CheckContext) -> None:
        self.spec = spec
        self._context = context

    async def run(self) -> CheckResult:
        docker = docker_access(self._context)
        up = self._context.metrics.docker_up
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.spec.timeout):
                version = await docker.version()
        except DockerUnavailable as exc:
            up.set(0)
            return CheckResult.failure(
                FailureKind.DOCKER_UNAVAILABLE, exc.reason, duration=time.perf_counter() - started
            )
        except TimeoutError:
            up.set(0)
            return CheckResult.failure(
                FailureKind.DOCKER_UNAVAILABLE,
                f"the Docker engine at {docker.host} did not answer within "
                f"{format_duration(self.spec.timeout)}",
                duration=time.perf_counter() - started,
            )
        duration = time.perf_counter() - started
        up.set(1)
        status = docker.status
        facts: dict[str, object] = {
            "VERSION": str(version.get("Version", "")),
            "API_VERSION": str(version.get("ApiVersion", "")),
            "EVENTS_CONNECTED": status.events_connected,
        }
        since = status.events_error_since
        if status.events_error and since is not None:
            down_for = (self._context.clock.now() - since).total_seconds()
            if down_for > EVENTS_GRACE:
                return CheckResult.failure(
                    FailureKind.DOCKER_EVENTS,
                    f"the engine answers but its event stream does not ({status.events_error}); "
                    "container changes are seen only at each check's interval",
                    duration=duration,
                    facts=facts,
                    connected=True,
                )
        return CheckResult(ok=True, duration=duration, facts=facts, connected=True)


def build(spec: DockerApiSpec, context: CheckContext) -> DockerApiCheck:
    """Registry entry point."""
    return DockerApiCheck(spec, context)

"""The Docker component: the event stream feeding container checks, the `docker` self-check,
resynchronisation after reconnects, and discovery of labelled containers.

`DockerWatcher` is the component; while the config needs the engine (container checks or
discovery) it holds one `ActiveWatch`, built whole for one engine host and dropped whole.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from monitor.checks.container import ContainerCheck, forget_container_metrics
from monitor.checks.docker_api import DockerApiSpec
from monitor.core.health import Health
from monitor.docker.access import DockerAccess, DockerUnavailable
from monitor.docker.config import needs_docker
from monitor.docker.discovery import DISCOVERY_FILTERS, Discovery, is_discovery_label
from monitor.docker.events import ContainerEvent, EventHandler, EventStream, metric_action
from monitor.docker.lifecycle import PROJECT_LABEL
from monitor.logs import get_logger

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.ports import CheckRegistry, ComponentPorts
    from monitor.runner import CheckRunner

SELF_CHECK = "docker"
# Events after which a container check looks again at once. A `kill` is only remembered (its
# signal tells a requested stop from a crash): the `die` that follows is what changes state.
REFRESH_ACTIONS = frozenset(
    {
        "create",
        "start",
        "restart",
        "die",
        "oom",
        "stop",
        "destroy",
        "health_status",
        "pause",
        "unpause",
        "rename",
    }
)
DISCOVERY_ACTIONS = frozenset({"create", "destroy", "rename", "update"})
# What the subscription asks for: health probes alone would add three exec events per probe.
SUBSCRIBED_ACTIONS = REFRESH_ACTIONS | DISCOVERY_ACTIONS | {"kill"}
# While a fresh result disagrees with the debounced state, look again this often instead of
# waiting for the poll: thresholds then count seconds, not intervals.
CONFIRM_DELAY = 1.0


def subscription_filters(config: Config) -> dict[str, list[str]]:
    """Containers only; and only one Compose project when every check selects within it and
    nothing is discovered (the engine ANDs label filters, so several projects need all events)."""
    filters: dict[str, list[str]] = {"type": ["container"], "event": sorted(SUBSCRIBED_ACTIONS)}
    specs = [s for s in config.checks if s.type == "container"]
    projects = {getattr(s, "project", None) for s in specs}
    if specs and not config.docker.discovery and len(projects) == 1 and None not in projects:
        filters["label"] = [f"{PROJECT_LABEL}={projects.pop()}"]
    return filters


def container_runners(checks: CheckRegistry) -> list[CheckRunner]:
    """The runners of container checks, configured or discovered."""
    return [r for r in checks.runners.values() if isinstance(r.check, ContainerCheck)]


class DockerWatcher:
    """Keeps container checks current from the engine's events (polling stays the backstop)."""

    def __init__(self, ports: ComponentPorts) -> None:
        self._ports = ports
        self._config = ports.config
        self._container_series: dict[str, tuple[str, str]] = {}
        self._watch: ActiveWatch | None = None
        if needs_docker(self._config):
            # Before the daemon builds its checks, so they use the configured host.
            self._watch = self._new_watch(self._config)

    def _new_watch(self, config: Config) -> ActiveWatch:
        access = DockerAccess.from_environment(os.environ, config.docker.host)
        self._ports.checks.context.docker = access
        return ActiveWatch(self._ports, config, access)

    @property
    def stream(self) -> EventStream | None:
        """The event subscription (None while the config does not need the engine)."""
        return self._watch.stream if self._watch is not None else None

    @property
    def busy(self) -> bool:
        """Whether an event-driven run or a discovery scan is in flight."""
        return self._watch is not None and self._watch.busy

    # --- Component --------------------------------------------------------------------------
    async def start(self) -> None:
        if self._watch is not None:
            self._container_series = self._series()
            self._watch.start()

    async def stop(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            await watch.close(keep_checks=True)

    def vet(self, config: Config) -> None:
        """Raise if the engine access `config` asks for cannot be set up (e.g. DOCKER_CERT_PATH
        without its files)."""
        if needs_docker(config) and (
            self._watch is None or config.docker.host != self._config.docker.host
        ):
            DockerAccess.settings_from_environment(os.environ, config.docker.host)

    async def reload(self, config: Config) -> None:
        previous, self._config = self._config, config
        self._forget_stale_series()
        watch = self._watch
        wanted = needs_docker(config)
        if watch is not None and (not wanted or config.docker.host != previous.docker.host):
            self._watch = None
            await watch.close(keep_checks=False)
            watch = None
        if watch is not None:
            watch.reconfigure(config)
        elif wanted:
            self._watch = self._new_watch(config)
            self._container_series = self._series()
            self._watch.start()

    def routes(self) -> Sequence[BaseRoute]:
        return ()

    # --- container metric series ------------------------------------------------------------
    def _series(self) -> dict[str, tuple[str, str]]:
        series: dict[str, tuple[str, str]] = {}
        for runner in container_runners(self._ports.checks):
            assert isinstance(runner.check, ContainerCheck)
            series[runner.spec.name] = runner.check.metric_labels
        return series

    def _forget_stale_series(self) -> None:
        current = self._series()
        if self._watch is not None:
            self._watch.forget_removed()
        for name, labels in self._container_series.items():
            if name not in current and labels not in current.values():
                forget_container_metrics(self._ports.checks.context, *labels)
        self._container_series = current


class ActiveWatch:
    """Watching one engine: the access the container checks share, the event subscription,
    the `docker` self-check, discovery and the runs in flight. Built whole when the config
    needs the engine, closed whole when it no longer does or the host changes."""

    def __init__(self, ports: ComponentPorts, config: Config, access: DockerAccess) -> None:
        self._ports = ports
        self._checks = ports.checks
        self.config = config
        self.access = access
        handler = EventHandler(self._on_event, self._on_connected, self._on_disconnected)
        self.stream = EventStream(access, handler, subscription_filters(config))
        # None when the config has a `docker` check of its own.
        self._self_check: CheckRunner | None = None
        # None while discovery is off.
        self._discovery: Discovery | None = None
        self._discovered: set[str] = set()
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._tasks: set[asyncio.Task[object]] = set()
        self._discovery_pending = False
        # Events already queued on the loop may still arrive after `close`.
        self._closed = False
        self._log = get_logger("docker")

    @property
    def busy(self) -> bool:
        """Whether an event-driven run or a discovery scan is in flight."""
        return bool(self._refreshing) or self._discovery_pending

    def start(self) -> None:
        """Add the self-check, open the subscription and start discovery if configured."""
        self._ensure_self_check()
        self.stream.start()
        self._set_discovery()
        self._log.info(
            "docker_watching",
            host=self.access.host,
            filters=self.stream.filters,
            discovery=self.config.docker.discovery,
        )

    def reconfigure(self, config: Config) -> None:
        """Take a new config for the same engine host, and look at everything again."""
        self.config = config
        self._ensure_self_check()
        self.stream.set_filters(subscription_filters(config))
        self._set_discovery()
        self._resync()

    async def close(self, keep_checks: bool) -> None:
        """Stop the subscription and every task; without `keep_checks` also remove the
        self-check and the discovered checks (the config no longer needs the engine)."""
        self._closed = True
        tasks = [*self._tasks, *self._refreshing.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._refreshing.clear()
        await self.stream.stop()
        if not keep_checks:
            self._drop_discovered()
            if self._self_check is not None:
                self._checks.remove_runner(self._self_check.spec.name)
                self._self_check = None
            self._checks.context.docker = None
        self._discovery = None
        await self.access.aclose()

    def forget_removed(self) -> None:
        """Cancel runs of checks a reload removed."""
        for name in [n for n in self._refreshing if n not in self._checks.runners]:
            self._refreshing.pop(name).cancel()

    def _defaults(self) -> dict[str, Any]:
        return self.config.defaults.model_dump()

    def _set_discovery(self) -> None:
        if not self.config.docker.discovery:
            self._drop_discovered()
            self._discovery = None
        elif self._discovery is None:
            self._discovery = Discovery(self._defaults())
            self._spawn(self._discovery_loop(), "docker-discovery", forever=True)
        else:
            self._discovery.update_defaults(self._defaults())

    def _ensure_self_check(self) -> None:
        """Add the `docker` self-check unless the config has one (or uses the name)."""

        runners = self._checks.runners
        if any(s.type == "docker" for s in self.config.checks):
            return
        if self._self_check is not None:
            if self._self_check.spec.name not in runners:
                # A reload rebuilt the checks from config; keep this one's history.
                self._checks.add_runner(self._self_check)
            return
        names = {s.name for s in self.config.checks}
        name = SELF_CHECK if SELF_CHECK not in names else f"{SELF_CHECK}-engine"
        defaults = self._defaults()
        spec = DockerApiSpec(
            name=name,
            type="docker",
            interval=defaults["interval"],
            timeout=min(defaults["timeout"], defaults["interval"]),
            failure_threshold=defaults["failure_threshold"],
            success_threshold=defaults["success_threshold"],
        )
        runner = self._checks.build_runner(spec)
        self._self_check = runner
        self._checks.add_runner(runner)

    # --- tasks ------------------------------------------------------------------------------
    def _spawn(
        self, coroutine: Coroutine[object, object, object], name: str, forever: bool = False
    ) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._ports.tasks.watch(task, forever)

    def request_refresh(self, name: str, confirm: bool = True) -> None:
        """Run check `name` now (after the run in progress, if any, with one more after it).
        With `confirm`, a result that disagrees with the check's state is looked at again every
        CONFIRM_DELAY until the thresholds are met or the results agree."""
        if name in self._refreshing:
            self._again.add(name)
            return
        task = asyncio.get_running_loop().create_task(self._refresh(name, confirm))
        self._refreshing[name] = task

    async def _refresh(self, name: str, confirm: bool) -> None:
        try:
            confirmations = 0
            while True:
                runner = self._checks.runners.get(name)
                if runner is None:
                    return
                self._again.discard(name)
                result = await runner.run_once()
                if name in self._again:
                    continue
                state, spec = runner.state, runner.spec
                settled = result.unknown or (
                    state.health is (Health.HEALTHY if result.ok else Health.UNHEALTHY)
                )
                limit = max(spec.failure_threshold, spec.success_threshold)
                if not confirm or settled or confirmations >= limit or state.in_grace:
                    return
                confirmations += 1
                await asyncio.sleep(CONFIRM_DELAY)
        except asyncio.CancelledError:
            raise
        except Exception:
            self._log.exception("docker_refresh_failed", check=name)
        finally:
            if self._refreshing.get(name) is asyncio.current_task():
                del self._refreshing[name]

    def _resync(self) -> None:
        """Look at every watched container again (after a reconnect or a reload)."""
        for runner in container_runners(self._checks):
            self.request_refresh(runner.spec.name)
        if self._self_check is not None:
            # The engine's own check keeps its interval: an engine restart takes seconds.
            self.request_refresh(self._self_check.spec.name, confirm=False)
        self._request_discovery()

    # --- event stream callbacks (on the loop) -----------------------------------------------
    def _on_event(self, event: ContainerEvent) -> None:
        if self._closed:
            return
        self._ports.metrics.docker_events.labels(metric_action(event.action)).inc()
        for runner in container_runners(self._checks):
            check = runner.check
            assert isinstance(check, ContainerCheck)
            if not check.watches(event):
                continue
            check.observe(event)
            if event.action in REFRESH_ACTIONS:
                self.request_refresh(runner.spec.name)
        if (
            self._discovery is not None
            and event.action in DISCOVERY_ACTIONS
            and any(is_discovery_label(k) for k in event.attributes)
        ):
            self._request_discovery()

    def _on_connected(self) -> None:
        if self._closed:
            return
        status = self.access.status
        was_down = bool(status.outages) or status.events_error is not None
        status.came_back(self._ports.clock.now())
        self._ports.metrics.docker_up.set(1)
        if was_down:
            self._log.info("docker_events_reconnected", host=self.access.host)
        # Whatever happened while the stream was down is read from the engine itself.
        self._resync()

    def _on_disconnected(self, reason: str) -> None:
        if self._closed:
            return
        status = self.access.status
        first = status.events_connected or status.events_error is None
        status.went_down(self._ports.clock.now(), reason)
        if not first:
            return
        self._ports.metrics.docker_up.set(0)
        self._log.warning("docker_events_lost", host=self.access.host, reason=reason)
        for runner in container_runners(self._checks):
            self.request_refresh(runner.spec.name)
        if self._self_check is not None:
            # The engine's own check keeps its interval: an engine restart takes seconds.
            self.request_refresh(self._self_check.spec.name, confirm=False)

    # --- discovery --------------------------------------------------------------------------
    def _request_discovery(self) -> None:
        if self._discovery is None or self._discovery_pending:
            return
        self._discovery_pending = True
        self._spawn(self._discover(), "docker-discover")

    async def _discovery_loop(self) -> None:
        while True:
            self._request_discovery()
            await asyncio.sleep(self.config.docker.discovery_interval)

    async def _discover(self) -> None:
        try:
            await self._discover_once()
        except DockerUnavailable as exc:
            # Keep what was discovered: those checks report UNKNOWN until the engine is back.
            self._log.warning("docker_discovery_failed", reason=exc.reason)
        except Exception:
            self._log.exception("docker_discovery_crashed")
        finally:
            self._discovery_pending = False

    async def _discover_once(self) -> None:

        discovery, access = self._discovery, self.access
        if discovery is None:
            return
        summaries: dict[str, dict[str, object]] = {}
        for filters in DISCOVERY_FILTERS:
            for summary in await access.containers(filters):
                summaries[str(summary.get("Id"))] = summary
        if self._discovery is not discovery:
            return
        configured = {s.name for s in self.config.checks}
        if self._self_check is not None:
            configured.add(self._self_check.spec.name)
        plan = discovery.plan(summaries.values(), configured)
        for problem in plan.problems:
            self._log.warning("docker_discovery_label_invalid", problem=problem)
        checks = self._checks
        for name in sorted(self._discovered - set(plan.specs)):
            self._remove_discovered(name)
        for name, spec in plan.specs.items():
            current = checks.runners.get(name)
            if current is not None and (current.spec == spec or not current.discovered):
                continue
            runner = checks.build_runner(spec, discovered=True)
            if current is not None:
                runner.state = current.state
            checks.add_runner(runner)
            self._discovered.add(name)
            self._log.info("docker_check_discovered", check=name, type=spec.type)
            self.request_refresh(name)

    def _remove_discovered(self, name: str) -> None:
        runner = self._checks.runners.get(name)
        self._discovered.discard(name)
        if runner is None or not runner.discovered:
            return
        self._checks.remove_runner(name)
        refresh = self._refreshing.pop(name, None)
        if refresh is not None:
            refresh.cancel()
        if isinstance(runner.check, ContainerCheck):
            runner.check.retire()
        self._log.info("docker_check_undiscovered", check=name)

    def _drop_discovered(self) -> None:
        for name in sorted(self._discovered):
            self._remove_discovered(name)

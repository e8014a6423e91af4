"""Read-only access to the Docker Engine API through docker-py, kept off the event loop.

Only GET endpoints are used (`/_ping`, `/version`, `/containers/json`, `/containers/{id}/json`,
`/containers/{id}/logs`) plus the event stream, so opsmon works behind a read-only socket proxy
(`DOCKER_HOST=tcp://...`) as well as on the unix socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

# docker-py (and requests under it) load on first use: a config without container checks
# never pays for them.
if TYPE_CHECKING:
    import docker

DEFAULT_HOST = "unix:///var/run/docker.sock"
# Socket timeout of every request but the event stream: a hung engine must not hold a worker.
REQUEST_TIMEOUT = 10.0
_WORKERS = 4
_OUTAGES_KEPT = 16

T = TypeVar("T")


class DockerUnavailable(Exception):
    """The engine cannot be reached or refused the request; `reason` is for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        nested = current.args[0] if current.args else None
        # requests/urllib3 keep the OS error inside args rather than as __cause__.
        if isinstance(nested, BaseException) and nested not in chain:
            chain.append(nested)
        for arg in current.args[1:2]:
            if isinstance(arg, BaseException) and arg not in chain:
                chain.append(arg)
        current = current.__cause__ or current.__context__
    return chain


def _os_error_in_text(exc: BaseException) -> int | None:
    # urllib3 sometimes flattens the OS error into its message only.
    text = str(exc)
    for code, marker in (
        (errno.ENOENT, "No such file or directory"),
        (errno.EACCES, "Permission denied"),
        (errno.ECONNREFUSED, "Connection refused"),
    ):
        if marker in text:
            return code
    return None


def describe_error(exc: BaseException, host: str) -> str:
    """A readable reason for an exception raised while talking to the engine at `host`."""
    import docker.errors
    import requests.exceptions

    where = f"the Docker engine at {host}"
    socket_path = urlsplit(host).path if host.startswith("unix://") else None
    code: int | None = None
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.errno is not None:
            code = cause.errno
            break
    if code is None:
        for cause in _causes(exc):
            code = _os_error_in_text(cause)
            if code is not None:
                break
    if code == errno.ENOENT and socket_path:
        return f"cannot reach {where}: socket {socket_path} does not exist (engine not running?)"
    if code == errno.EACCES:
        return f"cannot reach {where}: permission denied (is opsmon in the docker group?)"
    if code == errno.ECONNREFUSED:
        return f"cannot reach {where}: connection refused (engine stopped?)"
    if isinstance(exc, docker.errors.APIError):
        status = exc.status_code
        explanation = (exc.explanation or "").strip()
        if status in (401, 403):
            return f"{where} refused the request ({status}: a socket proxy that forbids it?)"
        fallback = exc.response.reason if exc.response is not None else "error"
        return f"{where} answered {status}: {explanation or fallback}"
    for cause in _causes(exc):
        if isinstance(cause, requests.exceptions.Timeout | TimeoutError):
            return f"{where} did not answer within {REQUEST_TIMEOUT:.0f}s"
        if isinstance(cause, ConnectionResetError | requests.exceptions.ChunkedEncodingError):
            return f"connection to {where} was reset"
    return f"cannot reach {where}: {type(exc).__name__}"


@dataclass(frozen=True)
class Outage:
    """A time when the event stream was down (wall clock, UTC); `end` is None while it lasts."""

    start: datetime
    end: datetime | None = None


class EngineStatus:
    """What the event watcher knows about the engine, for checks that explain what they see."""

    def __init__(self) -> None:
        self.events_connected = False
        self.events_error: str | None = None
        self.events_error_since: datetime | None = None
        self.outages: deque[Outage] = deque(maxlen=_OUTAGES_KEPT)

    def went_down(self, at: datetime, reason: str) -> None:
        """Record the start of an outage (the stream ended or could not connect)."""
        self.events_connected = False
        self.events_error = reason
        if self.events_error_since is None:
            self.events_error_since = at
        if not self.outages or self.outages[-1].end is not None:
            self.outages.append(Outage(at))

    def came_back(self, at: datetime) -> None:
        """The stream is open again: close the current outage."""
        self.events_connected = True
        self.events_error = None
        self.events_error_since = None
        if self.outages and self.outages[-1].end is None:
            self.outages[-1] = Outage(self.outages[-1].start, at)

    def outage_around(self, moment: datetime, lead: float) -> Outage | None:
        """The outage that `moment` falls in, counting `lead` seconds before its start."""
        for outage in self.outages:
            starts = outage.start.timestamp() - lead
            ends = outage.end.timestamp() if outage.end else float("inf")
            if starts <= moment.timestamp() <= ends:
                return outage
        return None


class DockerAccess:
    """A docker-py client for one engine; every call runs in this object's worker threads."""

    def __init__(
        self,
        host: str,
        *,
        client_kwargs: Mapping[str, Any] | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.host = host
        self.status = EngineStatus()
        self._client_kwargs = dict(client_kwargs or {})
        self._timeout = timeout
        self._client: docker.APIClient | None = None
        self._lock = threading.Lock()
        # Our own small pool: a hung engine must not starve the loop's default executor.
        self._executor = ThreadPoolExecutor(_WORKERS, thread_name_prefix="docker-api")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], host: str | None = None) -> DockerAccess:
        """Access to the configured host, else `$DOCKER_HOST` (with its TLS settings)."""
        resolved, kwargs = cls.settings_from_environment(environ, host)
        return cls(resolved, client_kwargs=kwargs)

    @staticmethod
    def settings_from_environment(
        environ: Mapping[str, str], host: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """The host and client settings `from_environment` would use; raises (e.g. a
        DOCKER_CERT_PATH without its files) without opening anything."""
        import docker.utils

        if host:
            return host, {}
        kwargs: dict[str, Any] = dict(docker.utils.kwargs_from_env(environment=dict(environ)))
        return str(kwargs.pop("base_url", None) or DEFAULT_HOST), kwargs

    def new_client(self, timeout: float | None = None) -> docker.APIClient:
        """A fresh low-level client (blocking: asks the engine for its API version)."""
        import docker

        return docker.APIClient(
            base_url=self.host,
            version="auto",
            # docker-py types it as int, but hands it to requests, which takes any number.
            timeout=timeout if timeout is not None else self._timeout,  # type: ignore[arg-type]
            **self._client_kwargs,
        )

    def _shared(self) -> docker.APIClient:
        with self._lock:
            if self._client is None:
                self._client = self.new_client()
            return self._client

    def _forget_client(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    async def _call(self, work: Callable[[docker.APIClient], T]) -> T:
        import docker.errors
        import requests.exceptions

        def blocking() -> T:
            return work(self._shared())

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, blocking)
        except docker.errors.NotFound:
            raise
        except (
            docker.errors.DockerException,
            requests.exceptions.RequestException,
            OSError,
        ) as exc:
            if not isinstance(exc, docker.errors.APIError):
                # The engine may come back with another API version: negotiate again then.
                self._forget_client()
            raise DockerUnavailable(describe_error(exc, self.host)) from exc

    async def version(self) -> dict[str, object]:
        """`GET /version`: the engine's version and API version (also proves it answers)."""
        answer: dict[str, object] = await self._call(lambda c: c.version())
        return answer

    async def containers(self, filters: Mapping[str, object] | None = None) -> list[dict[str, Any]]:
        """`GET /containers/json?all=1`: every container (running or not) matching `filters`."""
        answer: list[dict[str, Any]] = await self._call(
            lambda c: c.containers(all=True, filters=dict(filters or {}))
        )
        return answer

    async def inspect(self, container: str) -> dict[str, Any] | None:
        """`GET /containers/{id}/json`, or None when there is no such container."""
        import docker.errors

        try:
            answer: dict[str, Any] = await self._call(lambda c: c.inspect_container(container))
        except docker.errors.NotFound:
            return None
        return answer

    async def log_tail(self, container: str, lines: int) -> str:
        """`GET /containers/{id}/logs`: the last `lines` lines of stdout and stderr."""
        import docker.errors

        try:
            raw: bytes = await self._call(
                lambda c: c.logs(container, stdout=True, stderr=True, tail=lines, timestamps=False)
            )
        except docker.errors.NotFound:
            return ""
        return raw.decode("utf-8", errors="replace")

    async def past_events(self, container: str, since: float, until: float) -> list[dict[str, Any]]:
        """`GET /events` of one container between two Unix times, as the engine sends them
        (it keeps a bounded history): what a restarted opsmon rebuilds its memory from."""

        def read(client: docker.APIClient) -> list[dict[str, Any]]:
            # The API takes "seconds.nanoseconds"; an `until` in the future would make the
            # engine hold the answer open until then (docker-py's stubs say int).
            stream = client.events(
                since=cast(int, f"{since:.9f}"),
                until=cast(int, f"{until:.9f}"),
                filters={"type": "container", "container": container},
                decode=True,
            )
            return [raw for raw in stream if isinstance(raw, dict)]

        return await self._call(read)

    async def aclose(self) -> None:
        """Close the client and let the worker threads finish."""
        self._forget_client()
        self._executor.shutdown(wait=False, cancel_futures=True)

"""The engine's event stream, read in its own thread and handed to the event loop.

The stream ends silently when the engine restarts or the socket goes away, so the reader
reconnects with backoff, asks for the events it may have missed (`since` the last one it saw)
and drops the duplicates that this replays (same time in nanoseconds, container and action).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.docker.access import DockerAccess, describe_error
from monitor.logs import get_logger

# The container actions Docker documents; anything else is counted as "other" (bounded labels).
KNOWN_ACTIONS = frozenset(
    {
        "attach",
        "commit",
        "copy",
        "create",
        "destroy",
        "detach",
        "die",
        "exec_create",
        "exec_detach",
        "exec_die",
        "exec_start",
        "export",
        "health_status",
        "kill",
        "oom",
        "pause",
        "prune",
        "rename",
        "resize",
        "restart",
        "start",
        "stop",
        "top",
        "unpause",
        "update",
    }
)


def metric_action(action: str) -> str:
    """The `action` label of `opsmon_docker_events_total`: a known action or `other`."""
    return action if action in KNOWN_ACTIONS else "other"


@dataclass(frozen=True)
class ContainerEvent:
    """One container event. `action` is the bare verb (`health_status`), `detail` what followed
    its colon (`healthy`); `attributes` are the container's labels plus name, image, signal..."""

    action: str
    id: str
    time_nano: int
    detail: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, str, str]:
        """What identifies an event when the stream replays it."""
        return (self.time_nano, self.id, f"{self.action}:{self.detail}")

    @property
    def name(self) -> str:
        """The container's name, without Docker's leading slash."""
        return self.attributes.get("name", "").lstrip("/")

    @property
    def seconds(self) -> float:
        """The event time as a Unix timestamp."""
        return self.time_nano / 1e9

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> ContainerEvent | None:
        """Parse one decoded event of the engine; None for anything but a container event."""
        if raw.get("Type", "container") != "container":
            return None
        full = str(raw.get("Action") or raw.get("status") or "")
        actor = raw.get("Actor") or {}
        container_id = str(actor.get("ID") or raw.get("id") or "")
        if not full or not container_id:
            return None
        action, _, detail = full.partition(":")
        time_nano = raw.get("timeNano")
        if not isinstance(time_nano, int):
            time_nano = int(raw.get("time", 0)) * 1_000_000_000
        attributes = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
        return cls(action.strip(), container_id, time_nano, detail.strip(), attributes)


class Deduplicator:
    """Remembers the keys of the last `size` events and says whether one was seen before."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._seen: OrderedDict[tuple[int, str, str], None] = OrderedDict()

    def is_new(self, key: tuple[int, str, str]) -> bool:
        """True the first time `key` comes, False for a replay."""
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnection attempts: `initial`, doubling, at most `maximum` seconds."""

    initial: float = 0.2
    maximum: float = 5.0

    def next(self, current: float) -> float:
        """The delay after `current`."""
        return min(self.maximum, current * 2)


class EventHandler:
    """What the stream calls on the event loop (each is called from the loop's thread)."""

    def __init__(
        self,
        on_event: Callable[[ContainerEvent], None],
        on_connected: Callable[[], None],
        on_disconnected: Callable[[str], None],
    ) -> None:
        self.on_event = on_event
        self.on_connected = on_connected
        self.on_disconnected = on_disconnected


class EventStream:
    """One subscription to the engine's container events, kept open by a dedicated thread."""

    def __init__(
        self,
        access: DockerAccess,
        handler: EventHandler,
        filters: Mapping[str, list[str]],
        backoff: Backoff | None = None,
    ) -> None:
        self._access = access
        self._handler = handler
        self._filters = dict(filters)
        self._backoff = backoff or Backoff()
        self._dedupe = Deduplicator()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_nano: int | None = None
        self._deliberate = False
        self.connections = 0
        self._log = get_logger("docker.events", host=access.host)

    @property
    def filters(self) -> dict[str, list[str]]:
        """The filters of the subscription."""
        return dict(self._filters)

    def start(self) -> None:
        """Start the reader thread; callbacks go to the running loop."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._read, name="docker-events", daemon=True)
        self._thread.start()

    def set_filters(self, filters: Mapping[str, list[str]]) -> None:
        """Subscribe with other filters (reconnects when they differ)."""
        if dict(filters) != self._filters:
            self._filters = dict(filters)
            self.reconnect()

    def reconnect(self) -> None:
        """Drop the current connection; the reader connects again and catches up."""
        with self._lock:
            stream = self._stream
            self._deliberate = stream is not None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    async def stop(self) -> None:
        """Stop reading and wait for the thread to end."""
        self._stopping.set()
        self.reconnect()
        thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join, 5.0)

    # --- the reader thread ------------------------------------------------------------------
    def _emit(self, callback: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(callback, *args)

    def _since(self) -> str | None:
        if self._last_nano is None:
            return None
        seconds, nanos = divmod(self._last_nano, 1_000_000_000)
        return f"{seconds}.{nanos:09d}"

    def _read(self) -> None:
        delay = self._backoff.initial
        while not self._stopping.is_set():
            client = None
            try:
                client = self._access.new_client()
                # `since` with nanoseconds ("secs.nanos") is what the API takes; the stubs say int.
                since: Any = self._since()
                stream = client.events(decode=True, filters=self._filters, since=since)
            except Exception as exc:
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close()
                if self._stopping.is_set():
                    break
                self._emit(self._handler.on_disconnected, describe_error(exc, self._access.host))
                self._stopping.wait(delay)
                delay = self._backoff.next(delay)
                continue
            with self._lock:
                self._stream = stream
            self.connections += 1
            delay = self._backoff.initial
            self._emit(self._handler.on_connected)
            reason = "the event stream ended (engine restarting or socket gone)"
            try:
                for raw in stream:
                    if self._stopping.is_set():
                        break
                    event = ContainerEvent.from_raw(raw)
                    if event is None or not self._dedupe.is_new(event.key):
                        continue
                    self._last_nano = max(self._last_nano or 0, event.time_nano)
                    self._emit(self._handler.on_event, event)
            except Exception as exc:
                reason = describe_error(exc, self._access.host)
            finally:
                with self._lock:
                    self._stream = None
                    deliberate, self._deliberate = self._deliberate, False
                with contextlib.suppress(Exception):
                    stream.close()
                with contextlib.suppress(Exception):
                    client.close()
            if self._stopping.is_set():
                break
            if not deliberate:
                self._emit(self._handler.on_disconnected, reason)
        self._log.debug("event_reader_stopped")

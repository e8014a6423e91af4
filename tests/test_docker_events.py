"""The engine's event stream: container events reach the loop, the subscription is filtered,
and after the connection drops the events missed meanwhile arrive, each exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from monitor.docker.access import DockerAccess
from monitor.docker.events import (
    Backoff,
    ContainerEvent,
    Deduplicator,
    EventHandler,
    EventStream,
    metric_action,
)
from tests.support.docker import MAIN_HOST, PROJECT_LABEL, ReadOnlyProxy, Stack, stack
from tests.support.waiting import async_wait_until


@dataclass
class Recorder:
    """What a stream handed to the loop."""

    events: list[ContainerEvent] = field(default_factory=list)
    connected: int = 0
    lost: list[str] = field(default_factory=list)

    def handler(self) -> EventHandler:
        def connected() -> None:
            self.connected += 1

        return EventHandler(self.events.append, connected, self.lost.append)

    def actions(self, container: str) -> list[str]:
        return [e.action for e in self.events if e.name == container]

    async def until(self, predicate: object, within: float = 15) -> None:
        async def check() -> bool:
            return bool(predicate())  # type: ignore[operator]

        await async_wait_until(check, timeout=within, interval=0.02)


@pytest.fixture
def compose() -> Iterator[Stack]:
    with stack() as made:
        yield made


@pytest.fixture
async def access() -> AsyncIterator[DockerAccess]:
    made = DockerAccess(MAIN_HOST)
    yield made
    await made.aclose()


@pytest.mark.docker
async def test_container_events_reach_the_loop_filtered_by_project(
    compose: Stack, access: DockerAccess
) -> None:
    """A subscription for one project delivers its containers' events (with the signal of a
    kill and the exit code of a death) and none of other projects."""
    recorder = Recorder()
    filters = {"type": ["container"], "label": [f"{PROJECT_LABEL}={compose.project}"]}
    stream = EventStream(access, recorder.handler(), filters)
    stream.start()
    try:
        await recorder.until(lambda: recorder.connected == 1)
        with stack() as other:
            other.run("noise", "sleep 300")
            compose.run("web", "sleep 300")
            name = f"{compose.project}-web-1"
            await recorder.until(lambda: "start" in recorder.actions(name))
            compose.client.api.kill(name)
            await recorder.until(lambda: "die" in recorder.actions(name))
        assert {e.name for e in recorder.events} == {name}
        kill = next(e for e in recorder.events if e.action == "kill")
        die = next(e for e in recorder.events if e.action == "die")
        assert kill.attributes["signal"] == "9" and die.attributes["exitCode"] == "137"
        assert die.attributes[PROJECT_LABEL] == compose.project
    finally:
        await stream.stop()


@pytest.mark.docker
async def test_events_missed_while_disconnected_arrive_once(compose: Stack) -> None:
    """When the connection drops (a socket proxy restarting), the reader reconnects with backoff,
    receives what happened meanwhile, and drops the events the engine replays."""
    proxy = ReadOnlyProxy(MAIN_HOST.removeprefix("unix://"))
    await proxy.start()
    access = DockerAccess(proxy.host)
    recorder = Recorder()
    filters = {"type": ["container"], "label": [f"{PROJECT_LABEL}={compose.project}"]}
    stream = EventStream(access, recorder.handler(), filters, Backoff(initial=0.05, maximum=0.2))
    stream.start()
    name = f"{compose.project}-web-1"
    try:
        await recorder.until(lambda: recorder.connected == 1)
        compose.run("web", "sleep 300")
        await recorder.until(lambda: "start" in recorder.actions(name))
        port = proxy.port
        await proxy.close()
        await recorder.until(lambda: recorder.lost)
        compose.client.api.kill(name)  # while nobody listens
        await asyncio.to_thread(compose.client.api.wait, name)
        await proxy.start(port)
        await recorder.until(lambda: "die" in recorder.actions(name))
        await recorder.until(lambda: recorder.connected >= 2)
    finally:
        await stream.stop()
        await proxy.close()
        await access.aclose()
    counts = Counter(recorder.actions(name))
    assert counts["start"] == 1 and counts["kill"] == 1 and counts["die"] == 1, counts
    assert len({e.key for e in recorder.events}) == len(recorder.events)
    assert "event stream ended" in recorder.lost[0]


@pytest.mark.docker
async def test_reconnect_on_request_replays_nothing(compose: Stack, access: DockerAccess) -> None:
    """Dropping the connection on purpose (new filters, a failed ping) loses and repeats
    nothing, and is not reported as an outage."""
    recorder = Recorder()
    filters = {"type": ["container"], "label": [f"{PROJECT_LABEL}={compose.project}"]}
    stream = EventStream(access, recorder.handler(), filters)
    stream.start()
    name = f"{compose.project}-web-1"
    try:
        await recorder.until(lambda: recorder.connected == 1)
        compose.run("web", "sleep 300")
        await recorder.until(lambda: "start" in recorder.actions(name))
        stream.reconnect()
        await recorder.until(lambda: recorder.connected == 2)
        compose.client.api.kill(name)
        await recorder.until(lambda: "die" in recorder.actions(name))
    finally:
        await stream.stop()
    assert Counter(recorder.actions(name))["start"] == 1
    assert recorder.lost == []


def test_unreachable_engine_is_reported_and_retried(tmp_path: object) -> None:
    """Without an engine the reader reports why, and keeps trying with backoff."""

    async def scenario() -> list[str]:
        access = DockerAccess(f"unix://{tmp_path}/none.sock")
        recorder = Recorder()
        stream = EventStream(access, recorder.handler(), {}, Backoff(0.01, 0.02))
        stream.start()
        try:
            await recorder.until(lambda: len(recorder.lost) >= 3, within=10)
        finally:
            await stream.stop()
            await access.aclose()
        return recorder.lost

    lost = asyncio.run(scenario())
    assert "none.sock does not exist" in lost[0]


def test_parsing_and_bounded_action_labels() -> None:
    """Events parse into action and detail; metric labels stay within Docker's action set."""
    raw = {
        "Type": "container",
        "Action": "health_status: unhealthy",
        "Actor": {"ID": "abc", "Attributes": {"name": "shop-web-1", "image": "x"}},
        "time": 1700000000,
        "timeNano": 1700000000123456789,
    }
    event = ContainerEvent.from_raw(raw)
    assert event is not None
    assert (event.action, event.detail, event.name) == ("health_status", "unhealthy", "shop-web-1")
    assert event.key == (1700000000123456789, "abc", "health_status:unhealthy")
    assert ContainerEvent.from_raw({**raw, "Type": "network"}) is None
    exec_event = ContainerEvent.from_raw({**raw, "Action": "exec_start: sh -c 'echo s3cret'"})
    assert exec_event is not None and metric_action(exec_event.action) == "exec_start"
    assert metric_action("something-new") == "other"


def test_deduplicator_forgets_oldest() -> None:
    """Replayed keys are dropped; memory stays bounded."""
    dedupe = Deduplicator(size=2)
    keys = [(1, "a", "start:"), (2, "a", "die:"), (3, "a", "start:")]
    assert [dedupe.is_new(k) for k in keys] == [True, True, True]
    assert not dedupe.is_new(keys[2])
    assert dedupe.is_new(keys[0])  # forgotten: only the last two are kept

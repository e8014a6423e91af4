"""Real Docker engines for the tests: Compose-labelled containers, a second dockerd that a test
may stop and restart, and a read-only socket proxy on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from monitor.config import load_config
from monitor.core.health import Transition
from monitor.daemon import Daemon
from monitor.settings import Settings
from tests.support.environment import free_port, missing
from tests.support.waiting import async_wait_until, wait_until

IMAGE = "local/busybox:1"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
MAIN_HOST = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(host: str = MAIN_HOST) -> docker.DockerClient:
    """A client of the engine at `host`, or the test is skipped (failed in CI) without one."""
    client = docker.DockerClient(base_url=host, version="auto", timeout=60)
    try:
        client.ping()
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        client.close()
        missing(f"the image {IMAGE}")
    except Exception:
        client.close()
        missing(f"a Docker engine at {host}")
    return client


def unique_project() -> str:
    """A Compose project name no other test run uses."""
    return f"opsmont{uuid.uuid4().hex[:10]}"


def nanoseconds(seconds: float) -> int:
    """Docker's durations are in nanoseconds."""
    return int(seconds * 1_000_000_000)


@dataclass
class Stack:
    """Containers that look like one Compose project's services; all removed by `remove_all`."""

    client: docker.DockerClient
    project: str = field(default_factory=unique_project)
    created: list[str] = field(default_factory=list)

    def run(
        self,
        service: str,
        command: str,
        *,
        labels: dict[str, str] | None = None,
        compose: bool = True,
        **options: Any,
    ) -> Container:
        """Start `sh -c command` as service `service` (host network, busybox image)."""
        all_labels = dict(labels or {})
        if compose:
            all_labels.update({PROJECT_LABEL: self.project, SERVICE_LABEL: service})
        name = options.pop("name", f"{self.project}-{service}-1")
        self.created.append(name)
        container: Container = self.client.containers.run(
            IMAGE,
            ["sh", "-c", command],
            name=name,
            detach=True,
            network_mode="host",
            labels=all_labels,
            **options,
        )
        return container

    def state(self, name: str) -> dict[str, Any]:
        """`docker inspect` .State of a container of this stack."""
        state: dict[str, Any] = self.client.api.inspect_container(name)["State"]
        return state

    def remove(self, name: str) -> None:
        """Remove one container (running or not)."""
        with contextlib.suppress(docker.errors.NotFound):
            self.client.api.remove_container(name, force=True)

    def remove_all(self) -> None:
        """Remove everything this stack created."""
        for name in self.created:
            self.remove(name)
        self.created.clear()


@contextlib.contextmanager
def stack(host: str = MAIN_HOST) -> Iterator[Stack]:
    """A Stack on the engine at `host`, cleaned up afterwards."""
    client = connect(host)
    made = Stack(client)
    try:
        yield made
    finally:
        made.remove_all()
        client.close()


class SecondEngine:
    """A dockerd of the test's own (data, exec root, pid file and socket in a temp folder), so
    stopping it disturbs nobody else. The busybox image is copied in from the main engine."""

    def __init__(self, main: docker.DockerClient) -> None:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            missing("dockerd")
        self._dockerd = dockerd
        self._driver = str(main.info().get("Driver") or "overlay2")
        self._main = main
        # Short: a unix socket path must stay under 108 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="opsmon-dk-"))
        self.host = f"unix://{self.dir / 'd.sock'}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log = open(self.dir / "dockerd.log", "ab")  # noqa: SIM115 - closed in close()

    def start(self) -> None:
        """Start the engine and wait until it answers."""
        self._process = subprocess.Popen(
            [
                self._dockerd,
                "--host",
                self.host,
                "--data-root",
                str(self.dir / "data"),
                "--exec-root",
                str(self.dir / "exec"),
                "--pidfile",
                str(self.dir / "dockerd.pid"),
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--shutdown-timeout=1",
                f"--storage-driver={self._driver}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

        def answers() -> bool:
            assert self._process is not None
            if self._process.poll() is not None:
                raise AssertionError(f"second dockerd exited: {self.log_tail()}")
            try:
                client = docker.DockerClient(base_url=self.host, version="auto", timeout=5)
            except docker.errors.DockerException:
                return False
            try:
                return bool(client.ping())
            except Exception:
                return False
            finally:
                client.close()

        wait_until(answers, timeout=60, interval=0.1)

    def stop(self) -> None:
        """Stop the engine (SIGTERM, as a service manager would) and wait until it exited."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def client(self) -> docker.DockerClient:
        """A client of this engine."""
        return docker.DockerClient(base_url=self.host, version="auto", timeout=60)

    def load_image(self) -> None:
        """Copy the busybox image from the main engine (`docker save | docker load`)."""
        data = b"".join(self._main.images.get(IMAGE).save(named=True))
        client = self.client()
        try:
            client.images.load(data)
        finally:
            client.close()

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the engine's log."""
        text = (self.dir / "dockerd.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Remove its containers, stop it, delete its folder."""
        if self._process is not None and self._process.poll() is None:
            client = self.client()
            try:
                for container in client.containers.list(all=True):
                    with contextlib.suppress(docker.errors.APIError):
                        container.remove(force=True)
            finally:
                client.close()
        self.stop()
        self._log.close()
        # dockerd leaves mounts behind (the default network namespace, sometimes the data root).
        self._unmount_all()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _unmount_all(self) -> None:
        prefix = f"{self.dir}/"
        with open("/proc/mounts") as mounts:
            points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
        for point in sorted(points, key=len, reverse=True):
            done = subprocess.run(["umount", point], capture_output=True, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)


@contextlib.contextmanager
def second_engine() -> Iterator[SecondEngine]:
    """A started SecondEngine with the busybox image, removed afterwards."""
    main = connect()
    engine = SecondEngine(main)
    try:
        engine.start()
        engine.load_image()
        yield engine
    finally:
        engine.close()
        main.close()


class ReadOnlyProxy:
    """A socket proxy on 127.0.0.1 in front of a unix socket that lets only GET/HEAD through,
    like the usual docker-socket-proxy setups; it records every request line it saw."""

    def __init__(self, socket_path: str) -> None:
        self._socket_path = socket_path
        self.requests: list[tuple[str, str]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def host(self) -> str:
        """The DOCKER_HOST value that reaches the proxy."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"tcp://127.0.0.1:{port}"

    async def start(self, port: int = 0) -> None:
        """Listen on loopback: a free port, or `port` again after `close`."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)

    @property
    def port(self) -> int:
        """The port listened on."""
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self._socket_path)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return

        async def down() -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await up_reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        pump = asyncio.create_task(down())
        buffer = b""
        try:
            while data := await reader.read(65536):
                buffer += data
                while b"\r\n\r\n" in buffer:
                    head, buffer = buffer.split(b"\r\n\r\n", 1)
                    method, target = [*head.split(b" ", 2), b"", b""][:2]
                    self.requests.append((method.decode(), target.decode()))
                    if method not in (b"GET", b"HEAD"):
                        writer.write(
                            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                            b"Connection: close\r\n\r\n"
                        )
                        await writer.drain()
                        return
                    up_writer.write(head + b"\r\n\r\n")
                    await up_writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            up_writer.close()
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
            writer.close()
            self._tasks.discard(task)


def wait_for_state(stack: Stack, name: str, status: str, timeout: float = 20) -> dict[str, Any]:
    """Wait until the container's .State.Status is `status`; return the state."""
    return wait_until(lambda: (s := stack.state(name))["Status"] == status and s, timeout=timeout)


@dataclass
class InProcess:
    """A Daemon running in the test's event loop, with every transition it emitted."""

    daemon: Daemon
    port: int
    transitions: list[Transition]

    def check(self, name: str) -> dict[str, Any]:
        """The check as `/api/status` shows it."""
        for check in self.daemon.status()["checks"]:
            if check["name"] == name:
                found: dict[str, Any] = check
                return found
        raise KeyError(name)

    def names(self) -> set[str]:
        """The names of every check the daemon runs."""
        return {c["name"] for c in self.daemon.status()["checks"]}

    def moves(self, name: str) -> list[tuple[str, str]]:
        """The (previous, current) states of every transition of check `name`."""
        return [(t.previous.value, t.current.value) for t in self.transitions if t.check == name]

    def metric(self, name: str, **labels: str) -> float | None:
        """The current value of one metric series."""
        return self.daemon.metrics.registry.get_sample_value(name, labels)

    async def wait(self, name: str, predicate: Any, within: float = 20) -> dict[str, Any]:
        """Wait until check `name` (as /api/status shows it) satisfies `predicate`."""

        async def probe() -> dict[str, Any] | None:
            try:
                check = self.check(name)
            except KeyError:
                return None
            return check if predicate(check) else None

        try:
            found = await async_wait_until(probe, timeout=within, interval=0.02)
        except AssertionError:
            current = self.check(name) if name in self.names() else None
            raise AssertionError(f"{name} never matched; now: {current}") from None
        assert found is not None
        return found


@contextlib.asynccontextmanager
async def inprocess_daemon(
    tmp_path: Path, text: str, environ: dict[str, str] | None = None
) -> AsyncIterator[InProcess]:
    """`opsmon run` on config `text`, inside this event loop; stopped cleanly afterwards."""
    path = tmp_path / "opsmon.yml"
    path.write_text(text)
    port = free_port()
    loaded = load_config(path, {**os.environ, **(environ or {})})
    daemon = Daemon(loaded, Settings(listen=f"127.0.0.1:{port}"))
    harness = InProcess(daemon, port, [])

    async def record(transition: Transition) -> None:
        harness.transitions.append(transition)

    daemon.listeners.append(record)
    task = asyncio.create_task(daemon.run())

    async def ready() -> bool:
        if task.done():
            task.result()
        return daemon.readiness()[0]

    try:
        await async_wait_until(ready, timeout=20)
        yield harness
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(task, 20) == 0

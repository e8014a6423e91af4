"""The daemon's HTTP endpoint under connection floods: half-open connections, slow request
heads and descriptor exhaustion leave /healthz answerable and the log short."""

from __future__ import annotations

import os
import resource
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

from tests.faults.conftest import CANARY, config_text
from tests.support.daemon_process import DaemonProcess
from tests.support.receiver import FlipTarget
from tests.support.waiting import wait_until

FLOOD = 1_100


@contextmanager
def half_open(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections that never send a byte (the test process may need more fds)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1_000), hard))
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            with suppress(BlockingIOError):
                sock.connect(("127.0.0.1", port))
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def healthz(daemon: DaemonProcess) -> int:
    """/healthz's status, with a client that gives up after 5 s (a container HEALTHCHECK)."""
    return httpx.get(daemon.base + "/healthz", timeout=5).status_code


def test_half_open_flood_leaves_healthz_answering(
    tmp_path: Path,
    target: FlipTarget,
    write_config: Callable[[str], Path],
    daemons: Callable[..., DaemonProcess],
) -> None:
    """1,100 connections that send nothing, against a daemon limited to 256 descriptors:
    /healthz still answers, checks keep passing, the daemon never runs out of descriptors
    and the log has no flood of lines."""
    daemon = daemons(write_config(config_text(target.url, tmp_path / "state")), nofile=256)
    daemon.wait_ready()
    with half_open(daemon.port, FLOOD):
        assert healthz(daemon) == 200
        first = daemon.status()["backend-health"]["last_run"]
        # The checks keep running and passing: the flood took no descriptor they needed.
        wait_until(lambda: daemon.status()["backend-health"]["last_run"] != first, timeout=10)
        assert daemon.status()["backend-health"]["state"] == "healthy"
    assert daemon.alive()
    log = daemon.log_text()
    assert daemon.events("http_accept_failed") == []  # never out of descriptors
    assert len(log.splitlines()) < 50 and CANARY not in log


def test_slow_request_head_is_cut_off(
    tmp_path: Path,
    target: FlipTarget,
    write_config: Callable[[str], Path],
    daemons: Callable[..., DaemonProcess],
) -> None:
    """A client that sends half a request head and stalls (slowloris) is disconnected by the
    header timeout instead of holding its connection forever."""
    daemon = daemons(write_config(config_text(target.url, tmp_path / "state")))
    daemon.wait_ready()
    with socket.create_connection(("127.0.0.1", daemon.port)) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: opsmon\r\nX-Slow: ")
        slow.settimeout(30)
        assert slow.recv(1024) == b""  # closed by the daemon, no answer to half a head
    assert healthz(daemon) == 200


def test_descriptor_exhaustion_is_logged_once_per_interval(
    tmp_path: Path,
    target: FlipTarget,
    write_config: Callable[[str], Path],
    daemons: Callable[..., DaemonProcess],
) -> None:
    """With its descriptor limit lowered to almost what it uses, a flood makes accept() fail
    with EMFILE: the failures are folded into a line per interval with a count, the daemon
    keeps running, and /healthz answers again once the flood ends."""
    daemon = daemons(write_config(config_text(target.url, tmp_path / "state", interval="1s")))
    daemon.wait_ready()
    in_use = len(os.listdir(f"/proc/{daemon.pid}/fd"))
    resource.prlimit(daemon.pid, resource.RLIMIT_NOFILE, (in_use + 4, in_use + 4))
    with half_open(daemon.port, 150):
        failures = wait_until(lambda: daemon.events("http_accept_failed"), timeout=20)
        assert "Too many open files" in failures[0]["error"]
        # A second report interval: the failures go on (one a second), the lines do not.
        wait_until(lambda: len(daemon.events("http_accept_failed")) >= 2, timeout=30)
    # asyncio retries accept once a second, so the rest of the queue drains in a while.
    wait_until(lambda: _answers(daemon), timeout=90, interval=0.5)
    lines = daemon.events("http_accept_failed")
    assert daemon.alive()
    assert 2 <= len(lines) <= 12
    assert lines[1]["count"] > 1
    assert lines[-1]["total"] == sum(line["count"] for line in lines)


def _answers(daemon: DaemonProcess) -> bool:
    try:
        return healthz(daemon) == 200
    except httpx.HTTPError:
        return False

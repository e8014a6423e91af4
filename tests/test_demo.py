"""`opsmon demo`: a newcomer sees a check go unhealthy and come back, on whatever ports are free."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.cli import OPSMON
from tests.support.environment import free_port, free_port_v6, ipv6_loopback
from tests.support.waiting import wait_until


@dataclass
class Demo:
    """A running `opsmon demo` and everything it printed so far."""

    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Everything printed so far."""
        return "".join(self.output)

    def banner(self) -> str:
        """The start banner, once it is complete."""
        return str(wait_until(lambda: re.search(r"opsmon demo\n.*Ctrl-C", self.text, re.S)).group())

    def curl_lines(self) -> list[str]:
        """The curl lines the banner tells the person to type."""
        return re.findall(r"^\s+(curl .*?)(?:\s+#.*)?$", self.banner(), re.M)

    def stop(self) -> int:
        """Ctrl-C; the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=15)


@contextlib.contextmanager
def demo(*args: str, env: dict[str, str] | None = None) -> Iterator[Demo]:
    """`opsmon demo ARGS` in the background (OPSMON_LISTEN unset unless given)."""
    environ = {
        k: v for k, v in os.environ.items() if k not in ("OPSMON_LISTEN", "OPSMON_STATE_DIR")
    }
    process = subprocess.Popen(
        [*OPSMON, "demo", *args],
        env={**environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Demo(process)
    reader = threading.Thread(
        target=lambda: running.output.extend(iter(process.stdout.readline, ""))
    )  # type: ignore[union-attr]
    reader.start()
    try:
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(5)


def run_curl(line: str) -> httpx.Response:
    """Do what a printed `curl [-s] [-X METHOD] URL` line does (with the same client as above)."""
    words = line.split()
    method = words[words.index("-X") + 1] if "-X" in words else "GET"
    return httpx.request(method, words[-1], timeout=5)


def backend_health(status_url: str) -> str:
    """The state of backend-health in the daemon's /api/status (`down` while it does not answer)."""
    try:
        checks = httpx.get(status_url, timeout=2).json()["checks"]
    except httpx.HTTPError:
        return "down"
    return str(next(c["state"] for c in checks if c["name"] == "backend-health"))


def state_folder(banner: str) -> Path:
    """The state folder the banner names."""
    return Path(re.search(r"state folder\s+(\S+)", banner).group(1))  # type: ignore[union-attr]


@contextlib.contextmanager
def occupied(host: str, port: int) -> Iterator[None]:
    """Keep `host:port` busy (if something else holds it already, it is busy anyway)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    # As the demo does: a port left in TIME_WAIT by an earlier test is free to listen on.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        with contextlib.suppress(OSError):
            sock.bind((host, port))
            sock.listen(1)
        yield
    finally:
        sock.close()


def test_demo_breaks_and_recovers() -> None:
    """The demo prints its URLs; breaking the sample database turns backend-health unhealthy
    and fixing it brings it back; Ctrl-C stops everything with exit 0 and removes its state."""
    port = free_port()
    opsmon = f"http://127.0.0.1:{port}"
    with demo(env={"OPSMON_LISTEN": f"127.0.0.1:{port}"}) as running:
        banner = running.banner()
        backend = re.search(r"sample backend\s+(http://\S+)/api/health", banner).group(1)  # type: ignore[union-attr]
        wait_until(lambda: backend_health(f"{opsmon}/api/status") == "healthy", timeout=15)
        assert httpx.post(f"{backend}/demo/break/database").status_code == 200
        wait_until(lambda: backend_health(f"{opsmon}/api/status") == "unhealthy", timeout=30)
        httpx.post(f"{backend}/demo/fix/database")
        wait_until(lambda: backend_health(f"{opsmon}/api/status") == "healthy", timeout=30)
        assert state_folder(banner).is_dir()
        code = running.stop()
    assert code == 0, running.text
    assert f"{opsmon}/api/status" in banner and "/demo/break/database" in banner
    assert not state_folder(banner).exists()


def test_demo_on_busy_default_ports_says_so_and_prints_working_curl_lines() -> None:
    """With 4000 and 9110 taken, the demo says loudly that both ports moved, and the curl lines
    it prints are the ones that reach this run: break, status and fix work as printed."""
    with occupied("127.0.0.1", 4000), occupied("127.0.0.1", 9110), demo() as running:
        banner = running.banner()
        assert "PORTS MOVED" in banner
        assert "port 4000 is taken, so the sample backend listens on 127.0.0.1:" in banner
        assert "port 9110 is taken, so opsmon listens on 127.0.0.1:" in banner
        assert "--backend-port PORT --listen HOST:PORT" in banner
        lines = running.curl_lines()
        break_line, status_line, fix_line = lines
        assert ":4000/" not in " ".join(lines) and ":9110/" not in " ".join(lines)
        status_url = status_line.split()[-1]
        wait_until(lambda: backend_health(status_url) == "healthy", timeout=15)
        assert run_curl(break_line).json() == {"broken": ["database"]}
        wait_until(lambda: backend_health(status_url) == "unhealthy", timeout=30)
        assert run_curl(fix_line).json() == {"broken": []}
        wait_until(lambda: backend_health(status_url) == "healthy", timeout=30)
        assert running.stop() == 0, running.text
    assert not state_folder(banner).exists()


def test_demo_uses_the_ports_it_is_given() -> None:
    """`--backend-port` and `--listen` put the demo exactly there, with no moved-ports note."""
    backend_port, listen_port = free_port(), free_port()
    with demo("--backend-port", str(backend_port), "--listen", f"127.0.0.1:{listen_port}") as run:
        banner = run.banner()
        assert "PORTS MOVED" not in banner
        assert f"curl -X POST http://127.0.0.1:{backend_port}/demo/break/database" in banner
        assert f"curl -s http://127.0.0.1:{listen_port}/api/status" in banner
        status = f"http://127.0.0.1:{listen_port}/api/status"
        wait_until(lambda: backend_health(status) == "healthy", timeout=15)
        assert run.stop() == 0, run.text


def test_demo_refuses_a_chosen_port_that_is_busy() -> None:
    """A port the person chose is not silently replaced: exit 2, naming the address and option."""
    port = free_port()
    with occupied("127.0.0.1", port):
        with demo("--listen", f"127.0.0.1:{port}") as listen_busy:
            assert listen_busy.process.wait(timeout=30) == 2
        with demo("--backend-port", str(port)) as backend_busy:
            assert backend_busy.process.wait(timeout=30) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in listen_busy.text
    assert "choose another with --listen" in listen_busy.text
    assert f"cannot listen on 127.0.0.1:{port}" in backend_busy.text
    assert "choose another with --backend-port" in backend_busy.text


def test_demo_on_ipv6_loopback() -> None:
    """`--listen [::1]:PORT` runs the sample backend and opsmon on ::1 and prints bracketed URLs
    that answer over IPv6."""
    ipv6_loopback()
    backend_port, listen_port = free_port_v6(), free_port_v6()
    with demo("--backend-port", str(backend_port), "--listen", f"[::1]:{listen_port}") as run:
        banner = run.banner()
        assert f"curl -X POST http://[::1]:{backend_port}/demo/break/database" in banner
        status = f"http://[::1]:{listen_port}/api/status"
        assert f"curl -s {status}" in banner
        wait_until(lambda: backend_health(status) == "healthy", timeout=15)
        assert run.stop() == 0, run.text


def test_demo_explains_a_malformed_listen_address() -> None:
    """`--listen ::1:9110` (no brackets) exits 2 saying how to write it; nothing starts."""
    with demo("--listen", "::1:9110") as run:
        assert run.process.wait(timeout=30) == 2
    assert "--listen: an IPv6 host goes in brackets, as in [::1]:9110" in run.text
    assert "opsmon demo\n" not in run.text

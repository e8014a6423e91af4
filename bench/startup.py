"""Start-up cost of the command line and the idle footprint of the daemon.

    .venv/bin/python bench/startup.py              # 7 runs each
    .venv/bin/python bench/startup.py --runs 15

Prints, for `opsmon --help`, `opsmon config validate` (a config with three HTTP checks),
`opsmon runbooks list` (no Markdown parser) and `runbooks show` (markdown_it), the median
wall time and the median peak RSS of the process over `--runs` runs (rusage of each
child, from os.wait4), and the RSS of `opsmon run` with the same three HTTP checks against a
local server on 127.0.0.1, read from /proc once the daemon is ready and has run a few rounds.
Targets (issue 11): `--help` < 0.25 s, idle daemon < 60 MB RSS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SETTLE_SECONDS = 3.0


def opsmon_command() -> list[str]:
    """The installed `opsmon` script beside this interpreter, else `python -m monitor`."""
    script = Path(sys.executable).with_name("opsmon")
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor"]


def run_measured(argv: list[str]) -> tuple[float, float]:
    """Run `argv` to completion; its wall time in seconds and peak RSS in MB."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, _status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = 0
    return elapsed, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_config(folder: Path, target_port: int, listen_port: int) -> Path:
    """A config with three HTTP checks against the local target."""
    checks = "".join(
        f"  - {{name: web-{i}, type: http, url: 'http://127.0.0.1:{target_port}/{i}',"
        " conditions: ['[STATUS] == 200']}\n"
        for i in range(3)
    )
    path = folder / "opsmon.yml"
    path.write_text(
        f"listen: 127.0.0.1:{listen_port}\nstate_dir: {folder / 'state'}\n"
        "defaults: {interval: 2s, timeout: 1s}\n"
        f"checks:\n{checks}"
    )
    return path


def rss_mb(pid: int) -> float:
    """The resident set size of `pid` in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def idle_daemon_rss(config: Path, listen_port: int) -> float:
    """Start `opsmon run`, wait until /readyz answers 200 and a few rounds ran; its RSS in MB."""
    env = {**os.environ, "OPSMON_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [*opsmon_command(), "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"opsmon run exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{listen_port}/readyz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("opsmon run did not get ready within 30 s") from None
                time.sleep(0.05)
        time.sleep(SETTLE_SECONDS)
        return rss_mb(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per command (median)")
    args = parser.parse_args()
    target = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    folder = Path(tempfile.mkdtemp(prefix="opsmon-bench-"))
    try:
        listen_port = free_port()
        config = write_config(folder, target.server_address[1], listen_port)
        commands = {
            "opsmon --help": [*opsmon_command(), "--help"],
            "opsmon config validate": [
                *opsmon_command(),
                "config",
                "validate",
                "--config",
                str(config),
            ],
            "opsmon runbooks list": [*opsmon_command(), "runbooks", "list"],
            "opsmon runbooks show": [*opsmon_command(), "runbooks", "show", "container-down"],
        }
        for label, argv in commands.items():
            run_measured(argv)  # warm the page cache and the bytecode cache
            samples = [run_measured(argv) for _ in range(args.runs)]
            wall = statistics.median(s[0] for s in samples)
            peak = statistics.median(s[1] for s in samples)
            print(
                f"{label:<24} wall {wall:.3f} s   peak RSS {peak:.1f} MB   (median of {args.runs})"
            )
        rss = idle_daemon_rss(config, listen_port)
        print(f"{'opsmon run (3 http)':<24} idle RSS {rss:.1f} MB (ready + {SETTLE_SECONDS:.0f} s)")
    finally:
        target.shutdown()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Scale benchmark: N HTTP targets checked every I seconds by a real `opsmon run`, then the same
targets probed through Debian's prometheus-blackbox-exporter at the same rate.

    .venv/bin/python bench/scale.py                      # 2,000 targets every 10 s, 60 s window
    .venv/bin/python bench/scale.py --targets 200 --interval 5 --window 30 --skip-blackbox

What "a target" is: a distinct URL (`/t/<i>/api/health`) answering the reference backend's health
JSON. The URLs are spread over a handful of listening ports (`--ports`, default 10) served by one
separate asyncio process (HTTP/1.1 with keep-alive), so connection pooling behaves as it would
against a few services with many endpoints. All traffic stays on 127.0.0.1.

What is measured, over a fixed window that starts once the daemon is ready and one interval of
steady state has passed:
- achieved vs scheduled checks: the increase of `opsmon_check_runs_total` against N * window / I;
- scheduling lag p50/p99: from the `opsmon_scheduler_lag_seconds` buckets (scheduled start ->
  actual start inside the daemon, interpolated like `histogram_quantile`), plus the exact share of
  runs that started within 100 ms (a bucket edge), plus a client-independent figure: the lateness of
  each request's arrival at the target server against that target's own fixed grid
  (arrival - k * I - earliest such offset), which is measured the same way for both tools;
- CPU seconds per 1,000 checks: utime + stime deltas from /proc/<pid>/stat over the window;
- peak RSS: VmHWM from /proc/<pid>/status.
The daemon's /metrics is scraped every `--scrape-every` seconds (default: the check interval) during
the window and that cost is included: results must reach Prometheus somehow, just as every
blackbox probe answer reaches its caller.

The blackbox phase runs `prometheus-blackbox-exporter` with its own config (an `http_2xx`
module that wants status 200 and `"status":"ok"` in the body, like the opsmon conditions) on a
free loopback port. A small asyncio driver calls `/probe?target=...&module=http_2xx` for every
target on the same schedule (same phase offsets). The exporter's CPU per 1,000 probes is
reported, and separately the driver's own CPU, since the exporter needs a scheduler (usually
Prometheus) to do anything. The ratio printed is opsmon CPU per 1,000 checks / exporter CPU per
1,000 probes, and also against exporter + driver.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.scheduler import phase_offset  # noqa: E402 - the daemon's own spreading

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HEALTH_PATH = "/t/{index}/api/health"
BLACKBOX = "prometheus-blackbox-exporter"

# --- the target server (a separate process) ----------------------------------------------------


class _TargetProtocol(asyncio.Protocol):
    """A minimal HTTP/1.1 server: keep-alive, GET only, one JSON body for every health path."""

    def __init__(self, server: _TargetServer) -> None:
        self._server = server
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
            close = b"connection: close" in head.lower()
            line = head.split(b"\r\n", 1)[0]
            parts = line.split(b" ")
            path = parts[1].decode() if len(parts) > 1 else "/"
            assert self._transport is not None
            self._transport.write(self._server.answer(path, close))
            if close:
                self._transport.close()
                return


class _TargetServer:
    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}
        self._body = b""
        self._body_second = -1

    def _health_body(self) -> bytes:
        second = int(time.time())
        if second != self._body_second:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
            self._body = json.dumps(
                {
                    "status": "ok",
                    "timestamp": stamp,
                    "services": {"database": "ok", "mastra": "ok"},
                },
                separators=(",", ":"),
            ).encode()
            self._body_second = second
        return self._body

    def answer(self, path: str, close: bool) -> bytes:
        now = time.monotonic()
        if path.startswith("/t/"):
            self.arrivals.setdefault(path, []).append(now)
            body, status = self._health_body(), b"200 OK"
        elif path.startswith("/__arrivals"):
            body, status = json.dumps(self.arrivals).encode(), b"200 OK"
        else:
            body, status = b'{"error":"not found"}', b"404 Not Found"
        connection = b"close" if close else b"keep-alive"
        return (
            b"HTTP/1.1 "
            + status
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: "
            + connection
            + b"\r\n\r\n"
            + body
        )


async def _serve(port_count: int) -> None:
    loop = asyncio.get_running_loop()
    state = _TargetServer()
    servers = [
        await loop.create_server(lambda: _TargetProtocol(state), "127.0.0.1", 0, backlog=1024)
        for _ in range(port_count)
    ]
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    print(json.dumps({"ports": ports}), flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


# --- process measurements ------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """`histogram_quantile` on (upper bound, cumulative count) pairs, +Inf last."""
    total = buckets[-1][1]
    if total <= 0:
        return float("nan")
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def grid_lateness(arrivals: dict[str, list[float]], interval: float, start: float, end: float):
    """Per target, each arrival's lateness against that target's own grid (k * interval)."""
    late: list[float] = []
    for times in arrivals.values():
        inside = [t for t in times if start <= t < end]
        if len(inside) < 2:
            continue
        first = inside[0]
        offsets = [t - round((t - first) / interval) * interval for t in inside]
        best = min(offsets)
        late.extend(offset - best for offset in offsets)
    return late


def count_between(arrivals: dict[str, list[float]], start: float, end: float) -> int:
    return sum(1 for times in arrivals.values() for t in times if start <= t < end)


# --- /metrics parsing ------------------------------------------------------------------------


@dataclass
class Scrape:
    runs: dict[str, float] = field(default_factory=dict)  # result -> total
    lag_buckets: list[tuple[float, float]] = field(default_factory=list)
    lag_count: float = 0.0
    lag_sum: float = 0.0


def _label(line: str, name: str) -> str:
    start = line.index(f'{name}="') + len(name) + 2
    return line[start : line.index('"', start)]


def parse_metrics(text: str) -> Scrape:
    scrape = Scrape()
    for line in text.splitlines():
        if line.startswith("opsmon_check_runs_total{"):
            result = _label(line, "result")
            scrape.runs[result] = scrape.runs.get(result, 0.0) + float(line.rsplit(" ", 1)[1])
        elif line.startswith("opsmon_scheduler_lag_seconds_bucket{"):
            bound = _label(line, "le")
            scrape.lag_buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
        elif line.startswith("opsmon_scheduler_lag_seconds_count"):
            scrape.lag_count = float(line.rsplit(" ", 1)[1])
        elif line.startswith("opsmon_scheduler_lag_seconds_sum"):
            scrape.lag_sum = float(line.rsplit(" ", 1)[1])
    return scrape


# --- shared bits -----------------------------------------------------------------------------


@dataclass
class Targets:
    process: subprocess.Popen[str]
    ports: list[int]
    count: int

    def url(self, index: int) -> str:
        port = self.ports[index % len(self.ports)]
        return f"http://127.0.0.1:{port}" + HEALTH_PATH.format(index=index)

    def name(self, index: int) -> str:
        return f"t-{index:05d}"

    def arrivals(self) -> dict[str, list[float]]:
        response = httpx.get(f"http://127.0.0.1:{self.ports[0]}/__arrivals", timeout=30)
        data: dict[str, list[float]] = response.json()
        return data


def start_targets(count: int, ports: int) -> Targets:
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", str(ports)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise SystemExit("the target server did not start")
    return Targets(process, json.loads(line)["ports"], count)


def stop(process: subprocess.Popen[Any], timeout: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(url: str, deadline: float, process: subprocess.Popen[Any], what: str) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited early with code {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not answer {url} in time")


def sleep_until(moment: float) -> None:
    while (left := moment - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))


@dataclass
class Result:
    name: str
    scheduled: float
    achieved: float
    succeeded: float
    cpu: float
    rss_mb: float
    lag_p50: float
    lag_p99: float
    grid_p50: float
    grid_p99: float
    served: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu / self.achieved * 1000 if self.achieved else float("nan")


# --- phase 1: opsmon -------------------------------------------------------------------------


def opsmon_command() -> list[str]:
    script = Path(sys.executable).with_name("opsmon")
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor"]


def write_opsmon_config(directory: Path, targets: Targets, interval: float, port: int) -> Path:
    timeout = min(5.0, interval)
    lines = [
        f"listen: 127.0.0.1:{port}",
        f"state_dir: {directory / 'state'}",
        f"defaults: {{interval: {interval}s, timeout: {timeout}s}}",
        "checks:",
    ]
    for index in range(targets.count):
        lines += [
            f"  - name: {targets.name(index)}",
            "    type: http",
            f"    url: {targets.url(index)}",
            "    service: bench",
            "    conditions:",
            '      - "[STATUS] == 200"',
            '      - "[BODY].status == ok"',
        ]
    path = directory / "opsmon.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_opsmon(args: argparse.Namespace, targets: Targets, workdir: Path) -> Result:
    port = free_port()
    config = write_opsmon_config(workdir, targets, args.interval, port)
    log_path = workdir / "opsmon.log"
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*opsmon_command(), "run", "--config", str(config)],
            env={**os.environ, "OPSMON_LOG_LEVEL": "INFO", "OPSMON_LISTEN": f"127.0.0.1:{port}"},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    try:
        wait_for(f"{base}/readyz", started + 120, process, "opsmon run")
        ready_after = time.monotonic() - started
        print(f"opsmon: ready after {ready_after:.1f} s (first round of {targets.count} checks)")
        sleep_until(time.monotonic() + args.interval)  # one interval of steady state
        client = httpx.Client(timeout=30)

        def scrape() -> Scrape:
            return parse_metrics(client.get(f"{base}/metrics").text)

        cpu_start = cpu_seconds(process.pid)
        t0 = time.monotonic()
        first = scrape()
        scrape_every = args.scrape_every or args.interval
        next_scrape = t0 + scrape_every
        end = t0 + args.window
        while next_scrape < end - 0.5:
            sleep_until(next_scrape)
            scrape()
            next_scrape += scrape_every
        sleep_until(end)
        last = scrape()
        cpu = cpu_seconds(process.pid) - cpu_start
        t1 = time.monotonic()
        rss = peak_rss_mb(process.pid)
        client.close()
    finally:
        stop(process)
    runs = {k: last.runs.get(k, 0.0) - first.runs.get(k, 0.0) for k in ("success", "failure")}
    lag = [
        (bound, count - before)
        for (bound, count), (_, before) in zip(last.lag_buckets, first.lag_buckets, strict=True)
    ]
    within_100ms = next((count for bound, count in lag if bound == 0.1), float("nan"))
    arrivals = targets.arrivals()
    late = grid_lateness(arrivals, args.interval, t0, t1)
    achieved = runs["success"] + runs["failure"]
    if args.keep:
        (workdir / "opsmon-arrivals.json").write_text(json.dumps({"t0": t0, "t1": t1, **arrivals}))
    return Result(
        name="opsmon",
        scheduled=targets.count * args.window / args.interval,
        achieved=achieved,
        succeeded=runs["success"],
        cpu=cpu,
        rss_mb=rss,
        lag_p50=bucket_quantile(lag, 0.5),
        lag_p99=bucket_quantile(lag, 0.99),
        grid_p50=percentile(late, 0.5),
        grid_p99=percentile(late, 0.99),
        served=count_between(arrivals, t0, t1),
        extra={
            "ready_after_s": ready_after,
            "lag_within_100ms": within_100ms / lag[-1][1] if lag and lag[-1][1] else float("nan"),
            "lag_mean": (last.lag_sum - first.lag_sum) / max(1.0, last.lag_count - first.lag_count),
            "log": log_path,
        },
    )


# --- phase 2: blackbox exporter --------------------------------------------------------------

BLACKBOX_CONFIG = """\
modules:
  http_2xx:
    prober: http
    timeout: {timeout}s
    http:
      valid_status_codes: [200]
      fail_if_body_not_matches_regexp: ['"status"\\s*:\\s*"ok"']
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""


class ProbeClient:
    """Keep-alive HTTP/1.1 connections to the exporter (Content-Length and chunked bodies)."""

    def __init__(self, port: int, timeout: float) -> None:
        self._port = port
        self._timeout = timeout
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def probe(self, target: str) -> bool:
        if self._idle:
            reader, writer = self._idle.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self._port)
        request = (
            f"GET /probe?module=http_2xx&target={target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"X-Prometheus-Scrape-Timeout-Seconds: {self._timeout}\r\n\r\n"
        ).encode()
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lower = head.lower()
            if b"transfer-encoding: chunked" in lower:
                parts = []
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    chunk = await reader.readexactly(size + 2)
                    if size == 0:
                        break
                    parts.append(chunk[:-2])
                body = b"".join(parts)
            else:
                start = lower.index(b"content-length:") + len(b"content-length:")
                length = int(lower[start : lower.index(b"\r\n", start)])
                body = await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            writer.close()
            return False
        self._idle.append((reader, writer))
        return b"\nprobe_success 1" in body

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()


async def drive(
    targets: Targets, args: argparse.Namespace, port: int, blackbox_pid: int
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    client = ProbeClient(port, min(5.0, args.interval))
    interval = args.interval
    begin = loop.time() + 0.5
    window_start = begin + interval  # one interval of steady state first
    window_end = window_start + args.window
    lags: list[float] = []
    outcomes = {"success": 0, "failure": 0}
    marks: dict[str, float] = {}

    async def mark_window() -> None:
        await asyncio.sleep(window_start - loop.time())
        marks["cpu0"], marks["self0"] = cpu_seconds(blackbox_pid), time.process_time()
        marks["t0"] = time.monotonic()
        await asyncio.sleep(window_end - loop.time())
        marks["cpu1"], marks["self1"] = cpu_seconds(blackbox_pid), time.process_time()
        marks["t1"] = time.monotonic()

    async def target_loop(index: int) -> None:
        url = targets.url(index)
        due = begin + phase_offset(targets.name(index), interval)
        while due < window_end:
            await asyncio.sleep(due - loop.time())
            now = loop.time()
            ok = await client.probe(url)
            if window_start <= due < window_end:
                lags.append(now - due)
                outcomes["success" if ok else "failure"] += 1
            due += interval

    await asyncio.gather(mark_window(), *(target_loop(i) for i in range(targets.count)))
    client.close()
    return {"lags": lags, "outcomes": outcomes, **marks}


def run_blackbox(args: argparse.Namespace, targets: Targets, workdir: Path) -> Result:
    binary = shutil.which(BLACKBOX)
    if binary is None:
        raise SystemExit(f"{BLACKBOX} is not installed (apt-get install {BLACKBOX})")
    config = workdir / "blackbox.yml"
    config.write_text(BLACKBOX_CONFIG.format(timeout=min(5.0, args.interval)))
    port = free_port()
    with (workdir / "blackbox.log").open("w") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(f"http://127.0.0.1:{port}/-/healthy", time.monotonic() + 30, process, BLACKBOX)
        data = asyncio.run(drive(targets, args, port, process.pid))
        rss = peak_rss_mb(process.pid)
    finally:
        stop(process)
    outcomes = data["outcomes"]
    arrivals = targets.arrivals()
    late = grid_lateness(arrivals, args.interval, data["t0"], data["t1"])
    driver_cpu = data["self1"] - data["self0"]
    achieved = outcomes["success"] + outcomes["failure"]
    return Result(
        name="blackbox",
        scheduled=targets.count * args.window / args.interval,
        achieved=achieved,
        succeeded=outcomes["success"],
        cpu=data["cpu1"] - data["cpu0"],
        rss_mb=rss,
        lag_p50=percentile(data["lags"], 0.5),
        lag_p99=percentile(data["lags"], 0.99),
        grid_p50=percentile(late, 0.5),
        grid_p99=percentile(late, 0.99),
        served=count_between(arrivals, data["t0"], data["t1"]),
        extra={
            "driver_cpu": driver_cpu,
            "driver_per_1000": driver_cpu / achieved * 1000 if achieved else float("nan"),
        },
    )


# --- report ----------------------------------------------------------------------------------


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def report(result: Result) -> Iterable[str]:
    share = result.achieved / result.scheduled * 100 if result.scheduled else float("nan")
    yield f"[{result.name}]"
    yield f"  checks achieved / scheduled : {result.achieved:.0f} / {result.scheduled:.0f}"
    yield f"                                ({share:.2f} %, {result.succeeded:.0f} succeeded)"
    yield f"  requests seen by targets    : {result.served}"
    yield f"  scheduling lag p50 / p99    : {ms(result.lag_p50)} / {ms(result.lag_p99)}"
    if "lag_within_100ms" in result.extra:
        yield f"  runs started within 100 ms  : {result.extra['lag_within_100ms'] * 100:.2f} %"
    yield f"  arrival lateness p50 / p99  : {ms(result.grid_p50)} / {ms(result.grid_p99)}"
    yield f"  CPU in window               : {result.cpu:.2f} s"
    yield f"  CPU s per 1,000 checks      : {result.cpu_per_1000:.3f}"
    if "driver_cpu" in result.extra:
        yield f"  driver CPU in window        : {result.extra['driver_cpu']:.2f} s"
        yield f"  driver CPU s per 1,000      : {result.extra['driver_per_1000']:.3f}"
    yield f"  peak RSS (VmHWM)            : {result.rss_mb:.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=2000, help="number of target URLs")
    parser.add_argument("--interval", type=float, default=10.0, help="check interval, seconds")
    parser.add_argument("--window", type=float, default=60.0, help="measured window, seconds")
    parser.add_argument("--ports", type=int, default=10, help="listening ports for the targets")
    parser.add_argument(
        "--scrape-every",
        type=float,
        default=0.0,
        help="scrape the daemon's /metrics this often during the window (default: interval)",
    )
    parser.add_argument("--skip-blackbox", action="store_true", help="measure opsmon only")
    parser.add_argument("--skip-opsmon", action="store_true", help="measure the exporter only")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0
    if args.targets < 1 or args.interval <= 0 or args.window < args.interval:
        parser.error("need --targets >= 1, --interval > 0 and --window >= --interval")

    workdir = Path(tempfile.mkdtemp(prefix="opsmon-bench-"))
    targets = start_targets(args.targets, args.ports)
    print(
        f"{args.targets} targets on {len(targets.ports)} ports, every {args.interval:g} s,"
        f" window {args.window:g} s; load average {os.getloadavg()[0]:.2f}"
        f" on {os.cpu_count()} CPUs"
    )
    try:
        opsmon = None if args.skip_opsmon else run_opsmon(args, targets, workdir)
        for line in report(opsmon) if opsmon else ():
            print(line, flush=True)
        blackbox = None
        if not args.skip_blackbox:
            blackbox = run_blackbox(args, targets, workdir)
            for line in report(blackbox):
                print(line, flush=True)
    finally:
        stop(targets.process)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")
    if opsmon is None:
        return 0
    share = opsmon.achieved / opsmon.scheduled
    verdicts = [
        ("achieved >= 99 %", share >= 0.99),
        ("p99 lag < 100 ms", opsmon.lag_p99 < 0.1),
        ("peak RSS < 150 MiB", opsmon.rss_mb < 150),
    ]
    if blackbox is not None:
        ratio = opsmon.cpu_per_1000 / blackbox.cpu_per_1000
        with_driver = opsmon.cpu_per_1000 / (
            blackbox.cpu_per_1000 + blackbox.extra["driver_per_1000"]
        )
        print(f"ratio opsmon / blackbox CPU per 1,000: {ratio:.2f}")
        print(f"ratio opsmon / (blackbox + driver)  : {with_driver:.2f}")
        verdicts.append(("ratio <= 1.0", ratio <= 1.0))
    for what, ok in verdicts:
        print(f"  {'PASS' if ok else 'MISS'}  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

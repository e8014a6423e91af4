"""Soak: a real `opsmon run` with N checks (default 1,000) every I seconds (default 10) for a
long time (default 30 minutes), with faults injected on a schedule, and the figures that
show whether it leaks: RSS, open descriptors, SQLite size and scheduler lag p99, at the
start of the run (after a warm-up) and at its end.

    .venv/bin/python bench/soak.py                   # 1,000 checks, 10 s, 30 minutes
    .venv/bin/python bench/soak.py --minutes 12 --checks 1000

The fault cycle (`--cycle`, default 120 s; times below for the default), repeated:
    0-30 s   a tenth of the targets answer 503 (incidents open, then resolve)
    30-50 s  the webhook receiver answers 500 (the outbox retries)
    50-70 s  the receiver hangs (delivery times out)
    70-90 s  PostgreSQL is stopped, then started again (the postgres checks fail and recover)
    90-102 s the Docker engine is stopped, then started again (the container checks and the
             `docker` self-check go UNKNOWN/unhealthy, the event stream reconnects)
    102 s-   quiet
The engine restarted is one of the bench's own (tests/support/docker.py `second_engine`, its
own data root and socket, three busybox containers with `restart: always`), so the engine
other work on this machine uses is never touched.

Goal: RSS growth < 5 %, no descriptor growth, lag p99 steady. Targets: bench/scale.py's
target server (one asyncio process, a few ports), extended with a switch that fails a share
of the targets. The receiver is tests/support/receiver.py; PostgreSQL is a cluster of the
bench's own (tests/support/postgres.py). All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import scale  # noqa: E402 - the target server and the measurements of the scale bench

from tests.support import docker as dk  # noqa: E402
from tests.support import postgres as pg  # noqa: E402
from tests.support.receiver import Answer, Receiver  # noqa: E402

FAILING_SHARE = 10  # every tenth target fails during the target fault
ENGINE_CONTAINERS = 3  # watched on the bench's own engine, which is restarted every cycle


# --- the target server with a failure switch ---------------------------------------------------


class _SwitchableTargets(scale._TargetServer):
    """scale's target server; `/__fail` makes every tenth target answer 503, `/__ok` heals."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False

    def answer(self, path: str, close: bool) -> bytes:
        if path.startswith("/__fail") or path.startswith("/__ok"):
            self.failing = path.startswith("/__fail")
            return b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        if path.startswith("/t/"):
            # Keep no arrival history: a soak must not measure its own target's growth.
            index = int(path.split("/")[2])
            if self.failing and index % FAILING_SHARE == 0:
                body = b'{"status":"error"}'
                return (
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
            body = self._health_body()
            return (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
        return super().answer(path, close)


async def _serve(port_count: int) -> None:
    loop = asyncio.get_running_loop()
    state = _SwitchableTargets()
    servers = [
        await loop.create_server(
            lambda: scale._TargetProtocol(state),  # type: ignore[arg-type]
            "127.0.0.1",
            0,
            backlog=1024,
        )
        for _ in range(port_count)
    ]
    print(json.dumps({"ports": [s.sockets[0].getsockname()[1] for s in servers]}), flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


def start_targets(count: int, ports: int) -> scale.Targets:
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", str(ports)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise SystemExit("the target server did not start")
    return scale.Targets(process, json.loads(line)["ports"], count)


# --- measurements ------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """VmRSS of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_kinds(pid: int, names: dict[str, str]) -> str:
    """What the open descriptors are: sockets by peer port (ss), and other kinds."""
    kinds: dict[str, int] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":", 1)[0] if ":" in target else "file"
        kinds[kind] = kinds.get(kind, 0) + 1
    peers: dict[str, int] = {}
    listing = subprocess.run(["ss", "-tanpH"], capture_output=True, text=True, check=False).stdout
    for line in listing.splitlines():
        if f"pid={pid}," in line:
            fields = line.split()
            state, peer = fields[0], fields[4].rsplit(":", 1)[-1]
            key = f"{state}->{names.get(peer, peer)}"
            peers[key] = peers.get(key, 0) + 1
    return f"{kinds} tcp {peers}"


def sqlite_bytes(state_dir: Path) -> int:
    return sum(p.stat().st_size for p in state_dir.glob("opsmon.db*") if p.is_file())


@dataclass
class Sample:
    at: float
    rss_mb: float
    fds: int
    sqlite_bytes: int
    lag: scale.Scrape


def sample(pid: int, base: str, state_dir: Path) -> Sample:
    text = httpx.get(base + "/metrics", timeout=30).text
    return Sample(
        time.monotonic(),
        rss_mb(pid),
        open_fds(pid),
        sqlite_bytes(state_dir),
        scale.parse_metrics(text),
    )


def lag_p99(before: scale.Scrape, after: scale.Scrape) -> float:
    """Scheduler lag p99 of the runs between two scrapes (bucket deltas)."""
    buckets = [
        (bound, count - dict(before.lag_buckets).get(bound, 0.0))
        for bound, count in after.lag_buckets
    ]
    return scale.bucket_quantile(buckets, 0.99)


# --- the fault schedule ------------------------------------------------------------------------


class Faults:
    """Turns the faults on and off by the position in the cycle; logs each change."""

    def __init__(
        self,
        targets: scale.Targets,
        receiver: Receiver,
        cluster: object | None,
        engine: dk.SecondEngine,
        cycle: float,
    ) -> None:
        self._targets = targets
        self._receiver = receiver
        self._cluster = cluster
        self._engine = engine
        self._cycle = cycle
        self._phase = ""
        self.counts: dict[str, int] = {}

    def _switch_targets(self, failing: bool) -> None:
        port = self._targets.ports[0]
        httpx.get(f"http://127.0.0.1:{port}/{'__fail' if failing else '__ok'}", timeout=10)

    def tick(self, elapsed: float) -> None:
        position = (elapsed % self._cycle) / self._cycle
        phase = (
            "targets-failing"
            if position < 0.25
            else "receiver-500"
            if position < 0.42
            else "receiver-hangs"
            if position < 0.58
            else "postgres-restart"
            if position < 0.75
            else "engine-restart"
            if position < 0.85
            else "quiet"
        )
        if phase == self._phase:
            return
        self._leave(self._phase)
        self._enter(phase)
        self._phase = phase
        self.counts[phase] = self.counts.get(phase, 0) + 1
        print(f"  [{elapsed:7.1f}s] fault: {phase}", flush=True)

    def _enter(self, phase: str) -> None:
        if phase == "targets-failing":
            self._switch_targets(True)
        elif phase == "receiver-500":
            self._receiver.default = Answer(500)
        elif phase == "receiver-hangs":
            self._receiver.released.clear()
            self._receiver.default = Answer(hang=True)
        elif phase == "postgres-restart" and isinstance(self._cluster, pg.PostgresCluster):
            self._cluster.stop("fast")
        elif phase == "engine-restart":
            self._engine.stop()

    def _leave(self, phase: str) -> None:
        if phase == "targets-failing":
            self._switch_targets(False)
        elif phase in ("receiver-500", "receiver-hangs"):
            self._receiver.default = Answer()
            self._receiver.released.set()
        elif phase == "postgres-restart" and isinstance(self._cluster, pg.PostgresCluster):
            self._cluster.start()
        elif phase == "engine-restart":
            self._engine.start()

    def end(self) -> None:
        self._leave(self._phase)


# --- the run -----------------------------------------------------------------------------------


def write_config(
    folder: Path,
    targets: scale.Targets,
    count: int,
    interval: float,
    hook: str,
    dsn: str | None,
    port: int,
    engine: str,
) -> Path:
    state = folder / "state"
    lines = [
        f"listen: 127.0.0.1:{port}",
        f"state_dir: {state}",
        f"public_url: http://127.0.0.1:{port}",
        f"docker: {{host: '{engine}'}}",
        f"defaults: {{interval: {interval:g}s, timeout: 2s, failure_threshold: 2,"
        " success_threshold: 2}",
        "checks:",
    ]
    for index in range(count):
        lines.append(
            f"  - {{name: {targets.name(index)}, type: http, service: svc-{index % 20},"
            f" url: '{targets.url(index)}', conditions: ['[STATUS] == 200']}}"
        )
    if dsn is not None:
        for index in range(3):
            lines.append(
                f"  - {{name: database-{index}, type: postgres, service: db, dsn: '${{SOAK_DSN}}'}}"
            )
    for index in range(ENGINE_CONTAINERS):
        lines.append(f"  - {{name: box-{index}, type: container, container: soak-box-{index}}}")
    lines.append(
        textwrap.dedent(f"""\
        alerting:
          group_by: [service]
          group_wait: 5s
          group_interval: 10s
          channels:
            - {{name: hooks, type: webhook, url: "{hook}"}}""")
    )
    path = folder / "opsmon.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--cycle", type=float, default=120.0, help="fault cycle in seconds")
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="seconds before the start figures"
    )
    parser.add_argument("--ports", type=int, default=10)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0

    folder = Path(tempfile.mkdtemp(prefix="opsmon-soak-"))
    targets = start_targets(args.checks, args.ports)
    receiver = Receiver().start()
    template = cluster = None
    if pg.available() is None:
        template = pg.PostgresTemplate.create()
        cluster = template.clone({"max_connections": "20"})
    else:
        print(f"PostgreSQL restarts skipped: {pg.available()}")
    engines = dk.second_engine()
    engine = engines.__enter__()
    boxes = engine.client()
    for index in range(ENGINE_CONTAINERS):
        boxes.containers.run(
            dk.IMAGE,
            "sleep 1000000",
            name=f"soak-box-{index}",
            detach=True,
            network_mode="none",
            restart_policy={"Name": "always"},
        )
    boxes.close()
    port = scale.free_port()
    config = write_config(
        folder,
        targets,
        args.checks,
        args.interval,
        receiver.url(),
        cluster.dsn() if cluster else None,
        port,
        engine.host,
    )
    env = {
        **os.environ,
        "SOAK_DSN": cluster.dsn() if cluster else "",
        "OPSMON_LOG_LEVEL": "WARNING",
    }
    log = (folder / "opsmon.log").open("wb")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    faults = Faults(targets, receiver, cluster, engine, args.cycle)
    try:
        scale.wait_for(base + "/readyz", time.monotonic() + 120, daemon, "opsmon run")
        started = time.monotonic()
        total = args.minutes * 60
        print(
            f"soak: {args.checks} checks every {args.interval:g}s for {args.minutes:g} min,"
            f" fault cycle {args.cycle:g}s, folder {folder}",
            flush=True,
        )
        # Figures are taken in the quiet part of each cycle (no fault in flight), so a hanging
        # delivery or a stopped database does not count as growth.
        peers = {str(p): "targets" for p in targets.ports}
        peers[str(receiver.port)] = "receiver"
        if cluster is not None:
            peers[str(cluster.port)] = "postgres"
        samples: list[Sample] = []
        next_sample = args.cycle * 0.9
        while next_sample < args.warmup:
            next_sample += args.cycle
        while (elapsed := time.monotonic() - started) < total:
            if daemon.poll() is not None:
                raise SystemExit(f"opsmon run exited with {daemon.returncode} (log: {folder})")
            faults.tick(elapsed)
            if elapsed >= next_sample:
                samples.append(sample(daemon.pid, base, folder / "state"))
                now = samples[-1]
                print(
                    f"  [{elapsed:7.1f}s] RSS {now.rss_mb:.1f} MiB, fds {now.fds},"
                    f" SQLite {now.sqlite_bytes / 1024:.0f} KiB; {fd_kinds(daemon.pid, peers)}",
                    flush=True,
                )
                next_sample += args.cycle
            time.sleep(1.0)
        faults.end()
        if len(samples) < 3:
            raise SystemExit("too short for figures: run at least three fault cycles")
        first, last = samples[0], samples[-1]
        lag_start = lag_p99(samples[0].lag, samples[1].lag)
        lag_end = lag_p99(samples[-2].lag, samples[-1].lag)
        print(
            f"  start: RSS {first.rss_mb:.1f} MiB, fds {first.fds},"
            f" SQLite {first.sqlite_bytes / 1024:.0f} KiB, lag p99 {lag_start * 1000:.0f} ms"
            " (first full cycle)"
        )
        health = httpx.get(base + "/healthz", timeout=10)
        runs = sum(last.lag.runs.values()) if last.lag.runs else 0
        print(
            f"  end:   RSS {last.rss_mb:.1f} MiB, fds {last.fds},"
            f" SQLite {last.sqlite_bytes / 1024:.0f} KiB,"
            f" lag p99 {lag_end * 1000:.0f} ms (last full cycle)"
        )
        growth = (last.rss_mb - first.rss_mb) / first.rss_mb * 100
        print(
            f"soak result: {(time.monotonic() - started) / 60:.1f} min, RSS {first.rss_mb:.1f} ->"
            f" {last.rss_mb:.1f} MiB ({growth:+.1f} %), fds {first.fds} -> {last.fds},"
            f" SQLite {first.sqlite_bytes / 1024:.0f} -> {last.sqlite_bytes / 1024:.0f} KiB,"
            f" lag p99 {lag_start * 1000:.0f} -> {lag_end * 1000:.0f} ms, check runs {runs:.0f},"
            f" webhook requests {len(receiver.requests)}, /healthz {health.status_code},"
            f" faults {faults.counts}"
        )
        return 0
    finally:
        scale.stop(daemon)
        log.close()
        scale.stop(targets.process)
        receiver.stop()
        engines.__exit__(None, None, None)
        if cluster is not None:
            cluster.destroy()
        if template is not None:
            shutil.rmtree(template.root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

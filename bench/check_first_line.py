"""`opsmon check` in a deploy script: time from starting the command to its first output line.

    .venv/bin/python bench/check_first_line.py              # 10 trials
    .venv/bin/python bench/check_first_line.py --trials 30

A deploy script runs `opsmon check --config FILE` and waits for its verdict; what the person
watching the script notices is how long the command is silent. Each trial starts a fresh
`python -m monitor check` (the same interpreter and code as the `opsmon` script) against a
config of three HTTP checks on a server on 127.0.0.1 that answers at once, and records the
time until the first line arrives on stdout and until the process exits. `opsmon --help` is
measured the same way, as the floor set by imports alone.
Printed: p50 and max in ms of each figure.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.http_target import Answer, serve

OPSMON = [sys.executable, "-m", "monitor"]


def first_line_and_exit(argv: list[str]) -> tuple[float, float, int]:
    """Seconds until the first stdout line, seconds until exit, exit code."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    process.stdout.readline()
    first = time.perf_counter() - started
    process.stdout.read()
    code = process.wait()
    return first, time.perf_counter() - started, code


def summary(name: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"{name:<34} p50 {statistics.median(ms):6.0f} ms   max {ms[-1]:6.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    with serve() as target, tempfile.TemporaryDirectory() as folder:
        target.routes["/api/health"] = Answer(body={"status": "ok"})
        config = Path(folder) / "opsmon.yml"
        config.write_text(
            "checks:\n"
            + "".join(
                f"  - {{name: c{i}, type: http, url: '{target.url('/api/health')}',"
                ' conditions: ["[STATUS] == 200"]}\n'
                for i in range(3)
            )
        )
        check = [*OPSMON, "check", "--config", str(config)]
        first_line_and_exit(check)  # warm the file cache (bytecode, site-packages)
        figures: dict[str, list[float]] = {"check: first line": [], "check: exit": []}
        figures["--help: first line"] = []
        for _ in range(args.trials):
            first, done, code = first_line_and_exit(check)
            if code != 0:
                raise SystemExit(f"opsmon check exited {code}")
            figures["check: first line"].append(first)
            figures["check: exit"].append(done)
            figures["--help: first line"].append(first_line_and_exit([*OPSMON, "--help"])[0])
    print(f"opsmon check, 3 HTTP checks on 127.0.0.1, {args.trials} trials")
    for name, values in figures.items():
        print(summary(name, values))


if __name__ == "__main__":
    main()

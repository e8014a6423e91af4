"""Bad input ends in exit 2 and one `file:line: key: message` line from the real `opsmon`
command (validate, run and a SIGHUP reload alike), never a traceback or unbounded memory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_opsmon, running_daemon
from tests.support.environment import free_port
from tests.support.http_target import Answer, Target, serve
from tests.support.waiting import wait_until

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
checks: [*i]
"""
# Far below the ~1.5 GB the bomb reached before; the interpreter and imports alone are ~80 MB.
PEAK_RSS_LIMIT_KB = 200 * 1024


def check_yaml(name: str, extra: str = "", url: str = "http://127.0.0.1:9/") -> str:
    return f"  - name: {name}\n    type: http\n    url: {url}\n{extra}"


def chain(length: int, cycle: bool) -> str:
    """`length` checks, each depending on the next; the last on the first when `cycle`."""
    parts = []
    for index in range(length):
        after = (index + 1) % length if cycle else index + 1
        depends = f"    depends_on: [c{after}]\n" if after < length else ""
        parts.append(check_yaml(f"c{index}", depends))
    return "checks:\n" + "".join(parts)


@dataclass(frozen=True)
class BadInput:
    """A config file (bytes) and the one line `opsmon` must answer it with (`{path}` in it)."""

    content: bytes
    line: str


BAD_INPUTS: dict[str, BadInput] = {
    "alias-bomb": BadInput(
        BILLION_LAUGHS.encode(),
        "{path}:6: expands to more than 200000 values through aliases (an alias bomb?)",
    ),
    "nested-500-deep": BadInput(
        ("checks: " + "[" * 500 + "]" * 500 + "\n").encode(),
        "{path}:1: nested deeper than 64 levels",
    ),
    "too-large": BadInput(
        b"# padding\n" * 300_000 + b"checks: []\n", "{path}: file is larger than 2048 KiB"
    ),
    "not-utf-8": BadInput(
        b"checks:\n" + check_yaml("caf\xe9".encode("latin-1").decode("latin-1")).encode("latin-1"),
        "{path}:2: not UTF-8: byte 0xe9 at offset 21 cannot be decoded (save the file as UTF-8)",
    ),
    "depends-on-chain-3000": BadInput(
        chain(3000, cycle=False).encode(),
        "{path}:5: checks[0].depends_on: dependency chain of 3000 checks"
        " (c0 -> c1 -> c2 -> ... -> c2999) is longer than 32",
    ),
    "depends-on-cycle-3000": BadInput(
        chain(3000, cycle=True).encode(),
        "{path}:5: checks[0].depends_on: dependency cycle:"
        " c0 -> c1 -> c2 -> ... -> c2998 -> c2999 -> c0 (3000 checks)",
    ),
    "listen-port-99999": BadInput(
        b"listen: 127.0.0.1:99999\nchecks: []\n",
        "{path}:1: listen: the port must be a number from 0 to 65535 (got '99999')",
    ),
    "docker-host-port-99999": BadInput(
        b"docker:\n  host: tcp://127.0.0.1:99999\nchecks: []\n",
        "{path}:2: docker.host: the port must be a number from 1 to 65535",
    ),
    "listen-malformed": BadInput(
        b"listen: localhost\nchecks: []\n",
        "{path}:1: listen: must be HOST:PORT, e.g. 127.0.0.1:9110 or [::1]:9110",
    ),
    "interval-inf": BadInput(
        ("checks:\n" + check_yaml("a", "    interval: .inf\n")).encode(),
        "{path}:5: checks[0].interval: too long: at most 3650d",
    ),
    "interval-overflow": BadInput(
        ("checks:\n" + check_yaml("a", "    interval: 99999999999d\n")).encode(),
        "{path}:5: checks[0].interval: too long: at most 3650d",
    ),
    "interval-below-minimum": BadInput(
        ("checks:\n" + check_yaml("a", "    interval: 1ms\n")).encode(),
        "{path}:5: checks[0].interval: must be at least 100ms (the shortest interval allowed)",
    ),
    "url-with-crlf": BadInput(
        ("checks:\n" + check_yaml("a", url='"http://127.0.0.1:9/\\r\\nX-Injected: 1"')).encode(),
        "{path}:4: checks[0].url: contains a control character ('\\r' at position 19)",
    ),
}


def write_bad(tmp_path: Path, name: str) -> tuple[Path, str]:
    path = tmp_path / "opsmon.yml"
    path.write_bytes(BAD_INPUTS[name].content)
    return path, BAD_INPUTS[name].line.format(path=path)


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_config_validate_answers_bad_input_with_one_line(tmp_path: Path, name: str) -> None:
    """`config validate` exits 2 printing exactly the one line that names the problem."""
    path, line = write_bad(tmp_path, name)
    done = run_opsmon("config", "validate", "--config", str(path))
    assert (done.returncode, done.stdout, done.stderr) == (2, line + "\n", "")


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_run_refuses_bad_input_before_starting(tmp_path: Path, name: str) -> None:
    """`opsmon run` exits 2 with the same line on stderr and a `config_invalid` log line."""
    path, line = write_bad(tmp_path, name)
    done = run_opsmon("run", "--config", str(path), env={"OPSMON_LISTEN": "127.0.0.1:0"})
    assert (done.returncode, done.stderr) == (2, line + "\n")
    assert json.loads(done.stdout)["event"] == "config_invalid"


def test_alias_bomb_peak_memory_stays_small(tmp_path: Path) -> None:
    """Validating the 10-line billion-laughs file stays far below the 1.5 GB it used to reach."""
    path, _ = write_bad(tmp_path, "alias-bomb")
    # A wrapper process whose only child is opsmon, so RUSAGE_CHILDREN is opsmon's peak alone.
    measure = textwrap.dedent(f"""\
        import resource, subprocess, sys
        done = subprocess.run([sys.executable, "-m", "monitor", "config", "validate",
                               "--config", {str(path)!r}], capture_output=True)
        print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        """)
    out = subprocess.run(
        [sys.executable, "-c", measure], capture_output=True, text=True, check=True, timeout=120
    )
    code, peak_kb = map(int, out.stdout.split())
    assert code == 2
    assert peak_kb < PEAK_RSS_LIMIT_KB, f"peak RSS {peak_kb} KB"


def test_minimum_interval_is_one_second_for_users(tmp_path: Path) -> None:
    """Without the test override, an interval under 1 s is refused naming the minimum."""
    path, _ = write_bad(tmp_path, "interval-below-minimum")
    env = {k: v for k, v in os.environ.items() if k != "OPSMON_MIN_INTERVAL"}
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "config", "validate", "--config", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    expected = f"{path}:5: checks[0].interval: must be at least 1s (the shortest interval allowed)"
    assert (done.returncode, done.stdout) == (2, expected + "\n")


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        ("OPSMON_LISTEN", "localhost", "must be HOST:PORT, e.g. 127.0.0.1:9110 or [::1]:9110"),
        (
            "OPSMON_LISTEN",
            "127.0.0.1:99999",
            "the port must be a number from 0 to 65535 (got '99999')",
        ),
        ("OPSMON_LOG_LEVEL", "loud", "must be one of DEBUG, INFO, WARNING, ERROR"),
        ("OPSMON_MIN_INTERVAL", "1ms", "must be a duration of at least 100ms"),
    ],
)
def test_environment_settings_are_checked_naming_the_variable(
    tmp_path: Path, variable: str, value: str, line: str
) -> None:
    """A bad OPSMON_* variable stops `opsmon run` with one line naming it, not its value."""
    path = tmp_path / "opsmon.yml"
    path.write_text("checks:\n" + check_yaml("a"))
    done = run_opsmon("run", "--config", str(path), env={variable: value})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"environment: {variable}: {line}"]
    assert "Traceback" not in done.stdout + done.stderr


def test_silence_for_an_overflowing_duration_is_refused(tmp_path: Path) -> None:
    """`silence add --for 9999999d` exits 2 with one clear line instead of an OverflowError."""
    path = tmp_path / "opsmon.yml"
    path.write_text(f"state_dir: {tmp_path / 'state'}\nchecks:\n" + check_yaml("a"))
    done = run_opsmon(
        "silence",
        "add",
        "--config",
        str(path),
        "--for",
        "9999999d",
        "--match",
        "check=a",
        "--comment",
        "long",
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "opsmon silence add: --for 9999999d: too long: at most 3650d\n"


@pytest.fixture
def backend() -> Iterator[Target]:
    with serve() as target:
        target.routes["/health"] = Answer(body={"status": "ok"})
        yield target


def _status(port: int) -> dict[str, dict[str, object]]:
    body = httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=2).json()
    return {check["name"]: check for check in body["checks"]}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_reload_onto_bad_input_keeps_the_old_config(
    tmp_path: Path, backend: Target, name: str
) -> None:
    """SIGHUP onto a bad file logs `config_reload_rejected` with the problem line; the daemon
    keeps running the old checks."""
    port = free_port()
    path = tmp_path / "opsmon.yml"
    path.write_text(
        "defaults: {interval: 200ms, timeout: 150ms}\nchecks:\n"
        + check_yaml("kept", url=backend.url("/health"))
    )
    with running_daemon(path, port) as daemon:
        wait_until(lambda: _status(port)["kept"]["state"] == "healthy")
        _, line = write_bad(tmp_path, name)
        daemon.send_signal(signal.SIGHUP)
        assert daemon.stdout is not None
        rejected = _wait_for_event(daemon.stdout.readline, "config_reload_rejected")
        assert rejected["problems"] == [line]
        runs = len(backend.requests)
        wait_until(lambda: len(backend.requests) > runs + 2)
        assert daemon.poll() is None
        assert set(_status(port)) == {"kept"}
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200


def _wait_for_event(readline: Callable[[], str], event: str) -> dict[str, object]:
    while True:
        text = readline()
        assert text, f"the daemon exited before logging {event}"
        if text.startswith("{"):
            record: dict[str, object] = json.loads(text)
            if record.get("event") == event:
                return record

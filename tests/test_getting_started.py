"""docs/getting-started.md works as written: its code blocks run in order, in one shell, against
a stand-in stack of real HTTP servers on 127.0.0.1 and a local receiver standing in for Slack.

What the test changes in the page's text, and why (each change must apply, or the test fails):
- the documented ports (4000 backend, 3000 frontend, 9110 opsmon) become free ports;
- `/path/to/your/stack` becomes the stand-in stack's folder;
- the Slack webhook URL becomes the local receiver (nothing may leave the machine);
- `pip install .` gets `--no-deps` and the test environment's packages (no registry needed);
- the config's timings shrink (15 s interval to 1 s and so on) so a page takes seconds.
`docker compose stop|start SERVICE` runs a stand-in `docker` that stops and starts the stand-in
stack's servers (see tests/support/simulated_stack.py).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.environment import free_port
from tests.support.receiver import Receiver
from tests.support.simulated_stack import SimulatedStack
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "getting-started.md"
SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXX"
SLACK_SECRET = "XXXXXXXX"
TIMINGS = {
    "interval: 15s": "interval: 1s",
    "timeout: 5s": "timeout: 1s",
    "group_wait: 10s": "group_wait: 0s",
    "group_interval: 1m": "group_interval: 1s",
}
BLOCK_TIMEOUT = 180.0
# The packages opsmon needs, from the test environment; a plain path line in the new venv, so
# the test venv's editable-install hook is not loaded there.
TEST_PACKAGES = sysconfig.get_path("purelib")
_NEW_SITE = (
    '"$(~/.opsmon/bin/python -c \'import sysconfig; print(sysconfig.get_path("purelib"))\')"'
)
INSTALL = f"pip install -q --no-deps . && echo {TEST_PACKAGES} > {_NEW_SITE}/test-deps.pth"


@dataclass(frozen=True)
class Block:
    """One fenced code block of the page."""

    lang: str
    text: str


def page_blocks() -> list[Block]:
    """The page's `sh` and `yaml` blocks, in order."""
    found = re.findall(r"^```(sh|yaml)\n(.*?)^```", PAGE.read_text(), re.S | re.M)
    return [Block(lang, text) for lang, text in found]


class Shell:
    """One bash session, like the reader's terminal: `cd`, `export` and variables carry over;
    `set -e` ends it at the first failing command."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._send("set -euo pipefail\n")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def run(self, script: str, timeout: float = BLOCK_TIMEOUT) -> str:
        """Run `script`; its output, or fail with the output when a command fails."""
        marker = f"--block-done-{uuid.uuid4().hex}--"
        self._send(f"{script}\nprintf '\\n%s\\n' {marker}\n")
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                message = f"block timed out:\n{script}\n--- output:\n{''.join(output)}"
                raise AssertionError(message) from None
            if line is None:
                code = self.process.wait()
                raise AssertionError(
                    f"block failed (exit {code}):\n{script}\n--- output:\n{''.join(output)}"
                )
            if line.strip() == marker:
                return "".join(output)
            output.append(line)

    def close(self) -> None:
        """End the session."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Page:
    """What the blocks act on, and what they leave behind."""

    stack: SimulatedStack
    slack: Receiver
    stack_dir: Path
    opsmon_port: int

    @property
    def opsmon(self) -> str:
        """The daemon's base URL."""
        return f"http://127.0.0.1:{self.opsmon_port}"

    def pid(self) -> int:
        """The daemon's pid, from the file the page writes."""
        return int((self.stack_dir / "opsmon.pid").read_text().strip())

    def log(self) -> str:
        """The daemon's log file."""
        return (self.stack_dir / "opsmon.log").read_text()

    def slack_texts(self) -> list[str]:
        """The `text` of every message Slack accepted."""
        return [str(r.json["text"]) for r in self.slack.accepted()]

    def wait_slack(self, count: int, status: str) -> str:
        """Wait for message number `count`; it must be `[status]` about the frontend."""
        wait_until(lambda: len(self.slack_texts()) >= count, timeout=60)
        text = self.slack_texts()[count - 1]
        assert text.startswith(f"[{status}]") and "frontend" in text, self.slack_texts()
        return text

    def state(self, check: str) -> str:
        """A check's state in /api/status."""
        checks = httpx.get(f"{self.opsmon}/api/status", timeout=5).json()["checks"]
        return str(next(c["state"] for c in checks if c["name"] == check))

    def failed_runs(self, check: str) -> float:
        """opsmon_check_runs_total of `check` with result failure."""
        text = httpx.get(f"{self.opsmon}/metrics", timeout=5).text
        pattern = (
            rf'^opsmon_check_runs_total{{[^}}]*check="{check}"[^}}]*result="failure"[^}}]*}} (\S+)$'
        )
        match = re.search(pattern, text, re.M)
        return float(match.group(1)) if match else 0.0


def adapt(block: Block, page: Page, ports: dict[int, int], used: set[str]) -> str:
    """The block as the test runs it (see the module docstring); records which changes applied."""
    text = block.text
    for documented, actual in ports.items():
        if f"127.0.0.1:{documented}" in text:
            used.add(f"port {documented}")
            text = text.replace(f"127.0.0.1:{documented}", f"127.0.0.1:{actual}")
    replacements = {
        "/path/to/your/stack": str(page.stack_dir),
        SLACK_URL: page.slack.url("/services/T0000/B0000/" + SLACK_SECRET),
        "pip install -q .": INSTALL,
    }
    if block.lang == "yaml":
        replacements.update(TIMINGS)
    for old, new in replacements.items():
        if old in text:
            used.add(old)
            text = text.replace(old, new)
    assert "hooks.slack.com" not in text
    return text


def write_yaml(block: str, folder: Path) -> None:
    """A `# FILE` block replaces FILE; a `# FILE, added at the end` block is appended to it."""
    first, _, body = block.partition("\n")
    name = first.removeprefix("# ").split(",")[0].strip()
    path = folder / name
    if "added at the end" in first:
        path.write_text(path.read_text() + body)
    else:
        path.write_text(block)


def _installed(out: str, page: Page) -> None:
    assert re.search(r"^opsmon \d+\.\d+", out, re.M), out


def _compose_listing(out: str, page: Page) -> None:
    assert '"4000:4000"' in out and "healthcheck:" in out and "backend:" in out, out


def _probe(out: str, page: Page) -> None:
    for line in ("200 /api/health", "200 /api/ready", "404 /healthz", "200 frontend /"):
        assert line in out, out


def _health_body(out: str, page: Page) -> None:
    assert '"database": "ok"' in out and '"ready": true' in out, out


def _wrote_config(out: str, page: Page) -> None:
    assert (page.stack_dir / "opsmon.yml").is_file()


def _valid(checks: int) -> Callable[[str, Page], None]:
    def valid(out: str, page: Page) -> None:
        assert f"opsmon.yml: valid ({checks} checks)" in out, out
        assert "warning" not in out, out

    return valid


def _checked(out: str, page: Page) -> None:
    rows = [line.split() for line in out.splitlines() if line.startswith(("backend-", "frontend"))]
    assert {row[0]: row[3] for row in rows} == {
        "backend-health": "healthy",
        "backend-ready": "healthy",
        "frontend": "healthy",
    }, out
    assert '"name": "backend-health"' in out and '"ok": true' in out, out


def _running(out: str, page: Page) -> None:
    os.kill(page.pid(), 0)  # the daemon runs
    assert page.state("backend-health") == "healthy"


def _observed(out: str, page: Page) -> None:
    assert '"name": "frontend"' in out or '"name":"frontend"' in out, out
    assert re.search(r'^opsmon_check_healthy\{[^}]*check="frontend"[^}]*\} 1\.0$', out, re.M), out


def _nothing(out: str, page: Page) -> None:
    assert out.strip() == "", out


def _restarted(out: str, page: Page) -> None:
    _valid(3)(out, page)
    os.kill(page.pid(), 0)


def _paged(out: str, page: Page) -> None:
    page.wait_slack(1, "FIRING")


def _resolved(count: int) -> Callable[[str, Page], None]:
    def resolved(out: str, page: Page) -> None:
        page.wait_slack(count, "RESOLVED")

    return resolved


def _silenced(out: str, page: Page) -> None:
    assert "silenced service=frontend" in out and "trying a silence" in out, out
    wait_until(lambda: page.state("frontend") == "unhealthy", timeout=30)
    # Several more failing rounds (at a 1 s interval and no group wait): a page would be out.
    seen = page.failed_runs("frontend")
    wait_until(lambda: page.failed_runs("frontend") >= seen + 3, timeout=30)
    assert len(page.slack_texts()) == 2, page.slack_texts()


def _expired(out: str, page: Page) -> None:
    assert out.strip().endswith("expired"), out
    page.wait_slack(3, "FIRING")


def _stopped(out: str, page: Page) -> None:
    pid = page.pid()

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_until(gone, timeout=30)
    assert "daemon_stopped" in page.log()


# One entry per code block, in the page's order: a command the block must contain, and what
# must be true after it ran. Adding or moving a block means updating this list.
STEPS: list[tuple[str, Callable[[str, Page], None]]] = [
    ("pip install", _installed),
    ("grep -nE", _compose_listing),
    ("for path in", _probe),
    ("/api/ready", _health_body),
    ("# opsmon.yml\n", _wrote_config),
    ("opsmon config validate", _valid(3)),
    ("opsmon check --only", _checked),
    ("nohup opsmon run", _running),
    ("/metrics", _observed),
    ("export SLACK_WEBHOOK_URL", _nothing),
    ("added at the end", _wrote_config),
    ('kill "$(cat opsmon.pid)"\nnohup', _restarted),
    ("docker compose stop frontend", _paged),
    ("docker compose start frontend", _resolved(2)),
    ("opsmon silence add", _silenced),
    ("opsmon silence expire", _expired),
    ("docker compose start frontend", _resolved(4)),
    ('kill "$(cat opsmon.pid)"', _stopped),
]


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """The stand-in stack and Slack, and a stack folder."""
    stack = SimulatedStack()
    slack = Receiver().start()
    stack.start()
    stack_dir = tmp_path / "stack"
    stack_dir.mkdir()
    try:
        yield Page(stack, slack, stack_dir, free_port())
    finally:
        pid_file = stack_dir / "opsmon.pid"
        if pid_file.is_file():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        stack.stop()
        slack.stop()


def clone(tmp_path: Path) -> Path:
    """The files of the repository that `pip install .` needs."""
    source = tmp_path / "opsmon"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "runbooks", source / "runbooks")
    shutil.copytree(
        ROOT / "monitor",
        source / "monitor",
        symlinks=True,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return source


def shell_environment(tmp_path: Path) -> dict[str, str]:
    """A reader's environment: a home of its own, `python3` and the system tools on PATH (not
    the test's opsmon), the stand-in `docker` first."""
    home = tmp_path / "home"
    tools = tmp_path / "bin"
    home.mkdir()
    tools.mkdir()
    base = (
        Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    )
    (tools / "python3").symlink_to(base)
    keep = ("LANG", "TERM", "PIP_FIND_LINKS", "PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(HOME=str(home), PATH=f"{tools}:/usr/local/bin:/usr/bin:/bin", CI="")
    return env


def test_getting_started_page_works_as_written(tmp_path: Path, page: Page) -> None:
    """Every code block of docs/getting-started.md runs in order in one shell and does what the
    page says: install, find the health URLs, write and validate the config, check, run, add
    Slack (a page and its resolution arrive), silence (nothing arrives until it is expired)."""
    blocks = page_blocks()
    assert len(blocks) == len(STEPS), (
        f"the page has {len(blocks)} code blocks and the test expects {len(STEPS)}: update STEPS"
    )
    env = shell_environment(tmp_path)
    page.stack.install(page.stack_dir, Path(env["PATH"].split(":")[0]))
    ports = {4000: page.stack.ports["backend"], 3000: page.stack.ports["frontend"]}
    ports[9110] = page.opsmon_port
    used: set[str] = set()
    shell = Shell(clone(tmp_path), env)
    outputs: list[str] = []
    try:
        for block, (needle, expect) in zip(blocks, STEPS, strict=True):
            assert needle in block.text, f"expected a block with {needle!r}, got:\n{block.text}"
            script = adapt(block, page, ports, used)
            if block.lang == "yaml":
                write_yaml(script, page.stack_dir)
                out = ""
            else:
                out = shell.run(script)
            outputs.append(out)
            expect(out, page)
            if needle == "pip install":  # the page's opsmon is the one just installed
                where = shell.run("command -v opsmon").strip()
                assert where == env["HOME"] + "/.opsmon/bin/opsmon", where
    finally:
        shell.close()
    expected = {f"port {p}" for p in ports} | {"/path/to/your/stack", SLACK_URL, "pip install -q ."}
    assert expected | set(TIMINGS) <= used, f"changes that no longer apply: {expected - used}"
    assert SLACK_SECRET not in page.log() + "".join(outputs)

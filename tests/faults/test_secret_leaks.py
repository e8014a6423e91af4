"""Canary secrets never leave opsmon, however an error message quotes, escapes or encodes
them: not in CLI output, log lines, /api/status or the webhook alert (real servers on
127.0.0.1); a CRLF `.env` value is refused at load, naming the key, never the value."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest

from tests.support.cli import run_opsmon, running_daemon
from tests.support.environment import free_port
from tests.support.http_target import Answer, Target, serve
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until

# Quotes, a backslash and URL-reserved characters make every spelling of it different.
TOKEN = 'c4n4ry"Zqxw\\Kpfv/+&=Vbnm7'
HOOK_CANARY = "hookc4n4ry-Hj8s2d"
FRAGMENTS = ("c4n4ry", "Zqxw", "Kpfv", "Vbnm7", "Hj8s2d")

# How the target echoes the Authorization header it got back into its body: each the way
# some library's error message would quote it.
SPELLINGS: dict[str, Callable[[str], str]] = {
    "repr": repr,
    "bytes-repr": lambda value: repr(value.encode()),
    "json": json.dumps,
    "url-encoded": lambda value: quote(value, safe=""),
    "form-encoded": quote_plus,
}


def leaked(text: str) -> list[str]:
    return [fragment for fragment in FRAGMENTS if fragment in text]


def echo(spelling: Callable[[str], str]) -> Callable[[BaseHTTPRequestHandler], Answer]:
    def answer(request: BaseHTTPRequestHandler) -> Answer:
        return Answer(body={"status": spelling(request.headers.get("Authorization", ""))})

    return answer


@pytest.fixture
def echo_target() -> Iterator[Target]:
    with serve() as target:
        for name, spelling in SPELLINGS.items():
            target.routes[f"/echo/{name}"] = echo(spelling)
        yield target


def write_config(tmp_path: Path, target: Target, port: int = 0) -> Path:
    checks = "".join(
        f"  - name: echo-{name}\n"
        "    type: http\n"
        f"    url: {target.url(f'/echo/{name}')}\n"
        '    headers: {Authorization: "Bearer ${API_TOKEN}"}\n'
        '    conditions: ["[BODY].status == ok"]\n'
        for name in SPELLINGS
    )
    path = tmp_path / "opsmon.yml"
    path.write_text(
        textwrap.dedent(f"""\
        public_url: http://127.0.0.1:{port}
        state_dir: {tmp_path / "state"}
        defaults: {{interval: 300ms, timeout: 250ms, failure_threshold: 1, success_threshold: 1}}
        alerting:
          group_wait: 0s
          group_interval: 300ms
          channels:
            - {{name: hooks, type: webhook, url: "${{HOOK_URL}}"}}
        checks:
        """)
        + checks
    )
    return path


def test_canaries_appear_nowhere(tmp_path: Path, echo_target: Target, receiver: Receiver) -> None:
    """A target echoing the secret header back in repr, bytes-repr, JSON-escaped and
    URL-encoded form fails its checks; the secret is masked in `opsmon check` (table and
    JSON), `opsmon explain`, /api/status, every log line and the webhook alert."""
    env = {"API_TOKEN": TOKEN, "HOOK_URL": receiver.url(f"/hook/{HOOK_CANARY}")}
    path = write_config(tmp_path, echo_target)
    table = run_opsmon("check", "--config", str(path), env=env)
    as_json = run_opsmon("check", "--json", "--config", str(path), env=env)
    explained = run_opsmon("explain", "--config", str(path), env=env)
    assert (table.returncode, as_json.returncode, explained.returncode) == (1, 1, 1)
    reasons = {row["name"]: row["reason"] for row in json.loads(as_json.stdout)}
    assert set(reasons) == {f"echo-{name}" for name in SPELLINGS}
    assert all("***" in reason for reason in reasons.values()), reasons
    for done in (table, as_json, explained):
        assert leaked(done.stdout + done.stderr) == []

    port = free_port()
    path = write_config(tmp_path, echo_target, port)
    with running_daemon(path, port, env=env) as daemon:
        wait_until(lambda: len(receiver.accepted()) >= 1)
        status = httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=2).text
        assert "***" in status and leaked(status) == []
    assert daemon.stdout is not None
    logs = daemon.stdout.read()
    assert '"event": "daemon_started"' in logs and leaked(logs) == []
    payloads = [request.body.decode() for request in receiver.accepted()]
    assert any("***" in payload for payload in payloads)
    assert leaked("".join(payloads)) == []


def test_crlf_env_value_is_refused_naming_the_key(tmp_path: Path, echo_target: Target) -> None:
    """A header value from a CRLF `.env` (trailing `\\r`) stops validate, check and run with
    exit 2 and a line naming the key and variable; the secret itself is never printed."""
    env = {"API_TOKEN": TOKEN + "\r", "HOOK_URL": "http://127.0.0.1:9/hook"}
    path = write_config(tmp_path, echo_target)
    expected = [
        f"{path}:{13 + 5 * index}: checks[{index}].headers.Authorization: environment variable"
        " API_TOKEN contains a carriage return (\\r); is the .env file saved with CRLF"
        " line endings?"
        for index in range(len(SPELLINGS))
    ]
    validated = run_opsmon("config", "validate", "--config", str(path), env=env)
    checked = run_opsmon("check", "--config", str(path), env=env)
    ran = run_opsmon("run", "--config", str(path), env={**env, "OPSMON_LISTEN": "127.0.0.1:0"})
    assert validated.returncode == checked.returncode == ran.returncode == 2
    assert validated.stdout.splitlines() == expected
    assert checked.stderr.splitlines() == expected == ran.stderr.splitlines()
    assert echo_target.requests == []
    for done in (validated, checked, ran):
        assert leaked(done.stdout + done.stderr) == []

"""A running `opsmon run` with the status page, the API and its tokens, for page and API tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.cli import running_daemon
from tests.support.environment import free_port

# One token per scope (and an admin); the values are canaries: they must never show up in logs.
TOKENS = {
    "reader": ("read", "canary-read-token-7f3a9c21"),
    "silencer": ("silence", "canary-silence-token-5b8e02"),
    "acker": ("ack", "canary-ack-token-c41d77e9"),
    "boss": ("admin", "canary-admin-token-19e6f0"),
}
TOKEN_ENV = {f"OPSMON_TEST_TOKEN_{name.upper()}": value for name, (_, value) in TOKENS.items()}


def token_config() -> dict[str, Any]:
    """The `api` section: each token read from the environment."""
    return {
        "tokens": [
            {"name": name, "token": f"${{OPSMON_TEST_TOKEN_{name.upper()}}}", "scopes": [scope]}
            for name, (scope, _) in TOKENS.items()
        ]
    }


def auth(name: str | None) -> dict[str, str]:
    """The Authorization header of a token (none for None)."""
    return {"Authorization": f"Bearer {TOKENS[name][1]}"} if name else {}


@dataclass
class Daemon:
    """A running daemon and how to reach it."""

    port: int
    config: Path
    process: subprocess.Popen[str]
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=10)

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://127.0.0.1:{self.port}"

    def api(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A request to /api/v1/PATH with the token of `token`."""
        return self.client.request(method, f"/api/v1/{path}", headers=auth(token), **kwargs)


def write_config(tmp_path: Path, checks: list[dict[str, Any]], **sections: Any) -> Path:
    """A config file with fast checks, the test tokens and `sections`."""
    config = {
        "state_dir": str(tmp_path / "state"),
        "defaults": {
            "interval": "300ms",
            "timeout": "250ms",
            "failure_threshold": 1,
            "success_threshold": 1,
        },
        "checks": checks,
        "api": token_config(),
        **sections,
    }
    path = tmp_path / "opsmon.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@contextmanager
def status_daemon(config: Path, port: int | None = None) -> Iterator[Daemon]:
    """`opsmon run` on `config` with the tokens in its environment."""
    port = port or free_port()
    with running_daemon(config, port, env=TOKEN_ENV) as process:
        daemon = Daemon(port, config, process)
        try:
            yield daemon
        finally:
            daemon.client.close()

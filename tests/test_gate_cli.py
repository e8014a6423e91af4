"""`opsmon gate`'s command line: usage and config errors exit 4, help, light imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.cli import run_opsmon

HEAVY = ("httpx", "docker", "psycopg", "uvicorn", "starlette", "prometheus_client", "aiosmtplib")


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "opsmon.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "checks": [
                    {
                        "name": "web-health",
                        "type": "http",
                        "service": "web",
                        "url": "http://127.0.0.1:9/",
                    }
                ],
                "rollback": {"services": {"web": {"strategy": "recreate", "project": "shop"}}},
            }
        )
    )
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the following arguments are required: SERVICE"),
        (("web", "--timeout", "5q"), "invalid duration '5q'"),
        (("web", "--healthy-for", "0s"), "'0s' must be > 0"),
        (("web", "--timeout", "10s", "--healthy-for", "30s"), "--healthy-for must be shorter"),
        (("web", "--bogus"), "unrecognized arguments: --bogus"),
        (("no/such",), "not a service name: no/such"),
    ],
)
def test_usage_errors_exit_4(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    """Bad usage is exit 4 (2 means "the service needs a human"), with a clear message."""
    done = run_opsmon("gate", "--config", str(_config(tmp_path)), *args)
    assert done.returncode == 4, done.stdout + done.stderr
    assert message in done.stderr


def test_unknown_service_exits_4(tmp_path: Path) -> None:
    """A service the config does not know cannot be gated; the known ones are listed."""
    unknown = run_opsmon("gate", "--config", str(_config(tmp_path)), "web", "api")
    assert unknown.returncode == 4
    assert "no service named api" in unknown.stderr and "(known: web)" in unknown.stderr


def test_invalid_config_exits_4_with_file_line_key(tmp_path: Path) -> None:
    """Config problems are printed as file:line: key: message; exit 4."""
    path = tmp_path / "opsmon.yml"
    path.write_text("checks:\n  - name: web-health\n    type: http\n    url: nope\n")
    done = run_opsmon("gate", "--config", str(path), "web")
    assert done.returncode == 4
    assert f"{path}:" in done.stderr and "url" in done.stderr


def test_help_documents_the_exit_codes() -> None:
    """`opsmon gate --help` lists every exit code."""
    done = run_opsmon("gate", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for words in (
        "Exit 0 promoted",
        "1 rolled back",
        "2 rollback failed",
        "3 timed out",
        "4 usage",
    ):
        assert words in text


def test_the_command_module_imports_nothing_heavy() -> None:
    """Adding `gate` to the parser imports no engine, HTTP, database or server library."""
    code = (
        f"import sys, monitor.gate.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""

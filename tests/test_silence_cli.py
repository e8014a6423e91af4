"""`opsmon silence add|list|expire` against the state file, with and without a running daemon."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from monitor.cli import main
from tests.support.cli import running_daemon
from tests.support.environment import free_port
from tests.support.receiver import FlipTarget, Receiver
from tests.support.waiting import wait_until


@dataclass(frozen=True)
class Ran:
    """What one CLI invocation did."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def opsmon(capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """Run the `opsmon` CLI in this process (its real argument parsing and commands)."""

    def run(*args: str) -> Ran:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors, as the real process sees them
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


# The maintenance window silences everything: never on the day the tests run (a fixed day
# made the daemon test fail every Sunday between 03:00 and 04:00 UTC).
BACKUP_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[
    (datetime.now(UTC).weekday() + 3) % 7
]


def _config(
    tmp_path: Path, url: str = "http://127.0.0.1:9/", hook: str = "http://127.0.0.1:9/"
) -> Path:
    config = {
        "state_dir": str(tmp_path / "state"),
        "defaults": {"interval": "200ms", "timeout": "150ms", "failure_threshold": 2},
        "checks": [{"name": "web", "type": "http", "service": "web", "url": url}],
        "alerting": {
            "group_wait": "0s",
            "group_interval": "300ms",
            "channels": [{"name": "hooks", "type": "webhook", "url": hook}],
        },
        "silences": [
            {
                "match": {"service": "frontend"},
                "starts": "2026-01-01T00:00:00Z",
                "ends": "2099-01-01T00:00:00Z",
                "comment": "CDN migration",
            }
        ],
        "maintenance": [
            {"name": "backups", "weekdays": [BACKUP_DAY], "start": "03:00", "duration": "1h"}
        ],
    }
    path = tmp_path / "opsmon.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_add_list_expire_without_a_daemon(tmp_path: Path, opsmon: Callable[..., Ran]) -> None:
    """A silence added from the shell is listed with its author and comment, then expired."""
    config = _config(tmp_path)
    added = opsmon(
        "silence",
        "add",
        "--config",
        str(config),
        "--match",
        "service=backend",
        "--for",
        "2h",
        "--comment",
        "deploy",
        "--author",
        "alice",
    )
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.split()[0]
    assert "silenced service=backend" in added.stdout
    assert "(2h)" in added.stdout

    listed = opsmon("silence", "list", "--config", str(config), "--json")
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert rows[silence_id]["state"] == "active"
    assert rows[silence_id]["matchers"] == {"service": "backend"}
    assert rows[silence_id]["created_by"] == "alice"
    assert rows[silence_id]["comment"] == "deploy"
    config_rows = [r for r in rows.values() if r["origin"] == "config"]
    assert [r["comment"] for r in config_rows] == ["CDN migration"]
    assert rows["maintenance-0"]["comment"] == f"backups: {BACKUP_DAY} 03:00 UTC for 1h"
    table = opsmon("silence", "list", "--config", str(config)).stdout
    assert table.splitlines()[0].split() == [
        "ID",
        "STATE",
        "MATCHERS",
        "STARTS",
        "ENDS",
        "BY",
        "COMMENT",
    ]
    assert silence_id in table

    expired = opsmon("silence", "expire", "--config", str(config), silence_id[:6])
    assert expired.returncode == 0, expired.stderr
    assert expired.stdout.strip() == f"{silence_id}  expired"
    after = json.loads(opsmon("silence", "list", "--config", str(config), "--json").stdout)
    assert silence_id not in {row["id"] for row in after}
    everything = opsmon("silence", "list", "--config", str(config), "--json", "--all")
    assert {row["id"]: row["state"] for row in json.loads(everything.stdout)}[
        silence_id
    ] == "expired"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--match", "team=x", "--comment", "c"], "unknown label 'team'"),
        (["--match", "backend", "--comment", "c"], "expected LABEL=VALUE"),
        (["--match", "service=a", "--for", "soon", "--comment", "c"], "invalid duration 'soon'"),
        (
            ["--match", "service=a", "--until", "2020-01-01T00:00:00Z", "--comment", "c"],
            "in the past",
        ),
        (["--match", "service=a"], "the following arguments are required: --comment"),
        (["--match", "service=a", "--comment", " "], "--comment must say why"),
    ],
)
def test_bad_silences_are_refused_with_a_reason(
    tmp_path: Path, args: list[str], message: str, opsmon: Callable[..., Ran]
) -> None:
    """Mistakes on the command line exit 2 with a specific message and store nothing."""
    config = _config(tmp_path)
    result = opsmon("silence", "add", "--config", str(config), *args)
    assert result.returncode == 2
    assert message in result.stderr
    listed = json.loads(opsmon("silence", "list", "--config", str(config), "--json").stdout)
    assert [r["origin"] for r in listed] == ["config", "maintenance"]


def test_expiring_unknown_or_config_silences_fails(
    tmp_path: Path, opsmon: Callable[..., Ran]
) -> None:
    """Unknown ids exit 1; silences from the config file must be removed there."""
    config = _config(tmp_path)
    unknown = opsmon("silence", "expire", "--config", str(config), "deadbeef")
    assert unknown.returncode == 1
    assert "no active or pending silence 'deadbeef'" in unknown.stderr
    from_config = opsmon("silence", "expire", "--config", str(config), "config-123")
    assert from_config.returncode == 2
    assert "defined in the config file" in from_config.stderr


def test_running_daemon_honours_silences_added_from_the_shell(
    tmp_path: Path, target: FlipTarget, hooks: Receiver, opsmon: Callable[..., Ran]
) -> None:
    """Silence from the CLI while the daemon runs: nothing is sent; expire it: the alert comes."""
    config = _config(tmp_path, target.url, hooks.url())
    with running_daemon(config, free_port()) as daemon:
        added = opsmon(
            "silence",
            "add",
            "--config",
            str(config),
            "--match",
            "service=web",
            "--for",
            "1h",
            "--comment",
            "deploy",
        )
        assert added.returncode == 0, added.stderr
        target.healthy = False
        # The check trips (2 failures) and several rounds pass: still nothing is sent.
        hits = target.hits()
        wait_until(lambda: target.hits() >= hits + 8, timeout=10)
        assert hooks.accepted() == []
        opsmon("silence", "expire", "--config", str(config), added.stdout.split()[0])
        (message,) = hooks.wait_accepted(1)
        del daemon
    assert message.json["status"] == "firing"
    assert message.json["alerts"][0]["labels"]["check"] == "web"

"""A corrupt opsmon.db (garbage, truncated, a directory in its place): CLI commands print one
clear line, and `opsmon run` moves the file aside, says what was lost, and starts fresh."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import CANARY, config_text, delivered_alerts
from tests.support.cli import run_opsmon
from tests.support.daemon_process import DaemonProcess
from tests.support.receiver import FlipTarget, Receiver
from tests.support.waiting import wait_until


def _garbage(db: Path) -> None:
    db.write_bytes(b"\x00\xffnot sqlite at all " * 4096)


def _truncated(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def _directory(db: Path) -> None:
    db.unlink()
    db.mkdir()
    (db / "stray").write_text("x")


CORRUPTIONS = {"garbage": _garbage, "truncated": _truncated, "directory": _directory}


def _state_with_a_silence(config: Path, state: Path) -> Path:
    """A real state file with a silence in it, made by the CLI."""
    added = run_opsmon(
        "silence",
        "add",
        "--config",
        str(config),
        "--match",
        "service=other",
        "--for",
        "1h",
        "--comment",
        "planned",
        env={"API_TOKEN": CANARY},
    )
    assert added.returncode == 0, added.stderr
    return state / "opsmon.db"


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_cli_prints_one_line_for_corrupt_state(
    corruption: str,
    tmp_path: Path,
    target: FlipTarget,
    receiver: Receiver,
    write_config: Callable[[str], Path],
) -> None:
    """`silence list`, `silence add` and `rollback status` on a corrupt state file exit 2
    with one clear line on stderr and no traceback; the file is left for the daemon."""
    state = tmp_path / "state"
    rollback = (
        "rollback:\n  mode: dry_run\n  services: {backend: {strategy: recreate, project: shop}}\n"
    )
    config = write_config(config_text(target.url, state, receiver.url()) + rollback)
    db = _state_with_a_silence(config, state)
    CORRUPTIONS[corruption](db)
    for argv in (
        ("silence", "list", "--config", str(config)),
        ("silence", "add", "--config", str(config), "--match", "service=x", "--comment", "c"),
        ("rollback", "status", "--config", str(config)),
    ):
        done = run_opsmon(*argv, env={"API_TOKEN": CANARY})
        assert done.returncode == 2, done
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("opsmon: cannot use the state database")
        assert "Traceback" not in done.stderr + done.stdout
    assert db.exists()


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_daemon_moves_corrupt_state_aside_and_starts_fresh(
    corruption: str,
    tmp_path: Path,
    target: FlipTarget,
    receiver: Receiver,
    write_config: Callable[[str], Path],
    daemons: Callable[..., DaemonProcess],
) -> None:
    """`opsmon run` on a corrupt state file starts, moves the file to
    opsmon.db.corrupt-<timestamp>, logs what was lost and what to do, and alerts as usual
    from a fresh file; `silence list` works again."""
    state = tmp_path / "state"
    config = write_config(config_text(target.url, state, receiver.url()))
    db = _state_with_a_silence(config, state)
    CORRUPTIONS[corruption](db)
    daemon = daemons(config)
    daemon.wait_ready()
    moved = sorted(state.glob("opsmon.db.corrupt-*"))
    assert len(moved) == 1 and (moved[0].is_dir() == (corruption == "directory"))
    (record,) = daemon.events("state_quarantined")
    assert record["moved_to"] == str(moved[0]) and record["problem"]
    assert record["lost"] and "silence add" in record["advice"]
    target.healthy = False
    wait_until(lambda: ("firing", "HealthCheckFailing") in delivered_alerts(receiver), 30)
    assert db.is_file()
    listed = run_opsmon("silence", "list", "--config", str(config), env={"API_TOKEN": CANARY})
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
    assert daemon.alive()
    assert CANARY not in daemon.log_text()
    shutil.rmtree(moved[0], ignore_errors=True)

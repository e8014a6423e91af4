"""Two daemons on one state_dir: the second exits 2 with one line naming the first's pid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.faults.conftest import CANARY, config_text
from tests.support.daemon_process import DaemonProcess
from tests.support.receiver import FlipTarget


def test_second_daemon_on_a_state_dir_exits_2_naming_the_holder(
    tmp_path: Path,
    target: FlipTarget,
    write_config: Callable[[str], Path],
    daemons: Callable[..., DaemonProcess],
) -> None:
    """The second `opsmon run` on a locked state_dir exits 2 with one clear line naming the
    holder's pid; the first keeps running and answering."""
    config = write_config(config_text(target.url, tmp_path / "state"))
    first = daemons(config)
    first.wait_ready()
    second = daemons(config)
    assert second.wait_exit() == 2
    output = second.log_text()
    problem = [line for line in output.splitlines() if line.startswith("opsmon: ")]
    assert len(problem) == 1
    assert f"pid {first.pid}" in problem[0] and str(tmp_path / "state") in problem[0]
    assert "Traceback" not in output and CANARY not in output
    assert first.alive() and first.get("/healthz").status_code == 200


def test_lock_is_free_again_after_the_holder_is_killed(
    tmp_path: Path,
    target: FlipTarget,
    write_config: Callable[[str], Path],
    daemons: Callable[..., DaemonProcess],
) -> None:
    """A daemon killed with SIGKILL leaves no stale lock: the next one starts normally."""
    config = write_config(config_text(target.url, tmp_path / "state"))
    first = daemons(config)
    first.wait_ready()
    assert first.process is not None
    first.process.kill()
    first.process.wait()
    second = daemons(config)
    second.wait_ready()
    assert second.get("/healthz").status_code == 200

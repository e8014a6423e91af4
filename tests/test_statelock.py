"""The state_dir lock: one holder at a time, the holder's pid in the refusal, free on close."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.statelock import StateDirLock, StateDirLocked, hold_state_dir


def test_second_lock_names_the_holder(tmp_path: Path) -> None:
    """A lock held by another process is refused with that process's pid."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time; from pathlib import Path; from monitor.statelock import StateDirLock;"
            f" StateDirLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True);"
            " time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StateDirLocked) as refused:
            StateDirLock(tmp_path).acquire()
        assert refused.value.holder == holder.pid
        assert f"pid {holder.pid}" in str(refused.value)
    finally:
        holder.kill()
        holder.wait()
    with StateDirLock(tmp_path):  # the kernel released it with the process
        pass


def test_hold_state_dir_prints_one_line_when_locked(tmp_path: Path) -> None:
    """hold_state_dir gives None and one `opsmon:` line when the directory is taken."""
    with StateDirLock(tmp_path):
        err = io.StringIO()
        # flock locks belong to the open file description: a second open in-process conflicts.
        assert hold_state_dir(tmp_path, err) is None
        assert err.getvalue().count("\n") == 1 and err.getvalue().startswith("opsmon: ")
        assert f"pid {os.getpid()}" in err.getvalue()


def test_unwritable_state_dir_runs_unlocked(tmp_path: Path) -> None:
    """A state_dir that cannot hold the lock file does not stop the daemon (it is logged)."""
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    lock = hold_state_dir(blocked / "state", io.StringIO())
    assert lock is not None
    with lock:
        pass

"""One daemon per state_dir: an exclusive flock on `state_dir/opsmon.lock`, held for the process.

Two daemons on one state directory both deliver the same outbox (one incident, several posts
with different notification ids). The lock is advisory (flock), taken before anything reads
the state, and released by the kernel when the process ends however it ends, so a crashed
daemon never leaves a stale lock behind. The file holds the holder's pid for the message the
second daemon prints; the pid is informative only, the flock is the truth.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path
from typing import TextIO

from monitor.logs import get_logger

LOCK_FILE = "opsmon.lock"


class StateDirLocked(Exception):
    """Another process holds the state directory's lock."""

    def __init__(self, state_dir: Path, holder: int | None) -> None:
        who = f"pid {holder}" if holder is not None else "another process"
        super().__init__(
            f"another opsmon daemon ({who}) is already running on state_dir {state_dir}; "
            "stop it first or give this one its own state_dir"
        )
        self.state_dir = state_dir
        self.holder = holder


class StateDirLock:
    """The exclusive lock on one state directory: `acquire` once, `close` to give it up."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise StateDirLocked naming the holder; OSError if it cannot be made."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateDirLocked(self.state_dir, holder) from None
            raise
        self._fd = fd
        # Best effort: a full disk must not stop a daemon that holds the lock from running.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def close(self) -> None:
        """Give the lock up (the kernel does it too when the process ends)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StateDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def hold_state_dir(
    state_dir: Path, err: TextIO
) -> contextlib.AbstractContextManager[object] | None:
    """The daemon's lock on `state_dir` (a context manager), or None after printing why not.

    Held by another daemon: one line naming its pid, and None (the caller exits 2). The lock
    file cannot be made at all (a read-only or missing volume): logged, and the daemon runs
    unlocked, because refusing to monitor is worse than the duplicate risk; the state store
    reports its own failure to write.
    """
    lock = StateDirLock(state_dir)
    try:
        lock.acquire()
    except StateDirLocked as exc:
        print(f"opsmon: {exc}", file=err)
        get_logger("statelock").error("state_dir_locked", state_dir=str(state_dir), pid=exc.holder)
        return None
    except OSError as exc:
        get_logger("statelock").warning(
            "state_dir_lock_unavailable", state_dir=str(state_dir), error=exc.strerror
        )
        return contextlib.nullcontext()
    return contextlib.closing(lock)

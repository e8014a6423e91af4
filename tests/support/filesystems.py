"""Real small filesystems for disk faults: a tmpfs of a few MiB that a test fills up and frees."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.environment import missing

_CHUNK = 64 * 1024


class SmallFilesystem:
    """A mounted tmpfs; `fill` takes every free byte, `free` gives them back."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._filler = root / "filler.bin"

    def free_bytes(self) -> int:
        """Bytes still free on the filesystem."""
        return shutil.disk_usage(self.root).free

    def fill(self) -> int:
        """Write zeros until the filesystem says ENOSPC; returns how many bytes were written."""
        written = 0
        block = b"\0" * _CHUNK
        with self._filler.open("ab", buffering=0) as out:
            size = _CHUNK
            while size:
                try:
                    written += out.write(block[:size])
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    size //= 2  # top off the last partial blocks too
        return written

    def free(self) -> None:
        """Delete the filler: the space is back."""
        self._filler.unlink(missing_ok=True)


@contextmanager
def small_tmpfs(size: str = "4m") -> Iterator[SmallFilesystem]:
    """A tmpfs of `size` mounted on a fresh folder (needs root: skips locally, fails in CI)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        missing("root and mount(8) for a small tmpfs")
    folder = Path(tempfile.mkdtemp(prefix="opsmon-fs-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        folder.rmdir()
        missing(f"mounting a tmpfs ({mounted.stderr.strip()})")
    try:
        yield SmallFilesystem(folder)
    finally:
        # Lazy: a process the test started may still hold a file open for a moment.
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)
        folder.rmdir()

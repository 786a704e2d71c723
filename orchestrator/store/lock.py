"""One sweep per output folder: an exclusive lock held for the sweep's whole life."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.errors import RunnerError
from orchestrator.store.paths import OutputLayout


class FolderLocked(RunnerError):
    """Another sweep is writing the same output folder."""


@contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold the output folder's lock file; the kernel releases it if the process dies."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = OutputLayout(out_dir).lock
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().strip() or "another process"
            raise FolderLocked(
                f"{out_dir} is in use by another sweep ({holder}); wait for it or use "
                "another --output-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        yield
    finally:
        os.close(fd)

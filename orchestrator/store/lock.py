"""Exclusive locks: one writer of an output folder, one writer of a report folder.

A sweep or a single run holds its output folder; a report holds its report folder (it may read
the runs while a sweep writes them). The kernel releases a lock when its process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.errors import RunnerError
from orchestrator.store.paths import OutputLayout, ReportLayout


class FolderLocked(RunnerError):
    """Another process is writing the same folder."""


@contextmanager
def _exclusive(path: Path, folder: Path, what: str) -> Iterator[None]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # before anything starts: one line, exit 2
        raise RunnerError(f"{folder}: cannot write here ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().strip() or "another process"
            raise FolderLocked(
                f"{folder} is in use by {what} ({holder}); wait for it or use another folder"
            ) from None
        with contextlib.suppress(OSError):  # who holds it is only information (a full disk)
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()}: {' '.join(sys.argv[:2])}".encode())
        yield
    finally:
        os.close(fd)


@contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold the output folder for a sweep or a single run: no other may write it meanwhile."""
    with _exclusive(OutputLayout(out_dir).lock, out_dir, "another sweep or run"):
        yield


@contextmanager
def report_lock(report: ReportLayout) -> Iterator[None]:
    """Hold a report folder while its files are written (reading runs needs no lock)."""
    with _exclusive(report.lock, report.folder, "another report"):
        yield

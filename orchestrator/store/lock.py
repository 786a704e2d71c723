"""Exclusive locks: one writer of an output folder, one writer of a report folder.

A sweep or a single run holds its output folder; a report holds its report folder (it may read
the runs while a sweep writes them). The kernel releases a lock when its process dies; the lock
file goes with its holder's release (one left by a killed process is simply locked again).
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


def _open_locked(path: Path, folder: Path, what: str) -> int:
    """A descriptor of ``path`` holding its lock; raises ``FolderLocked`` when another holds it.

    A holder unlinks the file as it lets go: a lock taken on a file no longer at ``path`` holds
    nothing (a newer locker may have created and locked another), so it is let go and taken again.
    """
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # before anything starts: one line, exit 2
            raise RunnerError(f"{folder}: cannot write here ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            try:
                holder = path.read_text().strip()
            except OSError:  # let go and unlinked meanwhile: still in use a moment ago
                holder = ""
            raise FolderLocked(
                f"{folder} is in use by {what} ({holder or 'another process'}); "
                "wait for it or use another folder"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = _same_file(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@contextmanager
def _exclusive(path: Path, folder: Path, what: str) -> Iterator[None]:
    fd = _open_locked(path, folder, what)
    try:
        with contextlib.suppress(OSError):  # who holds it is only information (a full disk)
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()}: {' '.join(sys.argv[:2])}".encode())
        yield
    finally:
        # Unlinked while still locked, so it is this holder's file that goes (and only if the
        # path still names it: never a newer holder's); a locker that opened it meanwhile finds
        # it no longer at the path and takes the lock again. Local file systems: over NFS the
        # path's identity may be stale.
        with contextlib.suppress(OSError):
            if _same_file(os.fstat(fd), os.stat(path)):
                path.unlink()
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

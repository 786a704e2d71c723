"""Progress of a sweep: a live rich view on a terminal, plain log lines elsewhere."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

log = logging.getLogger(__name__)


class LogProgress:
    """One log line per event (cron, CI, pipes)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._done = self._total = 0
        self._t0 = 0.0

    def start(self, total: int) -> None:
        self._total, self._t0 = total, self._clock()
        log.info("sweep: %d runs to do", total)

    def started(self, slot: str, name: str) -> None:
        log.info("[%d/%d] %s started on %s", self._done, self._total, name, slot)

    def finished(self, slot: str, name: str, status: str) -> None:
        self._done += 1
        elapsed = self._clock() - self._t0
        eta = elapsed / self._done * (self._total - self._done)
        log.info(
            "[%d/%d] %s %s on %s (elapsed %.0f s, ETA %.0f s)",
            self._done,
            self._total,
            name,
            status,
            slot,
            elapsed,
            eta,
        )

    def stop(self) -> None:
        pass


class RichProgress:
    """A progress bar (done / total, elapsed, ETA) and what each slot is running."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._bar = Progress(
            TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=console,
        )  # fmt: skip
        self._task = self._bar.add_task("runs", total=0)
        self._slots: dict[str, str] = {}
        self._lock = threading.Lock()
        self._live = Live(self._render(), console=console, refresh_per_second=4, transient=False)

    def _render(self) -> Group:
        lines = [Text(f"  {slot}: {name}") for slot, name in sorted(self._slots.items())]
        return Group(self._bar, *lines)

    def start(self, total: int) -> None:
        self._bar.update(self._task, total=total)
        self._live.start()

    def started(self, slot: str, name: str) -> None:
        with self._lock:
            self._slots[slot] = name
            self._live.update(self._render())

    def finished(self, slot: str, name: str, status: str) -> None:
        with self._lock:
            self._slots.pop(slot, None)
            self._bar.advance(self._task)
            self._console.log(f"{name}: {status}")
            self._live.update(self._render())

    def stop(self) -> None:
        self._live.stop()


def make_progress(console: Console, quiet: bool) -> LogProgress | RichProgress:
    """Rich on a terminal (unless quiet), log lines otherwise."""
    if console.is_terminal and not quiet:
        return RichProgress(console)
    return LogProgress()

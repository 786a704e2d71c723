"""How a run ends when it is told to: SIGTERM, or a sweep that is gone.

SIGTERM (``docker stop``, the local runner's stop, a cluster's preemption) raises ``Stopped`` in
the main thread, so the run writes its failure report and exits ``INTERRUPTED`` like Ctrl-C.

A run whose standard output is a pipe that closes (the local runner's sweep was killed) stops
too, instead of failing later on a write with an error that names something else.

A run started by a sweep also watches the sweep's heartbeat: a file in its results folder that
the sweep touches while it waits. When the file stays still for ``HEARTBEAT_ENV`` seconds, the
sweep was killed outright (SIGKILL, a lost host session) and the run stops itself instead of
measuring on, unseen, beside the next sweep's runs.
"""

from __future__ import annotations

import _thread
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from energy_bench import contract
from energy_bench.errors import Stopped

log = logging.getLogger(__name__)

EXIT_AFTER_S = 30.0  # when the main thread does not answer a stop (stuck in native code)
_reason = "stopped (SIGTERM)"


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Stopped(_reason)


def handle_sigterm() -> None:
    """SIGTERM raises ``Stopped`` in the main thread."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def stop_main(reason: str) -> None:
    """Stop the main thread with ``Stopped(reason)``; end the process if it does not stop."""
    global _reason
    _reason = reason
    log.error("%s", reason)
    _thread.interrupt_main(signal.SIGTERM)
    time.sleep(EXIT_AFTER_S)
    log.error("the run did not stop within %.0f s; exiting", EXIT_AFTER_S)
    os._exit(int(contract.ExitCode.INTERRUPTED))


class _Output:
    """A standard stream whose reader may vanish (a sweep killed outright held the pipe).

    The first write into a closed pipe points both standard streams at /dev/null, so that no
    later write fails inside model loading or a measured pass (where it would pass for another
    error), and stops the run: whoever started it is gone.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            _output_lost()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            _output_lost()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_lost = threading.Event()


def _output_lost() -> None:
    if _lost.is_set():
        return
    _lost.set()
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(null, fd)
    os.close(null)
    reason = "stopped: the sweep that started this run is gone (its output pipe closed)"
    threading.Thread(target=stop_main, args=(reason,), name="output lost", daemon=True).start()


def guard_output() -> None:
    """Standard output and error survive a reader that is gone, and stop the run then."""
    sys.stdout = _Output(sys.stdout)  # type: ignore[assignment]
    sys.stderr = _Output(sys.stderr)  # type: ignore[assignment]


def heartbeat_limit() -> float | None:
    """Seconds of silence after which the sweep counts as gone (None: not watched)."""
    text = os.environ.get(contract.HEARTBEAT_ENV, "").strip()
    try:
        limit = float(text) if text else None
    except ValueError:
        return None
    return limit if limit and limit > 0 else None


def watch_heartbeat(results_dir: Path, limit_s: float) -> threading.Thread:
    """Stop the run when ``results_dir``'s heartbeat file stays still for ``limit_s`` seconds."""
    path = results_dir / contract.HEARTBEAT_FILE

    def stamp() -> int | None:
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return None

    def watch() -> None:
        # Only a change of the file's time counts, timed on this process's own monotonic clock:
        # the writer's clock (a file server's, a host's after a jump) is never compared to ours.
        seen, changed = stamp(), time.monotonic()
        while True:
            time.sleep(min(limit_s / 4, 5.0))
            now = stamp()
            if now != seen:
                seen, changed = now, time.monotonic()
            if time.monotonic() - changed > limit_s:
                stop_main(f"stopped: the sweep that started this run is gone (no heartbeat "
                          f"for {limit_s:g} s)")  # fmt: skip
                return

    thread = threading.Thread(target=watch, name="heartbeat", daemon=True)
    thread.start()
    return thread

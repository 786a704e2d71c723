"""The runner seam (``Runner``) and what every runner shares: the redacting log pump.

A runner launches the benchmark for one spec, streams its output into the run's log file,
enforces the timeout, always cleans up, and classifies how the run ended.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO, Protocol

from orchestrator.execution.spec import RunOutcome, RunSpec
from orchestrator.secrets import Redactor


class Runner(Protocol):
    """Launches one run and returns its outcome (never raises for a failed run)."""

    name: str

    def run(self, spec: RunSpec, *, token: str | None = None) -> RunOutcome: ...

    def software_id(self, image: str) -> str:
        """What names the software a run gets (an image's ID, a package's digest).

        It changes when anything that could change a result changes, and enters every run id.
        """

    def cancel(self) -> None:
        """Stop every run this runner has in progress (from another thread)."""

    def remove_leftovers(self, out_dir: Path) -> int:
        """Remove what runs into ``out_dir`` left behind when their sweep died; how many."""


class LogPump:
    """Copies a process's output into the run's log, redacted and line by line, keeping a tail.

    Whole lines are redacted, so a secret split across two reads is still caught.
    """

    TAIL_BYTES = 16_384

    def __init__(self, log: IO[bytes], redact: Redactor) -> None:
        self._log, self._redact = log, redact
        self._pending = b""
        self._tail = bytearray()
        self._lock = threading.Lock()
        self.write_error: OSError | None = None  # the log could not be written (a full disk)

    def feed(self, chunk: bytes) -> None:
        with self._lock:
            data = self._pending + chunk
            cut = data.rfind(b"\n") + 1
            self._pending = data[cut:]
            if cut:
                self._emit(data[:cut])

    def close(self) -> None:
        with self._lock:
            if self._pending:
                self._emit(self._pending + b"\n")
                self._pending = b""
            if self.write_error is None:
                try:
                    self._log.flush()
                except OSError as exc:
                    self.write_error = exc

    def _emit(self, data: bytes) -> None:
        clean = self._redact.bytes(data)
        if self.write_error is None:
            try:
                self._log.write(clean)
                self._log.flush()
            except OSError as exc:  # a full disk: keep draining the run's output, keep its tail
                self.write_error = exc
        self._tail += clean
        del self._tail[: -self.TAIL_BYTES]

    def tail(self) -> str:
        with self._lock:
            return bytes(self._tail).decode("utf-8", "replace")

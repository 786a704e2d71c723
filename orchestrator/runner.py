"""What one run is (``RunSpec``), how it ended (``RunOutcome``), and the runner seam.

A runner launches the container benchmark for one spec, streams its output into the run's log
file, enforces the timeout, always cleans up, and classifies how the run ended.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Protocol

from orchestrator.secrets import Redactor


class Cause(StrEnum):
    """Why a run ended; drives retries and the ``error_message`` column."""

    OK = "ok"
    TIMEOUT = "timeout"
    KILLED = "killed"
    OUT_OF_MEMORY = "out_of_memory"
    IMAGE_MISSING = "image_missing"
    GATED_MODEL = "gated_model"
    MODEL_NOT_FOUND = "model_not_found"
    MODEL_LOAD_ERROR = "model_load_error"
    CONFIG_ERROR = "config_error"
    ABORTED = "aborted"
    NO_ENERGY_SOURCE = "no_energy_source"
    INTERRUPTED = "interrupted"
    RUNNER_ERROR = "runner_error"
    FAILED = "failed"


TRANSIENT = frozenset({Cause.RUNNER_ERROR, Cause.KILLED})
"""Causes worth a retry; OOM, gated or missing models and bad configs never are."""


@dataclass(frozen=True)
class RunSpec:
    """Everything a runner needs to launch one benchmark run.

    ``overrides`` are the benchmark's ``key=value`` arguments, with host paths.
    ``read_only_paths`` are host files or folders the run reads (a local model, a prompts file);
    the docker runner mounts them read-only at the same path.
    """

    run_id: str
    overrides: tuple[str, ...]
    results_dir: Path
    log_path: Path
    gpu_uuids: tuple[str, ...] = ()
    timeout_s: float | None = None
    image: str = ""
    hf_cache_dir: Path | None = None
    read_only_paths: tuple[Path, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunOutcome:
    """How one launch ended."""

    cause: Cause
    exit_code: int | None
    duration_s: float
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.cause is Cause.OK


class Runner(Protocol):
    """Launches one run and returns its outcome (never raises for a failed run)."""

    name: str

    def run(self, spec: RunSpec, *, token: str | None = None) -> RunOutcome: ...

    def cancel(self) -> None:
        """Stop every run this runner has in progress (from another thread)."""


BENCH_ERROR = re.compile(r"energy_bench: error: (?P<type>\w+): (?P<message>.*)")
EXIT_CAUSES = {
    2: Cause.CONFIG_ERROR,
    4: Cause.OUT_OF_MEMORY,
    5: Cause.ABORTED,
    6: Cause.NO_ENERGY_SOURCE,
    130: Cause.INTERRUPTED,
    137: Cause.KILLED,
}


def classify_exit(exit_code: int, log_tail: str, *, oom_killed: bool = False) -> RunOutcome:
    """The cause and a one-line message for a finished process (duration filled in later)."""
    found = BENCH_ERROR.findall(log_tail)
    detail = f"{found[-1][0]}: {found[-1][1]}" if found else _last_line(log_tail)
    if exit_code == 0:
        return RunOutcome(Cause.OK, 0, 0.0)
    if oom_killed:
        return RunOutcome(
            Cause.OUT_OF_MEMORY, exit_code, 0.0, "killed by the kernel: out of host memory"
        )
    if exit_code == 3:
        text = detail.lower()
        if "gated" in text or "401" in text or "403" in text:
            return RunOutcome(Cause.GATED_MODEL, 3, 0.0, detail)
        if "404" in text or "not found" in text:
            return RunOutcome(Cause.MODEL_NOT_FOUND, 3, 0.0, detail)
        return RunOutcome(Cause.MODEL_LOAD_ERROR, 3, 0.0, detail)
    cause = EXIT_CAUSES.get(exit_code, Cause.FAILED)
    if cause is Cause.KILLED:
        detail = "killed (SIGKILL, exit 137)" + (f"; last output: {detail}" if detail else "")
    return RunOutcome(cause, exit_code, 0.0, detail or f"exit status {exit_code}")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


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
            self._log.flush()

    def _emit(self, data: bytes) -> None:
        clean = self._redact.bytes(data)
        self._log.write(clean)
        self._log.flush()
        self._tail += clean
        del self._tail[: -self.TAIL_BYTES]

    def tail(self) -> str:
        with self._lock:
            return bytes(self._tail).decode("utf-8", "replace")

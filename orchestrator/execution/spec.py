"""What one run is (``RunSpec``) and how it ended (``RunOutcome``, ``Cause``).

A finished benchmark process is classified from its exit status, one of the codes of
``energy_bench.contract``.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from energy_bench.contract import CONFIG_NAME, ExitCode, parse_error_line


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
    NODE_LOST = "node_lost"  # the cluster node running it died or left
    SERVER_UNAVAILABLE = "server_unavailable"  # the serving backend's endpoint did not answer
    DISK_FULL = "disk_full"
    PERMISSION_DENIED = "permission_denied"
    FAILED = "failed"


TRANSIENT = frozenset({Cause.RUNNER_ERROR, Cause.KILLED, Cause.NODE_LOST, Cause.SERVER_UNAVAILABLE})
"""Causes worth a retry; OOM, gated or missing models and bad configs never are."""


@dataclass(frozen=True)
class RunSpec:
    """Everything a runner needs to launch one benchmark run.

    ``overrides`` are the benchmark's ``key=value`` arguments, with host paths. ``output_dir`` is
    the sweep's output folder that the run belongs to (runners label what they start with it).
    ``cpus`` are the cores the run may use (all of them when empty).
    ``read_only_paths`` are host files or folders the run reads (a local model, a prompts file);
    the docker runner mounts them read-only at the same path. ``gpu_count`` is how many GPUs
    the run gets: those of ``gpu_uuids`` where the sweep chose them, else the count an executor
    reserves elsewhere (a Ray cluster picks the node and its GPUs). ``measures_server``: the
    run sends its prompts to a server and reads the energy of ``gpu_uuids``, the server's GPUs,
    without computing on them. ``config_name`` is the benchmark config the run starts from
    (``contract.CONFIG_NAMES``: text or image generation).
    """

    run_id: str
    overrides: tuple[str, ...]
    output_dir: Path
    results_dir: Path
    log_path: Path
    gpu_uuids: tuple[str, ...] = ()
    cpus: tuple[int, ...] = ()
    timeout_s: float | None = None
    image: str = ""
    hf_cache_dir: Path | None = None
    read_only_paths: tuple[Path, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    gpu_count: int = 0
    measures_server: bool = False
    config_name: str = CONFIG_NAME


@dataclass(frozen=True)
class Placement:
    """Where one attempt ran: the machine, the Ray node (none on this host), the GPUs it got."""

    host: str
    node_id: str = ""
    gpu_uuids: tuple[str, ...] = ()

    def __str__(self) -> str:
        host = self.host or "unknown host"
        if self.node_id:
            return f"{host} (Ray node {self.node_id})"
        return self.host or "unknown node"


@dataclass(frozen=True)
class RunOutcome:
    """How one launch ended (``placement``: where, when the runner knows better than the host)."""

    cause: Cause
    exit_code: int | None
    duration_s: float
    message: str = ""
    placement: Placement | None = None

    @property
    def ok(self) -> bool:
        return self.cause is Cause.OK


EXIT_CAUSES: Mapping[ExitCode, Cause] = {
    ExitCode.FAILED: Cause.FAILED,
    ExitCode.CONFIG_ERROR: Cause.CONFIG_ERROR,
    ExitCode.MODEL_LOAD_ERROR: Cause.MODEL_LOAD_ERROR,
    ExitCode.OUT_OF_MEMORY: Cause.OUT_OF_MEMORY,
    ExitCode.ABORTED: Cause.ABORTED,
    ExitCode.NO_ENERGY_SOURCE: Cause.NO_ENERGY_SOURCE,
    ExitCode.GATED_MODEL: Cause.GATED_MODEL,
    ExitCode.MODEL_NOT_FOUND: Cause.MODEL_NOT_FOUND,
    ExitCode.SERVER_UNAVAILABLE: Cause.SERVER_UNAVAILABLE,
    ExitCode.INTERRUPTED: Cause.INTERRUPTED,
}
"""Every failing exit status of the benchmark, and what it means to the sweep."""
SIGKILL_STATUS = 137  # 128 + SIGKILL, as a shell and Docker report a killed process


def classify_exit(exit_code: int, log_tail: str, *, oom_killed: bool = False) -> RunOutcome:
    """The cause and a one-line message for a finished process (duration filled in later)."""
    found = parse_error_line(log_tail)
    detail = f"{found[0]}: {found[1]}" if found else _last_line(log_tail)
    if exit_code == ExitCode.OK:
        return RunOutcome(Cause.OK, 0, 0.0)
    if oom_killed:
        return RunOutcome(
            Cause.OUT_OF_MEMORY, exit_code, 0.0, "killed by the kernel: out of host memory"
        )
    if exit_code == SIGKILL_STATUS:
        detail = "killed (SIGKILL, exit 137)" + (f"; last output: {detail}" if detail else "")
        return RunOutcome(Cause.KILLED, exit_code, 0.0, detail)
    try:
        cause = EXIT_CAUSES[ExitCode(exit_code)]
    except (ValueError, KeyError):  # a status the benchmark never sets itself
        cause = Cause.FAILED
    number = _ERRNO.search(detail) if cause is Cause.FAILED else None
    if number:  # the benchmark could not write its results: say why in the cause
        cause = FILESYSTEM_CAUSES.get(int(number.group(1)), cause)
    return RunOutcome(cause, exit_code, 0.0, detail or f"exit status {exit_code}")


FILESYSTEM_CAUSES = {
    errno.ENOSPC: Cause.DISK_FULL,
    errno.EDQUOT: Cause.DISK_FULL,
    errno.EACCES: Cause.PERMISSION_DENIED,
    errno.EPERM: Cause.PERMISSION_DENIED,
    errno.EROFS: Cause.PERMISSION_DENIED,
}
_ERRNO = re.compile(r"\[Errno (\d+)\]")


def filesystem_cause(error: OSError) -> Cause:
    """``disk_full`` or ``permission_denied`` for a file-system error, else ``runner_error``."""
    return FILESYSTEM_CAUSES.get(error.errno or 0, Cause.RUNNER_ERROR)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""

"""The host's GPU inventory through NVML (the only importer of pynvml on the host side)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import RunnerError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gpu:
    """One GPU as the sweep sees it."""

    index: int
    uuid: str
    name: str
    memory_total_gib: float
    busy_pids: tuple[int, ...] = ()

    @property
    def busy(self) -> bool:
        return bool(self.busy_pids)


def inventory() -> list[Gpu]:
    """Every NVIDIA GPU of this host, or an empty list when there is no driver or no GPU."""
    try:
        import pynvml as nvml
    except ImportError:
        return []
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        log.debug("no NVIDIA GPUs: %s", exc)
        return []
    own = os.getpid()
    try:
        gpus = []
        for i in range(nvml.nvmlDeviceGetCount()):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            pids = tuple(
                p.pid for p in nvml.nvmlDeviceGetComputeRunningProcesses(h) if p.pid != own
            )
            gpus.append(
                Gpu(
                    index=i,
                    uuid=nvml.nvmlDeviceGetUUID(h),
                    name=nvml.nvmlDeviceGetName(h),
                    memory_total_gib=nvml.nvmlDeviceGetMemoryInfo(h).total / 2**30,
                    busy_pids=pids,
                )
            )
        return gpus
    finally:
        nvml.nvmlShutdown()


def usable(wanted: str | None) -> list[Gpu]:
    """The GPUs runs may use (``--gpus``, busy ones skipped); none only on a host without GPUs.

    A host whose every GPU is busy is an error: falling back to the CPU would measure, under
    another run id, what belongs on these GPUs.
    """
    listed = inventory()
    gpus = select(listed, wanted)
    if wanted and not gpus:
        raise RunnerError(f"--gpus {wanted}: no usable GPU")
    if listed and not gpus:
        raise RunnerError(
            f"every GPU of this host runs other processes ({len(listed)} listed); "
            "wait for them (a sweep killed a moment ago? its runs stop within a minute), or "
            "name GPUs with --gpus"
        )
    return gpus


def select(gpus: Sequence[Gpu], wanted: str | None, *, skip_busy: bool = True) -> list[Gpu]:
    """The GPUs named by ``--gpus`` (indices or UUIDs, comma-separated), busy ones skipped."""
    chosen = list(gpus)
    if wanted:
        keys = [w.strip() for w in wanted.split(",") if w.strip()]
        by_key = {str(g.index): g for g in gpus} | {g.uuid.lower(): g for g in gpus}
        missing = [k for k in keys if k.lower() not in by_key]
        if missing:
            known = ", ".join(f"{g.index} ({g.uuid})" for g in gpus) or "none"
            raise RunnerError(f"--gpus: unknown GPU {', '.join(missing)}; this host has {known}")
        chosen = list({id(g): g for g in (by_key[k.lower()] for k in keys)}.values())  # once each
    if not skip_busy:
        return chosen
    free = []
    for gpu in chosen:
        if gpu.busy:
            log.warning(
                "GPU %d (%s) runs other processes %s: not used",
                gpu.index,
                gpu.uuid,
                list(gpu.busy_pids),
            )
        else:
            free.append(gpu)
    return free


def server_gpus(wanted: str | None) -> list[Gpu]:
    """The GPUs a served run measures: ``--gpus`` (busy, as a server's are), else every one."""
    listed = inventory()
    if not wanted and listed:
        log.warning(
            "--backend vllm measures every GPU of this host (%s): name the server's with --gpus",
            ", ".join(str(g.index) for g in listed),
        )
    return select(listed, wanted, skip_busy=False)

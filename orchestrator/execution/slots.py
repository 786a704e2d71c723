"""The pool a sweep schedules onto: a slot per GPU (or logical CPU slots), each with its cores.

The host's cores are split evenly between the slots, so that runs side by side on different GPUs
do not share cores: the eager harness is bound by the CPU that launches its kernels, and two runs
on shared cores disturb each other's energy even on separate GPUs. A run that takes several
slots gets the cores of all of them. A slot also knows the memory a run on it may fill: its GPU's,
or for a CPU slot the machine's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.execution.gpus import Gpu


@dataclass(frozen=True)
class Slot:
    """A unit of the pool: a GPU (by UUID), or a logical CPU slot on a host without GPUs.

    ``memory_bytes``: the GPU's memory, or the machine's for a CPU slot (shared by every CPU
    slot); None when unknown. ``cluster``: a GPU of a Ray cluster, counted but not chosen here
    (the cluster picks the node and the GPU when the run starts).
    """

    label: str
    uuid: str | None = None
    gpu_name: str = "cpu"
    cpus: tuple[int, ...] = ()
    memory_bytes: int | None = None
    cluster: bool = False

    @property
    def gpu(self) -> bool:
        """A GPU (of this host or of a cluster), not a CPU slot: runs take one per GPU needed."""
        return self.uuid is not None or self.cluster


def host_cpus() -> list[int]:
    """The cores this process may use."""
    return sorted(os.sched_getaffinity(0))


def host_memory_bytes() -> int | None:
    """The machine's physical memory, or None where the system does not tell."""
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None
    return memory if memory > 0 else None


def split_cpus(cpus: Sequence[int], parts: int) -> list[tuple[int, ...]]:
    """``cpus`` in ``parts`` contiguous shares of (nearly) equal size, each at least one core.

    With fewer cores than parts, shares repeat cores: isolation is then impossible, and every
    share still gets a core.
    """
    cpus = list(cpus)
    if parts <= 0:
        return []
    if len(cpus) < parts:
        return [(cpus[i % len(cpus)],) for i in range(parts)]
    size, extra = divmod(len(cpus), parts)
    shares, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        shares.append(tuple(cpus[start:end]))
        start = end
    return shares


def gpu_slots(
    uuids: Sequence[str],
    names: Sequence[str] | None = None,
    cpus: Sequence[int] | None = None,
    *,
    memory_bytes: Sequence[int | None] | None = None,
) -> list[Slot]:
    """A slot per GPU, each with its share of the host's cores and its memory (if known)."""
    names = names or ["GPU"] * len(uuids)
    memories = memory_bytes or [None] * len(uuids)
    shares = split_cpus(host_cpus() if cpus is None else cpus, len(uuids))
    return [
        Slot(f"GPU {i}", u, n, share, memory)
        for i, (u, n, share, memory) in enumerate(zip(uuids, names, shares, memories, strict=True))
    ]


def cpu_slots(count: int, cpus: Sequence[int] | None = None) -> list[Slot]:
    """Logical slots for a host without GPUs, each with its share of the cores."""
    shares = split_cpus(host_cpus() if cpus is None else cpus, count)
    memory = host_memory_bytes()
    return [
        Slot(f"CPU slot {i}", cpus=share, memory_bytes=memory) for i, share in enumerate(shares)
    ]


def host_slots(gpus: Sequence[Gpu], cpu_runs: int = 1) -> list[Slot]:
    """A slot per usable GPU (with its memory), else ``cpu_runs`` CPU slots."""
    if gpus:
        memory = [round(g.memory_total_gib * 2**30) for g in gpus]
        return gpu_slots([g.uuid for g in gpus], [g.name for g in gpus], memory_bytes=memory)
    return cpu_slots(cpu_runs)


def describe(slots: Sequence[Slot]) -> str:
    """The slots in words: each label, with its GPU's UUID."""
    return ", ".join(s.label + (f" ({s.uuid})" if s.uuid else "") for s in slots)

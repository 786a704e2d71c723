"""The executor seam: where a sweep's runs execute.

The plan, run ids, resume, retries, records, master CSV and reports are one code path for every
executor (``scheduler``, ``execute``). An executor only says where runs go: the runner that
``execute`` calls, the slots the scheduler fills, which runs can fit nowhere, and the GPU model
and software that enter every run id.

- ``local`` (``executors.local``): this host's GPUs, one slot each, or CPU slots without GPUs.
- ``ray`` (``executors.ray_cluster``): the GPUs of a Ray cluster, one Ray task per attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.execution.runners.base import Runner
from orchestrator.execution.slots import Slot
from orchestrator.planning.plan import RunPlan

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Executor:
    """Where a sweep's runs execute.

    ``misfit`` says why a plan can run nowhere here ("" when it can); ``hardware`` is the GPU
    model (or ``cpu``) and ``software_id`` the software every run gets; ``hf_home`` the
    Hugging Face home runs get (None: each runner's own); ``where`` says it in words for the
    log and the dry run; ``close`` lets go of what the executor holds. ``measured_gpus``: the
    UUIDs of a server's GPUs that served runs measure (``--backend vllm``).
    """

    name: str
    runner: Runner
    slots: tuple[Slot, ...]
    misfit: Callable[[RunPlan], str]
    hardware: str
    software_id: str
    where: str
    hf_home: Path | None = None
    close: Callable[[], None] = lambda: None
    measured_gpus: tuple[str, ...] = ()

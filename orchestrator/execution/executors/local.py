"""The ``local`` executor: this host's usable GPUs, a slot each (CPU slots on a host without)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from orchestrator.execution.executors.base import Executor
from orchestrator.execution.fit import misfit
from orchestrator.execution.gpus import server_gpus, usable
from orchestrator.execution.runners.choice import RunnerName, hf_cache_for, make_runner
from orchestrator.execution.slots import describe, host_slots


def local_executor(
    runner_name: RunnerName,
    image: str,
    *,
    gpus: str | None,
    cpu_runs: int,
    hf_cache: Path | None,
    serving: bool = False,
) -> Executor:
    """The executor of this host.

    ``gpus``: the ``--gpus`` selection; ``cpu_runs``: CPU slots on a host without GPUs.
    ``serving``: the runs send their prompts to a server and compute on no GPU: one slot, so
    that they go one at a time, and ``gpus`` names the server's GPUs they measure.
    """
    measured = tuple(server_gpus(gpus)) if serving else ()
    slots = tuple(host_slots([] if serving else usable(gpus), 1 if serving else cpu_runs))
    runner = make_runner(runner_name, image)
    hf_home = hf_cache_for(runner, hf_cache)
    return Executor(
        name="local",
        runner=runner,
        slots=slots,
        misfit=partial(misfit, slots=slots, hf_home=hf_home),
        hardware=measured[0].name if measured else slots[0].gpu_name if slots else "cpu",
        software_id=runner.software_id(image),
        where=f"served runs one at a time, measuring {len(measured)} GPU(s)"
        if serving
        else describe(slots),
        hf_home=hf_home,
        measured_gpus=tuple(g.uuid for g in measured),
    )

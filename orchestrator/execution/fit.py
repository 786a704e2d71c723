"""Whether this host can run a plan at all: the GPUs it needs, the memory its weights fill.

A run that cannot fit is skipped with the reason, in numbers, by the sweep and its dry run alike
(``triage``), and ``--force`` does not change that: it reruns complete runs, not impossible ones.

On GPUs, a run needs as many usable GPUs as its plan names, and weights no larger than the memory
of the GPUs it would get. On a host without GPUs, runs go to the CPU and the machine's memory:
weights larger than it cannot load. A run planned for several GPUs (class C) is skipped there
too: its plan, run id and benchmark settings are those of a run across GPUs, and a host with
one GPU already skips it. ``--class-c-gpus 1`` makes it a one-device run the CPU can take.
The check uses the memory itself, with no margin: weights larger than it can never load, and
below that only the run can tell (activations, cache, the memory others use).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from orchestrator.execution.slots import Slot
from orchestrator.planning.plan import RunPlan
from orchestrator.planning.weights import gib_text, weight_size


def misfit(plan: RunPlan, slots: Sequence[Slot], *, hf_home: Path | None = None) -> str:
    """Why this host's ``slots`` cannot run ``plan`` ("" when they can, or cannot tell).

    ``hf_home``: the Hugging Face home the runs get (``--hf-cache``), where sizes are looked up.
    """
    if plan.serving is not None:  # the server holds the model
        return ""
    need = plan.gpus_needed
    on_gpus = any(s.uuid for s in slots)
    if on_gpus and need > len(slots):
        return f"needs {need} GPUs; {len(slots)} usable on this host"
    # Without GPUs the memory comes first: its numbers tell more than a count of missing GPUs.
    memory = _memory(slots, need) if on_gpus else _machine(slots)
    if memory is not None:
        size = weight_size(plan, hf_home=hf_home)
        if size is not None and size.size_bytes > memory[0]:
            return f"needs {size}; {memory[1]}"
    if not on_gpus and need > 1:
        return f"needs {need} GPUs; this host has none (--class-c-gpus 1 runs it on the CPU)"
    return ""


def _memory(slots: Sequence[Slot], need: int) -> tuple[int, str] | None:
    """The most memory ``need`` of these GPUs hold together, and how to say it; None: unknown."""
    known = [s.memory_bytes for s in slots if s.memory_bytes is not None]
    if len(known) < len(slots):
        return None
    total = sum(sorted(known, reverse=True)[:need])
    gpus = "1 GPU here has" if need == 1 else f"{need} GPUs here have"
    return total, f"{gpus} {gib_text(total)} GiB"


def _machine(slots: Sequence[Slot]) -> tuple[int, str] | None:
    """The machine's memory, which every CPU slot shares; None: unknown."""
    memory = slots[0].memory_bytes if slots else None
    if memory is None:
        return None
    return memory, f"this machine has {gib_text(memory)} GiB"

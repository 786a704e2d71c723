"""Which pending runs start now: longest first, with backfilling that never delays the head.

Each run's expected duration is the one measured the last time the same run id ran on the same
GPU model, else an estimate from its size: parameters (from the model id, or its class) x prompts
x token budget, scaled by what earlier runs of the sweep's folder took per unit of that work.

The longest pending run is the head. When it cannot start for lack of free slots, shorter runs
may start in front of it only if they are expected to end before enough slots free up for the
head, or if they use slots the head will not need then (EASY backfilling). So a class C run that
needs every GPU is not starved by a stream of class A runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator.models.config import ModelClass
from orchestrator.planning.plan import DEFAULT_PROMPTS, RunPlan
from orchestrator.planning.weights import named_params_b
from orchestrator.store.durations import duration_key

# Parameters (billions) assumed for a class when the model id names no size.
CLASS_PARAMS_B = {ModelClass.A: 8.0, ModelClass.B: 32.0, ModelClass.C: 200.0, None: 8.0}
SECONDS_PER_UNIT = 1e-4  # assumed seconds per (billion parameters x prompt x token), uncalibrated


@dataclass(frozen=True)
class Job:
    """A pending run as the ordering sees it."""

    plan: RunPlan
    need: int
    expected_s: float
    known: bool  # measured before, not estimated


def params_b(plan: RunPlan) -> float:
    """Billions of parameters: the first size in the model id, else the class's assumption.

    ``Qwen3-30B-A3B`` -> 30, ``gemma-3-270m-it`` -> 0.27.
    """
    named = named_params_b(plan.config.model_id)
    return CLASS_PARAMS_B[plan.config.model_class] if named is None else named


def work_units(plan: RunPlan) -> float:
    """Parameters x prompts x the token budget: the size of a run, in arbitrary units."""
    tokens = plan.config.max_new_tokens or 1
    return params_b(plan) * plan.whole("scenario.num_samples", DEFAULT_PROMPTS) * tokens


def expected_durations(
    plans: Sequence[RunPlan], known: Mapping[str, float], gpu_name: str
) -> dict[str, tuple[float, bool]]:
    """Run id -> (expected seconds, measured before?) for every plan."""
    measured = {p.run_id: known.get(duration_key(p.run_id, gpu_name)) for p in plans}
    ratios = [s / work_units(p) for p in plans if (s := measured[p.run_id]) is not None]
    scale = statistics.median(ratios) if ratios else SECONDS_PER_UNIT
    return {
        p.run_id: (s, True)
        if (s := measured[p.run_id]) is not None
        else (work_units(p) * scale, False)
        for p in plans
    }


def longest_first(jobs: Sequence[Job]) -> list[Job]:
    """Longest expected duration first; ties keep priority, then CSV order (a stable sort)."""
    return sorted(jobs, key=lambda j: -j.expected_s)


def to_start(
    queue: Sequence[Job], free: int, running: Sequence[tuple[float, int]], now: float
) -> list[Job]:
    """The jobs of ``queue`` (in order) to start now on ``free`` slots.

    ``running`` holds (expected end time, slots held) of the runs in progress. The head of the
    queue starts as soon as it fits; behind a head that does not fit, a job may start only if it
    fits now and either ends before the head can start or uses slots the head will not need.
    """
    queue = list(queue)
    ends = sorted(running)
    started: list[Job] = []
    while queue:
        head = queue[0]
        if head.need <= free:
            started.append(queue.pop(0))
            free -= head.need
            ends = sorted([*ends, (now + head.expected_s, head.need)])
            continue
        available, shadow = free, now
        for end, held in ends:
            available += held
            shadow = max(end, now)
            if available >= head.need:
                break
        spare = max(available - head.need, 0)
        for job in queue[1:]:
            if job.need > free:
                continue
            ends_in_time = now + job.expected_s <= shadow
            if ends_in_time or job.need <= spare:
                started.append(job)
                free -= job.need
                if not ends_in_time:
                    spare -= job.need
        break
    return started

"""Sweep makespan against the ideal max(sum(t)/G, max(t)) for synthetic runs of known length.

    python tools/sweep_makespan.py [--runs 16] [--seed 1]
Runs go through the real scheduler (orchestrator.execution.scheduler.run_sweep, records, master
CSV rebuilds) with a runner that only sleeps for each run's length, on G = 1, 2 and 4 slots.
For each G: a first sweep in priority order (durations unknown), then the same sweep again
(``force``) longest first, with the durations the first one recorded.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from energy_bench import contract
from orchestrator.commands.progress import LogProgress
from orchestrator.execution.execute import ExecOptions
from orchestrator.execution.scheduler import run_sweep
from orchestrator.execution.slots import cpu_slots
from orchestrator.execution.spec import Cause, RunOutcome
from orchestrator.models.csv_reader import single_config
from orchestrator.planning.plan import PlanOptions, plan_runs


class SleepRunner:
    """A runner that sleeps for each run's known length."""

    name = "sleep"

    def __init__(self, lengths: dict[str, float]) -> None:
        self.lengths = lengths

    def run(self, spec, *, token=None):
        seconds = self.lengths[spec.overrides[0]]
        time.sleep(seconds)
        (spec.results_dir / contract.REPORT_FILE).write_text('{"status": "ok"}')
        return RunOutcome(Cause.OK, 0, seconds)

    def software_id(self, image):
        return "sleep"

    def cancel(self):
        pass

    def remove_leftovers(self, out_dir):
        return 0


def _greedy(lengths: list[float], slots: int) -> float:
    """Makespan of starting runs in order on the first free slot, with no overhead at all."""
    free = [0.0] * slots
    for length in lengths:
        free.sort()
        free[0] += length
    return max(free)


def _greedy(lengths: list[float], slots: int) -> float:
    """Makespan of starting runs in order on the first free slot, with no overhead at all."""
    free = [0.0] * slots
    for length in lengths:
        free.sort()
        free[0] += length
    return max(free)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    configs = [single_config(f"org/m{i}") for i in range(args.runs)]
    plans = plan_runs(configs, PlanOptions(image="x", software_id="sleep"))
    lengths = {p.overrides[0]: round(rng.uniform(0.5, 2.5), 2) for p in plans}
    total, longest = sum(lengths.values()), max(lengths.values())
    print(f"{args.runs} runs, lengths {min(lengths.values())}-{longest} s, sum {total:.2f} s")
    for slots in (1, 2, 4):
        with tempfile.TemporaryDirectory() as tmp:
            ideal = max(total / slots, longest)
            for order, force in (("priority", False), ("longest", True)):
                start = time.monotonic()
                run_sweep(
                    plans,
                    runner=SleepRunner(lengths),
                    options=ExecOptions(out_dir=Path(tmp), image="x"),
                    slots=cpu_slots(slots),
                    progress=LogProgress(),
                    force=force,
                    order=order,  # type: ignore[arg-type]
                )
                makespan = time.monotonic() - start
                print(
                    f"G={slots} {order:8s}: makespan {makespan:.2f} s, ideal {ideal:.2f} s, "
                    f"ratio {makespan / ideal:.3f}"
                )
        greedy = _greedy(list(lengths.values()), slots)
        lpt = _greedy(sorted(lengths.values(), reverse=True), slots)
        print(
            f"G={slots} zero-overhead list schedules: priority order {greedy:.2f} s "
            f"({greedy / ideal:.3f}), longest first {lpt:.2f} s ({lpt / ideal:.3f})"
        )


if __name__ == "__main__":
    main()

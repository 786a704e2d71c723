"""Orchestration overhead per run: the runner's wall time minus the benchmark's own duration.

    python tools/runner_overhead.py [--runs 10] [--image TAG] [--runner docker,local]
Each run is a short tiny-model benchmark (3 prompts, no warmup, no idle baseline). The
benchmark's own duration is ``summary.run_wall_seconds`` of its report (from the start of
``run_benchmark`` to its end); the rest is container or process start, interpreter and import
time, result writing, and container removal.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from energy_bench import contract
from orchestrator.execution.runners.docker import DockerRunner
from orchestrator.execution.runners.local import LocalRunner
from orchestrator.execution.spec import RunSpec

ROOT = Path(__file__).resolve().parent.parent

TINY = ROOT / "examples" / "tiny-model"
OVERRIDES = (
    f"backend.model={TINY}",
    "backend.torch_dtype=float32",
    "scenario.dataset_name=bundled",
    "scenario.num_samples=3",
    "scenario.warmup_pass=False",
    "energy.idle_seconds=0",
)


def measure(runner, image: str, runs: int) -> list[dict[str, float]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            folder = Path(tmp) / str(i)
            spec = RunSpec(
                run_id=f"overhead{i}",
                overrides=OVERRIDES,
                output_dir=folder,
                results_dir=folder / "r",
                log_path=folder / "run.log",
                image=image,
                read_only_paths=(TINY,),
                env={"HF_HUB_OFFLINE": "1"},
            )
            outcome = runner.run(spec)
            if not outcome.ok:
                raise SystemExit(f"run failed: {outcome}")
            report = json.loads((spec.results_dir / contract.REPORT_FILE).read_text())
            inside = report["summary"]["run_wall_seconds"]
            rows.append(
                {
                    "total_s": outcome.duration_s,
                    "benchmark_s": inside,
                    "overhead_s": outcome.duration_s - inside,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--image", default="ai_energy_score:cpu-test")
    parser.add_argument("--runner", default="docker,local")
    args = parser.parse_args()
    for name in args.runner.split(","):
        runner = DockerRunner() if name == "docker" else LocalRunner()
        rows = measure(runner, args.image, args.runs)
        over = [r["overhead_s"] for r in rows]
        print(
            f"{name}: overhead median {statistics.median(over):.2f} s "
            f"(min {min(over):.2f}, max {max(over):.2f}); run total median "
            f"{statistics.median(r['total_s'] for r in rows):.2f} s, benchmark median "
            f"{statistics.median(r['benchmark_s'] for r in rows):.2f} s; raw overheads "
            + " ".join(f"{o:.2f}" for o in over)
        )


if __name__ == "__main__":
    main()

"""What the ray executor adds to each run, against the local executor, on the demo sweep.

Starts the tests' two-node cluster on this machine (tests/ray_cluster.py: a network namespace
of its own, token authentication), then runs the demo CSV with each executor in turn, rounds
interleaved (local, ray, local, ray, ...), one run at a time on both (``--max-parallel 1``), so
that the runs themselves are alike. Per run, from its record: the wall time from the attempt's
start to its record (``finished_at - started_at``, on the driver) and the benchmark's own time
(``duration_s``, measured by the runner on the node); the difference is the executor's
overhead: task dispatch, the node's checks, the files' way back and their writing.

    python tools/ray_overhead.py [--rounds 3] [-n 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from ray_cluster import LocalRayCluster  # noqa: E402

from orchestrator.store.paths import OutputLayout  # noqa: E402
from orchestrator.store.records import load_record  # noqa: E402

ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def sweep(cluster: LocalRayCluster, out: Path, executor: str, prompts: int) -> None:
    command = [
        sys.executable, str(ROOT / "batch_runner.py"), "--csv",
        str(ROOT / "examples" / "demo_models.csv"), "--output-dir", str(out), "--runner", "local",
        "--no-report", "--force", "-q", "--max-parallel", "1", "-n", str(prompts),
        "--executor", executor, "--ray-address", cluster.address,
    ]  # fmt: skip
    done = cluster.run(command, env=cluster.env | ENV, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{executor} sweep failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def runs(out: Path) -> list[tuple[float, float]]:
    """(wall from attempt start to record, benchmark time) of each run of the folder."""
    found = []
    for folder in OutputLayout(out).run_folders():
        record = load_record(folder)
        assert record is not None, folder
        wall = datetime.fromisoformat(record.finished_at) - datetime.fromisoformat(
            record.started_at
        )
        found.append((wall.total_seconds(), record.duration_s))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-n", "--num-prompts", type=int, default=4)
    args = parser.parse_args()
    seen: dict[str, list[tuple[float, float]]] = {"local": [], "ray": []}
    cluster = LocalRayCluster(head_gpus=1, worker_gpus=2).start()
    try:
        with tempfile.TemporaryDirectory(prefix="aes-overhead-") as tmp:
            for round_no in range(args.rounds):
                for executor in ("local", "ray"):
                    out = Path(tmp) / executor
                    sweep(cluster, out, executor, args.num_prompts)
                    seen[executor] += runs(out)
                    print(f"round {round_no + 1}: {executor} done", file=sys.stderr)
    finally:
        cluster.stop()
    print("| executor | runs | wall per run, mean (s) | benchmark, mean (s) | overhead mean (s) "
          "| overhead max (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    summary = {}
    for executor, pairs in seen.items():
        overheads = [wall - bench for wall, bench in pairs]
        summary[executor] = (statistics.mean(w for w, _ in pairs), statistics.mean(overheads))
        print(
            f"| {executor} | {len(pairs)} | {summary[executor][0]:.3f} | "
            f"{statistics.mean(b for _, b in pairs):.3f} | {statistics.mean(overheads):.3f} | "
            f"{max(overheads):.3f} |"
        )
    for executor, pairs in seen.items():
        raw = " ".join(f"{wall - bench:.3f}" for wall, bench in pairs)
        print(f"{executor} overheads (s): {raw}")
    added = summary["ray"][1] - summary["local"][1]
    print(
        f"ray / local, wall per run: {summary['ray'][0] / summary['local'][0]:.3f}; "
        f"overhead the ray executor adds per run: {added:.3f} s (target <= 0.5 s)"
    )


if __name__ == "__main__":
    main()

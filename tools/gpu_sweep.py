"""Sweeps on a host of two GPUs: class C placement, longest-first makespan, runs kept apart.

On the GPU machine (no network: the host's missing pure-Python packages travel as wheels, see
docs/BENCHMARKS.md), from the project's root, with the project on the path:
    PYTHONPATH=.:container python3 tools/gpu_sweep.py --out DIR --part sweep
    PYTHONPATH=.:container python3 tools/gpu_sweep.py --out DIR --part isolation
``sweep``: five no-weights runs through ``batch_runner.py --runner local`` (two 1.5B-shape and a
3B- and an 8B-shape class A, a 70B-shape class C that needs both GPUs), 40 prompts, 10 tokens;
then the same sweep again with ``--force``, longest first with the durations the first recorded;
its makespan against the best schedule of the same runs (every order tried).
``isolation``: one 1.5B-shape run (batch 4, 60 prompts, 64 new tokens, 3 repeats) alone on GPU 0;
the same beside an identical run on GPU 1 through a sweep (each run on its own cores); and the
two side by side as plain processes sharing every core. Prints a table, writes JSON under DIR.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from gpu_bench import LLAMA  # the Llama base config (tools/ is on the path of a tool)

from energy_bench import contract
from orchestrator.store.paths import OutputLayout

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "examples" / "tiny-model"
WORK = Path("/tmp/gpu_sweep")
SHAPES = {  # folder name (the size in it orders unknown runs) -> widths
    "small-1.5B-a": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 20,
                     "num_attention_heads": 32, "tie_word_embeddings": True},
    "small-1.5B-b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 20,
                     "num_attention_heads": 32, "tie_word_embeddings": True},
    "llama-3B": {"hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28,
                 "num_attention_heads": 24},
    "llama-8B": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                 "num_attention_heads": 32},
    "llama-70B": {"hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
                  "num_attention_heads": 64},
}  # fmt: skip
CLASSES = {"llama-70B": "C"}
COMMON = [
    "--runner", "local", "--no-report", "-q",
    "backend.no_weights=True", f"backend.processor={TINY}", "scenario.dataset_name=bundled",
]  # fmt: skip
ISOLATION = [
    "-n", "60", "scenario.batch_size=4", "scenario.repeats=3",
    "scenario.generate_kwargs.max_new_tokens=64", "scenario.generate_kwargs.min_new_tokens=64",
]  # fmt: skip


def models(names: list[str]) -> dict[str, Path]:
    folders = {}
    for name in names:
        folder = WORK / "models" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps({**LLAMA, **SHAPES[name]}))
        folders[name] = folder
    return folders


def csv_of(folders: dict[str, Path], path: Path) -> Path:
    rows = [",Models to Add,Priority (1=hi),Class,Task,Reasoning State,Chat Template"]
    rows += [f",{f},1,{CLASSES.get(n, 'A')},text_gen,Off," for n, f in folders.items()]
    path.write_text("\n".join(rows) + "\n")
    return path


def sweep(csv_path: Path, out: Path, *extra: str) -> float:
    args = [*COMMON, *extra]
    settings = [a for a in args if "=" in a and not a.startswith("-")]  # after every option
    options = [a for a in args if a not in settings]
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "batch_runner.py"), "--csv", str(csv_path),
         "--output-dir", str(out), *options, *settings],
        capture_output=True, text=True,
    )  # fmt: skip
    print(done.stdout[-3000:], done.stderr[-3000:], sep="\n", flush=True)
    return time.monotonic() - start


def runs(out: Path) -> list[dict]:
    found = []
    layout = OutputLayout(out)
    for folder in layout.run_folders():
        record = json.loads(layout.record(folder.name).read_text())
        report_path = folder / contract.REPORT_FILE
        report = json.loads(report_path.read_text()) if report_path.is_file() else {}
        found.append({"record": record, "report": report})
    return found


def best_makespan(jobs: list[tuple[int, float]], gpus: int) -> float:
    """The shortest list schedule over every order (a job holds all its GPUs at once)."""
    best = float("inf")
    for order in itertools.permutations(jobs):
        free = [0.0] * gpus
        for need, seconds in order:
            free.sort()
            start = free[need - 1]  # when ``need`` GPUs are free
            for i in range(need):
                free[i] = start + seconds
        best = min(best, max(free))
    return best


def part_sweep(args: argparse.Namespace) -> dict:
    folders = models(list(SHAPES))
    csv_path = csv_of(folders, WORK / "sweep.csv")
    out = WORK / "sweep_out"
    first = sweep(csv_path, out, "-n", "40")
    second = sweep(csv_path, out, "-n", "40", "--force")
    table, jobs, starts, ends = [], [], [], []
    for run in runs(out):
        rec, rep = run["record"], run["report"]
        energy = rep.get("energy", {})
        started = datetime.fromisoformat(rec["started_at"]).timestamp()
        starts.append(started)
        ends.append(started + rec["duration_s"])
        jobs.append((max(len(rec["gpu_uuids"]), 1), rec["duration_s"]))
        table.append(
            {
                "run": rec["name"],
                "status": rec["status"],
                "planned_gpus": rec["gpu_uuids"],
                "measured_gpus": [g["uuid"] for g in energy.get("gpus", [])],
                "gpu_energy_j": [round(g["energy_j"], 1) for g in energy.get("gpus", [])],
                "wh_per_1000": energy.get("wh_per_1000_queries"),
                "duration_s": rec["duration_s"],
                "started_at": rec["started_at"],
                "flags": energy.get("flags"),
            }
        )
    makespan = max(ends) - min(starts)
    best = best_makespan(jobs, 2)
    for row in table:
        same = set(row["planned_gpus"]) == set(row["measured_gpus"])
        print(
            f"{row['run']:32s} {row['status']:6s} GPUs planned {len(row['planned_gpus'])} "
            f"measured {len(row['measured_gpus'])} same={same} J/GPU {row['gpu_energy_j']} "
            f"Wh/1000 {row['wh_per_1000']} {row['duration_s']:.1f} s"
        )
    print(
        f"first sweep (estimates) wall {first:.1f} s; second (known durations) wall "
        f"{second:.1f} s, makespan {makespan:.1f} s, best schedule {best:.1f} s, "
        f"ratio {makespan / best:.3f}"
    )
    return {"runs": table, "first_wall_s": first, "second_wall_s": second,
            "makespan_s": makespan, "best_s": best}  # fmt: skip


def summary(label: str, report: dict) -> dict:
    """One line of the isolation table: the report's pass energies, their mean and CV."""
    energies = [p["energy_j"] for p in report["energy"]["repeats"]]
    durations = [p["duration_s"] for p in report["energy"]["repeats"]]
    mean = statistics.fmean(energies)
    cv = statistics.stdev(energies) / mean if len(energies) > 1 else 0.0
    print(
        f"{label:52s} pass J {' '.join(f'{e:.0f}' for e in energies)}  mean {mean:.0f}  "
        f"CV {cv * 100:.2f} %  pass s {' '.join(f'{d:.1f}' for d in durations)}"
    )
    return {"label": label, "energies_j": energies, "mean_j": mean, "cv": cv,
            "durations_s": durations}  # fmt: skip


def bench(folder: Path, results: Path, gpu: str) -> subprocess.Popen:
    overrides = [
        f"backend.model={folder}", f"backend.processor={TINY}", "backend.no_weights=True",
        "scenario.dataset_name=bundled", "scenario.num_samples=60", "scenario.batch_size=4",
        "scenario.repeats=3", "scenario.generate_kwargs.max_new_tokens=64",
        "scenario.generate_kwargs.min_new_tokens=64",
    ]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": gpu}
    env.pop(contract.CPUS_ENV, None)
    results.mkdir(parents=True, exist_ok=True)
    log = (results.parent / f"{results.name}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "energy_bench", "--results-dir", str(results), *overrides],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def part_isolation(args: argparse.Namespace) -> dict:
    folders = models(["small-1.5B-a", "small-1.5B-b"])
    one = csv_of({"small-1.5B-a": folders["small-1.5B-a"]}, WORK / "one.csv")
    two = csv_of(folders, WORK / "two.csv")
    rows = []
    sweep(one, WORK / "alone", "--gpus", "0", *ISOLATION)
    (alone,) = runs(WORK / "alone")
    rows.append(summary("alone on GPU 0 (sweep, own cores)", alone["report"]))
    sweep(two, WORK / "together", *ISOLATION)
    for run in runs(WORK / "together"):
        label = f"beside another: {run['record']['name']} (sweep, own cores)"
        rows.append(summary(label, run["report"]))
    procs = [
        bench(folders["small-1.5B-a"], WORK / "shared_a", "0"),
        bench(folders["small-1.5B-b"], WORK / "shared_b", "1"),
    ]
    for name, proc in zip(("shared_a", "shared_b"), procs, strict=True):
        if proc.wait():
            print((WORK / f"{name}.log").read_text()[-2000:])
            continue
        report = json.loads((WORK / name / contract.REPORT_FILE).read_text())
        rows.append(summary(f"beside another: {name} (plain processes, all cores)", report))
    return {"rows": rows, "cpus": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--part", choices=("sweep", "isolation"), required=True)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    result = part_sweep(args) if args.part == "sweep" else part_isolation(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"gpu_sweep_{args.part}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

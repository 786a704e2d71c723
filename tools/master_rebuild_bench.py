"""How long rebuilding master_results.csv takes over many run folders.

    python tools/master_rebuild_bench.py [--runs 10000] [--times 3] [--drop-caches]
Makes one real report with the tiny model (3 prompts, 3 repeats), copies it with varied figures
into N run folders beside a record each, then times ``rebuild_master``: from scratch (no cache
of earlier rows), and as a sweep does it after each run (one run folder rewritten since the last
rebuild); with ``--drop-caches`` (root) also from scratch after dropping the page cache.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from energy_bench import contract
from orchestrator.store.master import rebuild_master
from orchestrator.store.paths import OutputLayout
from orchestrator.store.records import RunRecord, save_record

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "examples" / "tiny-model"


def real_report(folder: Path) -> dict:
    subprocess.run(
        [
            sys.executable, "-m", "energy_bench", "--results-dir", str(folder),
            f"backend.model={TINY}", "backend.torch_dtype=float32",
            "scenario.dataset_name=bundled", "scenario.num_samples=3", "scenario.repeats=3",
            "energy.idle_seconds=0.2",
        ],
        check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    return json.loads((folder / contract.REPORT_FILE).read_text())


def populate(out: Path, report: dict, runs: int) -> int:
    layout = OutputLayout(out)
    size = 0
    for i in range(runs):
        name = f"org_model-{i:05d}_Off"
        folder = layout.run_dir(name)
        save_record(
            folder,
            RunRecord(
                run_id=f"{i:012d}", name=name, model_id=f"org/model-{i:05d}", model_class="A",
                task="text_gen", reasoning_state="Off", status="ok", runner="local",
                duration_s=10.0 + i % 7, finished_at="2026-11-30T00:00:00+00:00",
                log_path=layout.relative(layout.run_log(name, datetime(2026, 11, 30, tzinfo=UTC))),
            ),
        )  # fmt: skip
        report["energy"]["gpu_energy_wh"] = 0.001 * (1 + i % 97)
        text = json.dumps(report, indent=2)
        (folder / contract.REPORT_FILE).write_text(text)
        size += len(text)
    return size // runs


def timed(out: Path) -> float:
    start = time.perf_counter()
    rebuild_master(out)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--times", type=int, default=3)
    parser.add_argument("--drop-caches", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        report = real_report(out / "one")
        size = populate(out, report, args.runs)
        print(f"{args.runs} run folders, report {size} bytes each")
        layout = OutputLayout(out)
        rebuild_master(out)  # warm the page cache and the imports
        scratch, after_run = [], []
        for i in range(args.times):
            layout.master_cache.unlink()
            scratch.append(timed(out))
            report["energy"]["gpu_energy_wh"] = 1.0 + i  # one run finished since the last rebuild
            (layout.run_dir("org_model-00042_Off") / contract.REPORT_FILE).write_text(
                json.dumps(report, indent=2)
            )
            after_run.append(timed(out))
        for label, times in (("from scratch", scratch), ("after one run", after_run)):
            text = " ".join(f"{t:.2f}" for t in times)
            print(f"{label}: {text} s (median {statistics.median(times):.2f})")
        if args.drop_caches:
            layout.master_cache.unlink()
            subprocess.run(["sync"], check=True)
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
            print(f"from scratch, cold page cache: {timed(out):.2f} s")
        rows = OutputLayout(out).master_csv.read_text().count("\n") - 1
        print(f"master_results.csv: {rows} rows")


if __name__ == "__main__":
    main()

"""How the master CSV and the report scale with the number of runs in an output folder.

    python tools/report_scale_bench.py [--runs 10000] [--labels best|all] [--keep DIR]
Fabricates N run folders (a record, a benchmark report, the energy files, a power trace, a
per-prompt file and a log each; no model runs) in a temporary folder, then times, each in a
fresh process so that its peak memory is its own:
  rebuild_master   from scratch (no cache file), as after a crash or an upgrade
  rebuild_master   again, with the cache (it still looks at every folder)
  update_master    of one run whose report was rewritten, as a sweep does after each run
  make_report      ratings, leaderboard CSV and HTML, labels, archive
and prints seconds and peak RSS (MB) of each, with the HTML size and the number of labels.
With ``--drop-caches`` (root only) each step starts with the page cache dropped.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from energy_bench import contract
from orchestrator.store.paths import OutputLayout
from orchestrator.store.records import RunRecord, save_record

GPUS = ("NVIDIA H200", "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB")
CLASSES = ("A", "B", "C")
TRACE_HEADER = "t_s,device,device_uuid,window,power_w,sm_clock_mhz,temperature_c,energy_j\n"


def fake_report(i: int) -> dict:
    """A successful report of schema ``contract.SCHEMA_VERSION`` with figures varied by ``i``."""
    prompts, tokens = 100, 3000
    energy_wh = 0.05 + (i * 7919 % 1000) / 400
    throughput = 100.0 + i % 300
    return {
        "schema_version": contract.SCHEMA_VERSION,
        "status": "ok",
        "error": None,
        "summary": {
            "total_prompts": prompts,
            "successful_prompts": prompts,
            "failed_prompts": 0,
            "total_duration_seconds": 10.0 + i % 50,
            "avg_total_time": 0.1,
            "avg_time_to_first_token": 0.01,
            "total_tokens": tokens,
            "total_prompt_tokens": 2000,
            "total_completion_tokens": 1000,
            "throughput_tokens_per_second": throughput,
            "output_tokens_per_second": throughput / 3,
            "repeats": 3,
            "batch_size": 1,
            "warmup": "full pass",
        },
        "energy": {
            "energy_source": "nvml",
            "gpu_energy_wh": energy_wh,
            "wh_per_1000_queries": energy_wh / prompts * 1000,
            "co2_emissions_g": energy_wh / 1000 * 400,
            "tokens_per_joule": tokens / (energy_wh * 3600),
            "avg_energy_per_prompt_wh": energy_wh / prompts,
            "energy_above_idle_wh": energy_wh * 0.4,
            "idle_power_w": 80.0,
            "average_power_w": 180.0 + i % 40,
            "repeat_energy_cv": 0.01,
            "flags": {
                "short_window": False,
                "counter_reset": False,
                "trace_mismatch": False,
                "foreign_process": False,
            },
            "gpus": [{"energy_j": energy_wh * 3600}],
        },
        "provenance": {"device_names": [GPUS[i % len(GPUS)]], "config_hash": f"{i:08x}"},
        "reasoning_control": "none",
        "reasoning": {"requested_control": "none"},
    }


def populate(out: Path, runs: int) -> None:
    """N run folders as a sweep leaves them, each with every file a report reads."""
    layout = OutputLayout(out)
    when = datetime(2026, 11, 30, tzinfo=UTC)
    trace = TRACE_HEADER + "".join(
        f"{t / 10:.1f},0,GPU-0,repeat_0,{150 + 30 * (t % 7)},1980,40,\n" for t in range(60)
    )
    for i in range(runs):
        name = f"org_model-{i:05d}_Off"
        folder = layout.run_dir(name)
        log = layout.run_log(name, when)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("loading model\nmeasuring\ndone\n")
        save_record(
            folder,
            RunRecord(
                run_id=f"{i:012d}", name=name, model_id=f"org/model-{i:05d}",
                model_class=CLASSES[i // 7 % len(CLASSES)], task="text_gen",
                reasoning_state="Off", status="ok" if i % 50 else "failed", runner="local",
                duration_s=10.0 + i % 7, finished_at="2026-11-30T00:00:00+00:00",
                error_message="" if i % 50 else "out_of_memory: CUDA out of memory",
                log_path=layout.relative(log), attempts=1,
            ),
        )  # fmt: skip
        if i % 50 == 0:
            continue
        report = fake_report(i)
        (folder / contract.REPORT_FILE).write_text(json.dumps(report, indent=2))
        energy = report["energy"]["gpu_energy_wh"]
        (folder / contract.ENERGY_WH_FILE).write_text(f"{energy:.4f}\n")
        (folder / contract.ENERGY_SUMMARY_FILE).write_text(json.dumps({"total": energy}))
        (folder / contract.POWER_TRACE_FILE).write_text(trace)
        (folder / contract.PER_PROMPT_FILE).write_text("prompt,latency_s\n0,0.1\n1,0.1\n")


def step(name: str, out: Path, labels: str) -> dict:
    """Run one step in this process and return its figures (seconds, peak RSS in MB, ...)."""
    figures: dict = {}
    if name in ("rebuild", "update"):
        from orchestrator.store import master

        start = time.perf_counter()
        if name == "rebuild":
            master.rebuild_master(out)
        elif hasattr(master, "update_master"):
            master.update_master(out, ["org_model-00042_Off"])
        else:  # an earlier version, for comparison: it had only the rebuild
            master.rebuild_master(out)
        figures["seconds"] = time.perf_counter() - start
    elif name == "report":
        import inspect

        from orchestrator.reports.build import make_report

        start = time.perf_counter()
        if "labels" in inspect.signature(make_report).parameters:
            files = make_report(out, labels=labels)
        else:  # an earlier version, for comparison
            files = make_report(out)
        figures["seconds"] = time.perf_counter() - start
        figures["html_mb"] = files.layout.leaderboard_html.stat().st_size / 2**20
        figures["labels"] = len([p for p in files.labels if p.suffix == ".png"])
        figures["archive_mb"] = files.layout.archive.stat().st_size / 2**20
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def in_child(name: str, out: Path, labels: str, *, cold: bool = False) -> dict:
    if cold:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    done = subprocess.run(
        [sys.executable, __file__, "--step", name, "--labels", labels, str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(label: str, figures: dict) -> None:
    extra = ""
    if "html_mb" in figures:
        extra = (
            f", HTML {figures['html_mb']:.2f} MB, {figures['labels']} labels (PNG + SVG each), "
            f"archive {figures['archive_mb']:.1f} MB"
        )
    seconds, rss = figures["seconds"], figures["peak_rss_mb"]
    print(f"{label:<34} {seconds:7.2f} s  peak RSS {rss:6.0f} MB{extra}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--labels", choices=("best", "all"), default="best")
    parser.add_argument("--keep", type=Path, help="build the folders here and keep them")
    parser.add_argument("--drop-caches", action="store_true")
    parser.add_argument("--step", choices=("rebuild", "update", "report"), help=argparse.SUPPRESS)
    parser.add_argument("out", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(step(args.step, args.out, args.labels)))
        return
    tmp = None if args.keep else tempfile.mkdtemp(prefix="report-scale-")
    out = args.keep or Path(tmp)
    try:
        start = time.perf_counter()
        populate(out, args.runs)
        print(f"{args.runs} run folders made in {time.perf_counter() - start:.1f} s ({out})")
        layout = OutputLayout(out)
        layout.master_cache.unlink(missing_ok=True)
        cold = args.drop_caches
        show("rebuild_master, no cache file", in_child("rebuild", out, args.labels, cold=cold))
        show("rebuild_master, with the cache", in_child("rebuild", out, args.labels, cold=cold))
        report = fake_report(42)
        report["energy"]["gpu_energy_wh"] = 9.5  # the run finished again since the last update
        (layout.run_dir("org_model-00042_Off") / contract.REPORT_FILE).write_text(
            json.dumps(report, indent=2)
        )
        show("update_master of one run", in_child("update", out, args.labels, cold=cold))
        shutil.rmtree(layout.report, ignore_errors=True)
        report_figures = in_child("report", out, args.labels, cold=cold)
        show(f"make_report (labels: {args.labels})", report_figures)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

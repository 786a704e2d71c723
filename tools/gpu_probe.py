"""Probe why a first measured pass costs more: per-prompt latencies of passes, SDPA backends.

    PYTHONPATH=container:tools python3 tools/gpu_probe.py --out DIR   (project not installed)
Runs the ~1.5B no-weights Llama with warmup off and 3 repeats, once with PyTorch's default
attention backends and once with the cuDNN attention backend switched off, and times each NVML
call the sampler makes. Writes per-prompt CSVs and a JSON summary under DIR.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from energy_bench import contract

ROOT = Path(__file__).resolve().parent.parent


def nvml_costs() -> dict[str, float]:
    import pynvml as n

    n.nvmlInit()
    h = n.nvmlDeviceGetHandleByIndex(0)
    calls = {
        "field_power_instant": lambda: n.nvmlDeviceGetFieldValues(h, [n.NVML_FI_DEV_POWER_INSTANT]),
        "field_power_and_energy": lambda: n.nvmlDeviceGetFieldValues(
            h, [n.NVML_FI_DEV_POWER_INSTANT, n.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION]
        ),
        "total_energy": lambda: n.nvmlDeviceGetTotalEnergyConsumption(h),
        "sm_clock": lambda: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM),
        "temperature": lambda: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU),
        "power_usage": lambda: n.nvmlDeviceGetPowerUsage(h),
    }
    out = {}
    for name, call in calls.items():
        times = []
        for _ in range(200):
            t = time.thread_time()
            call()
            times.append(time.thread_time() - t)
        out[name + "_cpu_ms"] = statistics.median(times) * 1000
    n.nvmlShutdown()
    return out


def main() -> None:
    import gpu_bench
    import torch

    from energy_bench.cli import main as bench

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {"nvml": nvml_costs()}
    print(json.dumps(summary), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "llama1.5b"
        model.mkdir()
        (model / "config.json").write_text(json.dumps(gpu_bench.MODELS["llama1.5b"]))
        for label, cudnn in (("default", True), ("no_cudnn_sdp", False)):
            torch.backends.cuda.enable_cudnn_sdp(cudnn)
            results = Path(tmp) / label
            code = bench(
                [
                    "--results-dir",
                    str(results),
                    f"backend.model={model}",
                    f"backend.processor={gpu_bench.TINY}",
                    "backend.no_weights=True",
                    "scenario.dataset_name=bundled",
                    "scenario.num_samples=100",
                    "scenario.repeats=3",
                    "scenario.warmup_pass=False",
                    "energy.idle_seconds=2",
                ]
            )
            report = json.loads((results / contract.REPORT_FILE).read_text())
            with (results / contract.PER_PROMPT_FILE).open() as f:
                rows = list(csv.DictReader(f))
            lat = {
                r: [float(x["latency_s"]) for x in rows if x["repeat"] == str(r)] for r in range(3)
            }
            summary[label] = {
                "exit": code,
                "pass_energy_j": [p["energy_j"] for p in report["energy"]["repeats"]],
                "pass_s": [p["duration_s"] for p in report["energy"]["repeats"]],
                "median_latency_s": [statistics.median(v) for v in lat.values()],
                "first10_latency_s_pass0": lat[0][:10],
                "first10_latency_s_pass1": lat[1][:10],
                "sampler_cpu_share": report["energy"]["sampler_cpu_share"],
            }
            shutil.copy(results / contract.PER_PROMPT_FILE, args.out / f"per_prompt_{label}.csv")
            shutil.copy(results / contract.POWER_TRACE_FILE, args.out / f"power_trace_{label}.csv")
            print(json.dumps(summary[label]), flush=True)
    (args.out / "probe.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

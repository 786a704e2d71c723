"""Write a run's result files atomically into the results folder (SPEC §5 Outputs)."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from energy_bench.benchmark import RunData

REPORT = "benchmark_report.json"
RESULTS_CSV = "benchmark_results.csv"
ENERGY_WH = "GPU_ENERGY_WH.txt"
ENERGY_SUMMARY = "GPU_ENERGY_SUMMARY.json"
PER_PROMPT = "per_prompt.csv"
POWER_TRACE = "power_trace.csv"
SUMMARY_FORMAT = "ai_energy_score_runner/1"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys; lists as JSON text (one CSV row per report)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, list | tuple):
            flat[name] = json.dumps(value, default=str)
        else:
            flat[name] = value
    return flat


def write_report_files(results_dir: Path, report: Mapping[str, Any]) -> None:
    """benchmark_report.json, benchmark_results.csv and the two GPU_ENERGY files."""
    write_atomic(results_dir / REPORT, json.dumps(report, indent=2, default=str) + "\n")
    flat = flatten(report)
    write_atomic(results_dir / RESULTS_CSV, _csv_text(list(flat), [list(flat.values())]))
    energy = report.get("energy")
    if not energy:
        return
    write_atomic(results_dir / ENERGY_WH, f"{energy['gpu_energy_wh']:.2f}\n")
    summary = {
        "units": "Wh",
        "total": energy["gpu_energy_wh"],
        "format": SUMMARY_FORMAT,
        "preprocess_wh": energy["preprocess_wh"],
        "prefill_wh": energy["prefill_wh"],
        "decode_wh": energy["decode_wh"],
        "energy_source": energy["energy_source"],
        "estimated": energy["estimated"],
        "energy_above_idle_wh": energy["energy_above_idle_wh"],
        "idle_power_w": energy["idle_power_w"],
        "repeats": len(energy["repeats"]),
        "repeat_energy_cv": energy["repeat_energy_cv"],
        "prefill_decode_split": energy["prefill_decode_split"],
    }
    write_atomic(results_dir / ENERGY_SUMMARY, json.dumps(summary, indent=2) + "\n")


def write_measurement_files(results_dir: Path, data: RunData) -> None:
    """per_prompt.csv and power_trace.csv."""
    records = [asdict(r) for p in data.passes for r in p.records]
    header = list(records[0]) if records else ["repeat", "prompt_index", "ok"]
    write_atomic(
        results_dir / PER_PROMPT, _csv_text(header, ([r[h] for h in header] for r in records))
    )
    devices = data.source.devices
    write_atomic(
        results_dir / POWER_TRACE,
        _csv_text(
            [
                "t_s",
                "device",
                "device_uuid",
                "window",
                "power_w",
                "sm_clock_mhz",
                "temperature_c",
                "energy_j",
            ],
            (
                [
                    f"{r.t_s:.4f}",
                    r.device,
                    devices[r.device].uuid or devices[r.device].name,
                    r.window,
                    f"{r.power_w:.3f}",
                    r.sm_clock_mhz,
                    r.temperature_c,
                    "" if r.energy_j is None else f"{r.energy_j:.3f}",
                ]
                for r in data.trace
            ),
        ),
    )

"""``master_results.csv``: rebuilt from the per-run records and reports, atomically (SPEC §6).

The 21 AI Energy Score columns come first in their fixed order, then this project's extras. One
row per run folder; reruns replace their row, they never add one.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from orchestrator.files import read_json, write_atomic
from orchestrator.records import REPORT_FILE, RunRecord, load_record

MASTER_FILE = "master_results.csv"
AI_ENERGY_SCORE_COLUMNS = (
    "model_name", "model_class", "task", "reasoning_state", "total_prompts", "successful_prompts",
    "failed_prompts", "total_duration_seconds", "avg_total_time", "avg_time_to_first_token",
    "total_tokens", "total_prompt_tokens", "total_completion_tokens",
    "throughput_tokens_per_second", "gpu_energy_wh", "wh_per_1000_queries", "co2_emissions_g",
    "tokens_per_joule", "avg_energy_per_prompt_wh", "timestamp", "error_message",
)  # fmt: skip
EXTRA_COLUMNS = (
    "run_id", "run_name", "status", "cause", "runner", "image", "gpu_name", "gpu_uuids",
    "energy_source", "energy_above_idle_wh", "idle_power_w", "average_power_w", "repeats",
    "repeat_energy_cv", "reasoning_control", "reasoning_requested_control", "short_window",
    "counter_reset", "trace_mismatch", "warmup", "batch_size", "config_hash", "attempts",
    "run_wall_seconds", "log_path",
)  # fmt: skip
COLUMNS = AI_ENERGY_SCORE_COLUMNS + EXTRA_COLUMNS
J_PER_WH = 3600.0


def _row(record: RunRecord, report: dict[str, Any] | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model_name": record.model_id,
        "model_class": record.model_class,
        "task": record.task,
        "reasoning_state": record.reasoning_state,
        "timestamp": record.finished_at or record.started_at,
        "error_message": record.error_message,
        "run_id": record.run_id,
        "run_name": record.name,
        "status": record.status,
        "cause": record.cause,
        "runner": record.runner,
        "image": record.image,
        "gpu_uuids": " ".join(record.gpu_uuids),
        "attempts": record.attempts,
        "run_wall_seconds": round(record.duration_s, 3),
        "log_path": record.log_path,
        # A failed run keeps its real duration (never a zero).
        "total_duration_seconds": round(record.duration_s, 3),
    }
    if record.status != "ok" or not report or report.get("status") != "ok":
        return row
    if not isinstance(report.get("summary"), dict) or not isinstance(report.get("energy"), dict):
        row["error_message"] = "benchmark_report.json has no summary or energy section"
        return row
    s, e = report["summary"], report["energy"]
    ok = s["successful_prompts"]
    energy_wh = e["gpu_energy_wh"]
    row.update({k: s[k] for k in (
        "total_prompts", "successful_prompts", "failed_prompts", "total_duration_seconds",
        "avg_total_time", "avg_time_to_first_token", "total_tokens", "total_prompt_tokens",
        "total_completion_tokens", "throughput_tokens_per_second", "batch_size", "warmup",
    )})  # fmt: skip
    row.update({
        "gpu_energy_wh": energy_wh,
        "wh_per_1000_queries": energy_wh / ok * 1000 if ok else None,
        "co2_emissions_g": e["co2_emissions_g"],
        "tokens_per_joule": s["total_tokens"] / (energy_wh * J_PER_WH) if energy_wh else None,
        "avg_energy_per_prompt_wh": energy_wh / ok if ok else None,
        "energy_source": e["energy_source"],
        "energy_above_idle_wh": e["energy_above_idle_wh"],
        "idle_power_w": e["idle_power_w"],
        "average_power_w": e["average_power_w"],
        "repeats": s["repeats"],
        "repeat_energy_cv": e["repeat_energy_cv"],
        "short_window": e["flags"]["short_window"],
        "counter_reset": e["flags"]["counter_reset"],
        "trace_mismatch": e["flags"]["trace_mismatch"],
        "gpu_name": ", ".join(report["provenance"].get("device_names", [])),
        "config_hash": report["provenance"].get("config_hash"),
        "reasoning_control": report.get("reasoning_control"),
        "reasoning_requested_control": (report.get("reasoning") or {}).get("requested_control"),
    })  # fmt: skip
    return row


def collect_rows(out_dir: Path) -> list[dict[str, Any]]:
    """A row per run folder that holds a record, sorted by run name."""
    rows = []
    for folder in sorted((out_dir / "individual_runs").glob("*/")):
        record = load_record(folder)
        if record is None or record.status in ("running", "interrupted"):
            continue
        rows.append(_row(record, read_json(folder / REPORT_FILE)))
    return rows


def rebuild_master(out_dir: Path) -> Path:
    """Rewrite ``<out>/master_results.csv`` from the run folders; returns its path."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in collect_rows(out_dir):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    path = out_dir / MASTER_FILE
    write_atomic(path, buffer.getvalue())
    return path

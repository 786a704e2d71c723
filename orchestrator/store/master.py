"""``master_results.csv``: one row per run folder, rebuilt from the records and reports.

The 21 AI Energy Score columns come first, in their fixed order and with their meaning, then this
project's extras. Every figure is read from the benchmark's report as it wrote it; nothing is
recomputed here. Reruns replace their row, they never add one.

A rebuild reads again only the run folders whose record or report changed since the last one
(by size and modification time, kept beside the CSV in a cache file), so rebuilding after every
run of a long sweep stays cheap.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from energy_bench import contract
from orchestrator.store.files import read_json, write_atomic
from orchestrator.store.paths import RECORD_FILE, OutputLayout
from orchestrator.store.records import RunRecord, load_record, load_report

AI_ENERGY_SCORE_COLUMNS = (
    "model_name", "model_class", "task", "reasoning_state", "total_prompts", "successful_prompts",
    "failed_prompts", "total_duration_seconds", "avg_total_time", "avg_time_to_first_token",
    "total_tokens", "total_prompt_tokens", "total_completion_tokens",
    "throughput_tokens_per_second", "gpu_energy_wh", "wh_per_1000_queries", "co2_emissions_g",
    "tokens_per_joule", "avg_energy_per_prompt_wh", "timestamp", "error_message",
)  # fmt: skip
EXTRA_COLUMNS = (
    "run_id", "run_name", "status", "cause", "runner", "image", "software_id", "gpu_name",
    "gpu_uuids", "energy_source", "energy_above_idle_wh", "idle_power_w", "average_power_w",
    "output_tokens_per_second", "repeats", "repeat_energy_cv", "reasoning_control",
    "reasoning_requested_control", "short_window", "counter_reset", "trace_mismatch",
    "foreign_process", "gpu_count", "gpu_energy_j_each", "warmup",
    "batch_size", "config_hash", "attempts", "run_wall_seconds", "log_path",
)  # fmt: skip
COLUMNS = AI_ENERGY_SCORE_COLUMNS + EXTRA_COLUMNS
CORRUPT = "corrupt_result"
# A cache made for other columns, another report schema or another version is not used.
CACHE_KEY = f"{contract.VERSION} schema {contract.SCHEMA_VERSION}: " + ",".join(COLUMNS)

# The report's numbers that become columns of the same name.
_SUMMARY_COLUMNS = tuple(k for k in contract.SUMMARY_KEYS if k in COLUMNS)
_ENERGY_COLUMNS = tuple(k for k in contract.ENERGY_KEYS if k in COLUMNS)


def _record_columns(record: RunRecord) -> dict[str, Any]:
    return {
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
        "software_id": record.software_id,
        "gpu_uuids": " ".join(record.gpu_uuids),
        "attempts": record.attempts,
        "run_wall_seconds": round(record.duration_s, 3),
        "log_path": record.log_path,
        # A failed run keeps its real duration (never a zero).
        "total_duration_seconds": round(record.duration_s, 3),
    }


def _report_columns(report: Mapping[str, Any]) -> dict[str, Any]:
    summary, energy = report["summary"], report["energy"]
    provenance = report.get("provenance") if isinstance(report.get("provenance"), Mapping) else {}
    reasoning = report.get("reasoning") if isinstance(report.get("reasoning"), Mapping) else {}
    names = provenance.get("device_names") or []
    return {
        **{k: summary[k] for k in _SUMMARY_COLUMNS},
        **{k: energy[k] for k in _ENERGY_COLUMNS},
        **{k: energy["flags"][k] for k in contract.FLAG_KEYS},
        "energy_source": energy["energy_source"],
        "warmup": summary.get("warmup"),
        "gpu_name": ", ".join(map(str, names)) if isinstance(names, list) else str(names),
        "config_hash": provenance.get("config_hash"),
        **_gpu_columns(energy.get("gpus")),
        "reasoning_control": report.get("reasoning_control"),
        "reasoning_requested_control": reasoning.get("requested_control"),
    }


def _gpu_columns(gpus: Any) -> dict[str, Any]:
    """How many devices were measured, and each one's energy per pass (J, space-separated)."""
    if not isinstance(gpus, list):
        return {}
    each = [g.get("energy_j") for g in gpus if isinstance(g, Mapping)]
    return {
        "gpu_count": len(each),
        "gpu_energy_j_each": " ".join(f"{e:.1f}" for e in each if isinstance(e, int | float)),
    }


def row_of(record: RunRecord, report: Any) -> dict[str, Any]:
    """The master row of one run: its record, and its report's figures when it succeeded.

    A successful run whose report does not validate becomes a ``corrupt_result`` row with the
    reason; the next sweep reruns it.
    """
    row = _record_columns(record)
    if record.status != "ok":
        return row
    problem = contract.report_problem(report)
    if problem:
        message = f"{CORRUPT}: {contract.REPORT_FILE}: {problem}"
        return row | {"status": CORRUPT, "cause": CORRUPT, "error_message": message}
    return row | _report_columns(report)


def _stamp(folder: Path) -> list[int]:
    """Identity, size and times of a run's record and report (zeros for a missing file).

    The change time is set by the kernel on every write: a file restored with its old
    modification time (``cp -p``, ``rsync -a``) still reads as changed.
    """
    stamp = []
    for path in (folder / RECORD_FILE, folder / contract.REPORT_FILE):
        try:
            info = path.stat()
            stamp += [info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]
        except OSError:
            stamp += [0, 0, 0, 0]
    return stamp


def _row(folder: Path) -> dict[str, Any] | None:
    record = load_record(folder)
    if record is None or record.status in ("running", "interrupted"):
        return None
    return row_of(record, load_report(folder) if record.status == "ok" else None)


def _cached_rows(out_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows, reading only folders that changed since the cache was written; and the cache."""
    layout = OutputLayout(out_dir)
    old = read_json(layout.master_cache)
    old_runs = old.get("runs", {}) if isinstance(old, dict) and old.get("key") == CACHE_KEY else {}
    runs: dict[str, Any] = {}
    rows = []
    for folder in layout.run_folders():
        stamp = _stamp(folder)
        hit = old_runs.get(folder.name)
        if isinstance(hit, dict) and hit.get("stamp") == stamp:
            row = hit.get("row")
        else:
            row = _row(folder)
        runs[folder.name] = {"stamp": stamp, "row": row}
        if row is not None:
            rows.append(row)
    return rows, {"key": CACHE_KEY, "runs": runs}


def collect_rows(out_dir: Path) -> list[dict[str, Any]]:
    """A row per run folder that holds a finished record, sorted by run name."""
    return _cached_rows(out_dir)[0]


def master_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows in the master CSV's column order: values as written, formulas defused."""
    safe = [{k: contract.csv_cell(v) for k, v in row.items()} for row in rows]
    return pd.DataFrame(safe, columns=list(COLUMNS), dtype=object)


def rebuild_master(out_dir: Path) -> Path:
    """Rewrite ``master_results.csv`` from the run folders, atomically; returns its path."""
    layout = OutputLayout(out_dir)
    rows, cache = _cached_rows(out_dir)
    buffer = io.StringIO()
    master_frame(rows).to_csv(buffer, index=False, lineterminator="\n")
    write_atomic(layout.master_csv, buffer.getvalue())
    write_atomic(layout.master_cache, json.dumps(cache, separators=(",", ":")))
    return layout.master_csv

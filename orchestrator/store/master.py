"""``master_results.csv``: one row per run folder, rebuilt from the records and reports.

The 21 AI Energy Score columns come first, in their fixed order and with their meaning, then this
project's extras. Every figure is read from the benchmark's report as it wrote it; nothing is
recomputed here. Reruns replace their row, they never add one.

Every row is kept beside the CSV in a cache file, with the identity, size and times of the files
it came from. ``update_master`` reads again only the run folders it is given (the runs that just
finished) and touches no other folder, so updating after every run of a long sweep stays cheap;
``rebuild_master`` looks at every folder and reads again those whose files changed.

A record or report that does not validate becomes a ``corrupt_result`` row that names the file
and the reason (a bad record's row keeps only its folder's name); nothing a run folder holds
makes a reader raise.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from energy_bench import contract
from orchestrator.store.files import read_json, write_atomic
from orchestrator.store.paths import RECORD_FILE, OutputLayout
from orchestrator.store.records import RECORD_SCHEMA, RunRecord, load_report, read_record

log = logging.getLogger(__name__)

AI_ENERGY_SCORE_COLUMNS = (
    "model_name", "model_class", "task", "reasoning_state", "total_prompts", "successful_prompts",
    "failed_prompts", "total_duration_seconds", "avg_total_time", "avg_time_to_first_token",
    "total_tokens", "total_prompt_tokens", "total_completion_tokens",
    "throughput_tokens_per_second", "gpu_energy_wh", "wh_per_1000_queries", "co2_emissions_g",
    "tokens_per_joule", "avg_energy_per_prompt_wh", "timestamp", "error_message",
)  # fmt: skip
EXTRA_COLUMNS = (
    "run_id", "run_name", "status", "cause", "runner", "executor", "host", "node_id", "image",
    "software_id", "gpu_name", "gpu_uuids", "energy_source", "energy_above_idle_wh",
    "idle_power_w", "average_power_w", "output_tokens_per_second", "repeats", "repeat_energy_cv",
    "reasoning_control", "reasoning_requested_control", "reasoning_mismatch", "reasoning_note",
    "generation_path", "short_window", "counter_reset", "trace_mismatch", "foreign_process",
    "recompiled", "gpu_count", "gpu_energy_j_each", "warmup", "batch_size", "config_hash",
    "attempts", "attempt_nodes", "run_wall_seconds", "log_path",
)  # fmt: skip
IMAGE_COLUMNS = ("images", "images_per_second", "image_pipeline", "image_protocol")
COLUMNS = AI_ENERGY_SCORE_COLUMNS + EXTRA_COLUMNS + IMAGE_COLUMNS
CORRUPT = "corrupt_result"
# A cache made for other columns, other schemas, another layout or another version is not used.
CACHE_KEY = (
    f"{contract.VERSION} report {contract.SCHEMA_VERSION} record {RECORD_SCHEMA} rows 3: "
    + ",".join(COLUMNS)
)
STAMP_SIZE = 8  # identity, size, modification and change time of the record, then the report

# The report's numbers that become columns of the same name.
_SUMMARY_COLUMNS = tuple(k for k in contract.SUMMARY_KEYS if k in COLUMNS)
_ENERGY_COLUMNS = tuple(k for k in contract.ENERGY_KEYS if k in COLUMNS)


def _record_columns(record: RunRecord) -> dict[str, Any]:
    return {
        "model_name": record.model_name or record.model_id,
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
        "executor": record.executor,
        "host": record.host,
        "node_id": record.node_id,
        "image": record.image,
        "software_id": record.software_id,
        "gpu_uuids": " ".join(record.gpu_uuids),
        "attempts": record.attempts,
        "attempt_nodes": "; ".join(record.attempt_nodes),
        "run_wall_seconds": round(record.duration_s, 3),
        "log_path": record.log_path,
        "reasoning_mismatch": record.reasoning_mismatch,
        "reasoning_note": record.reasoning_note,
        # A failed run keeps its real duration (never a zero).
        "total_duration_seconds": round(record.duration_s, 3),
    }


def _scalar(value: Any) -> Any:
    """A value the report does not validate, as a cell: text or a number, else none."""
    return value if isinstance(value, str | int | float) else None


def _report_columns(report: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of a report that ``contract.report_problem`` found readable."""
    summary, energy = report["summary"], report["energy"]
    provenance = report.get("provenance") if isinstance(report.get("provenance"), Mapping) else {}
    reasoning = report.get("reasoning") if isinstance(report.get("reasoning"), Mapping) else {}
    names = provenance.get("device_names") or []
    if not isinstance(names, list):
        names = [names]
    return {
        **{k: summary[k] for k in _SUMMARY_COLUMNS},
        **{k: energy[k] for k in _ENERGY_COLUMNS},
        **{k: energy["flags"][k] for k in contract.FLAG_KEYS},
        "energy_source": energy["energy_source"],
        "warmup": _scalar(summary.get("warmup")),
        "gpu_name": ", ".join(str(n) for n in names if _scalar(n) is not None),
        "config_hash": _scalar(provenance.get("config_hash")),
        **_gpu_columns(energy.get("gpus")),
        "reasoning_control": _scalar(report.get("reasoning_control")),
        "reasoning_requested_control": _scalar(reasoning.get("requested_control")),
        "reasoning_note": _scalar(reasoning.get("note")) or "",
        "generation_path": _scalar(report.get("generation_path")),
        **_image_columns(report.get("images")),
    }


def _image_columns(images: Any) -> dict[str, Any]:
    """An image run's count, rate, pipeline class and protocol (steps, size, guidance).

    Empty cells for a text run.
    """
    if not isinstance(images, Mapping):
        return dict.fromkeys(IMAGE_COLUMNS)
    protocol = (
        f"{images.get('num_inference_steps')} steps, {images.get('resolution')}, "
        f"guidance {images.get('guidance_scale')}"
        + (" (CFG)" if images.get("classifier_free_guidance") else "")
    )
    return {
        "images": _scalar(images.get("images")),
        "images_per_second": _scalar(images.get("images_per_second")),
        "image_pipeline": _scalar(images.get("pipeline")),
        "image_protocol": protocol,
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
    columns = _report_columns(report)
    # The host's note on the directive, then the benchmark's on what it could apply.
    notes = (record.reasoning_note, columns.pop("reasoning_note"))
    return row | columns | {"reasoning_note": "; ".join(n for n in notes if n)}


def corrupt_row(name: str, file: str, problem: str) -> dict[str, Any]:
    """The row of a run folder whose record could not be used: only its name and why."""
    message = f"{CORRUPT}: {file}: {problem}"
    return {"run_name": name, "status": CORRUPT, "cause": CORRUPT, "error_message": message}


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
    """The row of one run folder; None while it holds no finished record."""
    try:
        record, problem = read_record(folder)
        if problem:
            return corrupt_row(folder.name, RECORD_FILE, problem)
        if record is None or record.status in ("running", "interrupted"):
            return None
        return row_of(record, load_report(folder) if record.status == "ok" else None)
    except Exception as exc:  # a reader is total: one folder never stops the others
        log.warning("%s: cannot make its master row: %r", folder.name, exc)
        return corrupt_row(folder.name, "run folder", f"cannot be read ({exc!r:.200})")


def _values(row: Mapping[str, Any] | None) -> list[Any] | None:
    """A row as the cache keeps it: its values in column order."""
    return None if row is None else [row.get(c) for c in COLUMNS]


_Runs = dict[str, tuple[list[int], list[Any] | None]]


def _entry(hit: Any) -> tuple[list[int], list[Any] | None] | None:
    """A cache entry that has the expected shape, or None."""
    if not (isinstance(hit, list) and len(hit) == 2):
        return None
    stamp, values = hit
    if not (isinstance(stamp, list) and len(stamp) == STAMP_SIZE):
        return None
    if values is not None and not (isinstance(values, list) and len(values) == len(COLUMNS)):
        return None
    return stamp, values


def _load_cache(layout: OutputLayout) -> _Runs | None:
    """The cached rows by run name, or None when the cache is missing or not of this version."""
    data = read_json(layout.master_cache)
    if not isinstance(data, dict) or data.get("key") != CACHE_KEY:
        return None
    runs = data.get("runs")
    if not isinstance(runs, dict):
        return None
    entries = {name: _entry(hit) for name, hit in runs.items()}
    if any(entry is None for entry in entries.values()):
        return None
    return entries  # type: ignore[return-value]


def _read(folder: Path) -> tuple[list[int], list[Any] | None]:
    stamp = _stamp(folder)
    return stamp, _values(_row(folder))


def _scan(layout: OutputLayout) -> _Runs:
    """Every run folder's entry, reading only folders whose files changed since the cache."""
    old = _load_cache(layout) or {}
    runs: _Runs = {}
    for folder in layout.run_folders():
        stamp = _stamp(folder)
        hit = old.get(folder.name)
        runs[folder.name] = hit if hit is not None and hit[0] == stamp else _read(folder)
    return runs


def _dicts(runs: _Runs) -> list[dict[str, Any]]:
    return [dict(zip(COLUMNS, v, strict=True)) for _, v in runs.values() if v is not None]


def collect_rows(out_dir: Path) -> list[dict[str, Any]]:
    """A row per run folder that holds a finished record, sorted by run name."""
    return _dicts(_scan(OutputLayout(out_dir)))


def _csv_row(values: list[Any]) -> list[Any]:
    """A row as the master CSV writes it: empty for none (or NaN), formulas defused."""
    return [
        "" if v is None or v != v else contract.csv_cell(v) if isinstance(v, str) else v
        for v in values
    ]


def _write(layout: OutputLayout, runs: _Runs) -> Path:
    """The CSV and the cache of these entries, each replaced in one step; returns the CSV."""
    ordered = dict(sorted(runs.items()))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(_csv_row(values) for _, values in ordered.values() if values)
    write_atomic(layout.master_csv, buffer.getvalue())
    cache = {"key": CACHE_KEY, "runs": ordered}
    write_atomic(layout.master_cache, json.dumps(cache, separators=(",", ":")))
    return layout.master_csv


def rebuild_master(out_dir: Path) -> Path:
    """Rewrite ``master_results.csv`` from every run folder; returns its path.

    Reads again the folders whose record or report changed since the cache was written (all of
    them when there is no usable cache).
    """
    layout = OutputLayout(out_dir)
    return _write(layout, _scan(layout))


def update_master(out_dir: Path, run_names: Iterable[str]) -> Path:
    """Rewrite ``master_results.csv`` after the runs ``run_names`` finished; returns its path.

    Reads again only those runs' folders and keeps every other row as cached, without looking
    at any other folder. Without a usable cache it rebuilds from every folder instead.
    """
    layout = OutputLayout(out_dir)
    names = list(run_names)
    runs = _load_cache(layout)
    if runs is None or any(n in ("", ".", "..") or Path(n).name != n for n in names):
        return rebuild_master(out_dir)
    for name in names:
        folder = layout.run_dir(name)
        if folder.is_dir():
            runs[name] = _read(folder)
        else:
            runs.pop(name, None)
    return _write(layout, runs)

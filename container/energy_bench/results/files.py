"""Write a run's result files atomically into the results folder (names from the contract)."""

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

from energy_bench import contract
from energy_bench.benchmark import RunData

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
    writer.writerows([contract.csv_cell(v) for v in row] for row in rows)
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


def _write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def write_failure_report(results_dir: Path, report: Mapping[str, Any]) -> None:
    """The report of a run that failed: the report file alone."""
    _write_json(results_dir / contract.REPORT_FILE, report)


def write_report_files(results_dir: Path, report: Mapping[str, Any]) -> None:
    """The report, its flattened CSV row and the two GPU energy files."""
    _write_json(results_dir / contract.REPORT_FILE, report)
    flat = flatten(report)
    write_atomic(
        results_dir / contract.RESULTS_CSV_FILE, _csv_text(list(flat), [list(flat.values())])
    )
    energy = report.get("energy")
    if not energy:
        return
    write_atomic(results_dir / contract.ENERGY_WH_FILE, f"{energy['gpu_energy_wh']:.2f}\n")
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
    _write_json(results_dir / contract.ENERGY_SUMMARY_FILE, summary)


def write_images(results_dir: Path, images: Sequence[tuple[int, Any]]) -> None:
    """The images a run kept, as ``images/image_0000.png`` by prompt number (each one atomic)."""
    if not images:
        return
    folder = results_dir / contract.IMAGES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for number, image in images:
        path = folder / contract.image_file(number)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                image.save(f, format="PNG")
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_measurement_files(results_dir: Path, data: RunData) -> None:
    """The per-prompt table, the power trace and the images kept."""
    write_images(results_dir, data.images)
    records = [asdict(r) for p in data.passes for r in p.records]
    header = list(records[0]) if records else ["repeat", "prompt_index", "ok"]
    write_atomic(
        results_dir / contract.PER_PROMPT_FILE,
        _csv_text(header, ([r[h] for h in header] for r in records)),
    )
    devices = data.source.devices
    write_atomic(
        results_dir / contract.POWER_TRACE_FILE,
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

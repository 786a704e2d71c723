"""AI Energy Score star ratings.

Per task (and per class for text generation), per GPU model and per generation path, the range
[min, max] of GPU Wh per 1,000 queries is split into five equal-width bands; the lowest band gets
5 stars, the highest 1. A value on a band edge goes to the better band. Only successful, unsuspect
runs are rated, and only against runs on the same GPU model and the same generation path (eager
or compiled); estimated energies are rated only among themselves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

BANDS = 5
EDGE_TOLERANCE = 1e-9
SUSPECT_FLAGS = {
    "short_window": "measured window shorter than ten energy-counter updates",
    "counter_reset": "the energy counter reset during the run",
    "trace_mismatch": "power trace and energy counter disagree by more than 5 %",
    "foreign_process": "another process used the run's GPU during a measured window",
    "recompiled": "the compiler built a graph inside a measured window",
}


@dataclass(frozen=True)
class Rated:
    """One row's rating (``stars`` None when it is not rated, ``reason`` says why)."""

    row: Mapping[str, Any]
    stars: int | None
    group: str
    reason: str = ""


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def exclusion(row: Mapping[str, Any]) -> str:
    """Why a row cannot be rated ("" when it can)."""
    if row.get("status") != "ok":
        return f"run {row.get('status') or 'unknown'}: {row.get('error_message') or 'no result'}"
    for flag, text in SUSPECT_FLAGS.items():
        if _truthy(row.get(flag)):
            return f"suspect: {text}"
    value = _number(row.get("wh_per_1000_queries"))
    if value is None:
        return "no energy figure"
    if value <= 0:
        return "suspect: zero energy (a measurement that read nothing)"
    return ""


def group_of(row: Mapping[str, Any]) -> str:
    """The comparison group: task, class, GPU model, generation path, estimated or measured.

    The class counts for text generation only; a row without a generation path (an image task,
    a result of an older version) has none in its group.
    """
    task = row.get("task") or "?"
    parts = [task]
    if task == "text_gen":
        parts.append(f"class {row.get('model_class') or '?'}")
    parts.append(row.get("gpu_name") or "unknown GPU")
    if row.get("generation_path"):
        parts.append(f"{row['generation_path']} path")
    if row.get("energy_source") == "estimate":
        parts.append("estimated energy")
    return " / ".join(parts)


def stars_for(value: float, low: float, high: float) -> int:
    """5 for the lowest band ... 1 for the highest; a value on a band edge takes the better band."""
    if high <= low:
        return BANDS
    position = (value - low) / ((high - low) / BANDS)
    band = max(math.ceil(position - EDGE_TOLERANCE) - 1, 0)
    return BANDS - min(band, BANDS - 1)


def rate(rows: Iterable[Mapping[str, Any]]) -> list[Rated]:
    """A rating (or the reason for none) for every row, in the order given."""
    rows = list(rows)
    table = pd.DataFrame(
        {
            "group": [group_of(r) for r in rows],
            "reason": [exclusion(r) for r in rows],
            "value": [_number(r.get("wh_per_1000_queries")) for r in rows],
        },
        columns=["group", "reason", "value"],
    )
    ratable = table[table["reason"] == ""]
    bounds = ratable.groupby("group")["value"].agg(["min", "max", "count"])
    rated = []
    for row, (group, reason, value) in zip(rows, table.itertuples(index=False), strict=True):
        if reason:
            rated.append(Rated(row, None, group, reason))
            continue
        low, high, count = bounds.loc[group]
        note = "the only rated run in its group" if count == 1 else ""
        rated.append(Rated(row, stars_for(value, low, high), group, note))
    return rated


def best_per_group(rated: Sequence[Rated]) -> list[Rated]:
    """The best rated run of each group (most stars, then least energy, then name), by group."""
    best: dict[str, tuple[tuple[int, float, str], Rated]] = {}
    for r in rated:
        if r.stars is None:
            continue
        key = (
            -r.stars,
            _number(r.row.get("wh_per_1000_queries")) or 0.0,
            str(r.row.get("run_name")),
        )
        if r.group not in best or key < best[r.group][0]:
            best[r.group] = (key, r)
    return [best[group][1] for group in sorted(best)]

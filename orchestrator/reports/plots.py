"""The leaderboard's plots, drawn with matplotlib and returned as inline SVG text."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from energy_bench import contract
from orchestrator.reports.ratings import Rated
from orchestrator.store.paths import OutputLayout

CLASS_COLOURS = {"A": "#2a9d8f", "B": "#e9c46a", "C": "#e76f51", "": "#8d99ae"}


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG sits inside HTML


def _label(r: Rated) -> str:
    return str(r.row.get("run_name") or r.row.get("model_name"))


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def energy_by_model(rated: Sequence[Rated]) -> str:
    """GPU Wh per 1,000 queries per run, grouped by class, stars on the bars, CV error bars."""
    rows = sorted(
        (r for r in rated if _float(r.row.get("wh_per_1000_queries"))),
        key=lambda r: (r.row.get("model_class") or "", _label(r)),
    )
    fig, ax = plt.subplots(figsize=(9, 0.45 * max(len(rows), 3) + 1.2))
    for i, r in enumerate(rows):
        value = float(r.row["wh_per_1000_queries"])
        cv = _float(r.row.get("repeat_energy_cv")) or 0.0
        repeats = _float(r.row.get("repeats")) or 1
        ax.barh(
            i,
            value,
            color=CLASS_COLOURS.get(r.row.get("model_class") or "", "#8d99ae"),
            xerr=value * cv if repeats > 1 else None,
            capsize=3,
        )
        stars = "★" * r.stars + "☆" * (5 - r.stars) if r.stars else "not rated"
        ax.text(value, i, f"  {stars}", va="center", fontsize=8)
    ax.set_yticks(
        range(len(rows)),
        [f"{_label(r)} ({r.row.get('model_class') or '-'})" for r in rows],
        fontsize=8,
    )
    ax.invert_yaxis()
    ax.set_xlabel("GPU Wh per 1,000 queries (bars: class A/B/C; error bars: CV over repeats)")
    ax.set_title("Energy per 1,000 queries")
    return _svg(fig)


def efficiency_scatter(rated: Sequence[Rated]) -> str:
    """Tokens per joule against throughput."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rated:
        x, y = (
            _float(r.row.get("throughput_tokens_per_second")),
            _float(r.row.get("tokens_per_joule")),
        )
        if x is None or y is None:
            continue
        ax.scatter(x, y, color=CLASS_COLOURS.get(r.row.get("model_class") or "", "#8d99ae"))
        ax.annotate(_label(r), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("throughput (prompt + completion tokens / s)")
    ax.set_ylabel("tokens per joule (prompt + completion)")
    ax.set_title("Efficiency against speed")
    return _svg(fig)


def idle_split(rated: Sequence[Rated]) -> str:
    """Each run's GPU energy with and without the idle baseline."""
    rows = [r for r in rated if _float(r.row.get("gpu_energy_wh")) is not None]
    fig, ax = plt.subplots(figsize=(9, 0.45 * max(len(rows), 3) + 1.2))
    for i, r in enumerate(rows):
        total = float(r.row["gpu_energy_wh"])
        above = _float(r.row.get("energy_above_idle_wh"))
        ax.barh(i - 0.2, total, height=0.4, color="#264653", label="total" if i == 0 else None)
        if above is not None:
            ax.barh(
                i + 0.2, above, height=0.4, color="#f4a261", label="above idle" if i == 0 else None
            )
    ax.set_yticks(range(len(rows)), [_label(r) for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("GPU Wh per measured pass")
    ax.set_title("Energy with and without the idle baseline")
    ax.legend(fontsize=8)
    return _svg(fig)


def power_traces(rated: Sequence[Rated], output: OutputLayout) -> str:
    """Each run's sampled power over time (all its devices summed)."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    drawn = 0
    for r in rated:
        path = output.result(str(r.row.get("run_name")), contract.POWER_TRACE_FILE)
        if not path.is_file():
            continue
        by_time: dict[str, float] = {}
        with path.open(newline="") as f:
            for sample in csv.DictReader(f):
                by_time[sample["t_s"]] = by_time.get(sample["t_s"], 0.0) + float(sample["power_w"])
        if by_time:
            times = [float(t) for t in by_time]
            ax.plot(times, list(by_time.values()), linewidth=1, label=_label(r))
            drawn += 1
    ax.set_xlabel("seconds since the meter started")
    ax.set_ylabel("power (W)")
    ax.set_title("Power traces" + ("" if drawn else " (none recorded)"))
    if drawn:
        ax.legend(fontsize=7)
    return _svg(fig)

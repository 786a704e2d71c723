"""An energy label of a rated run, as PNG and SVG (model, task, class, Wh/1000, stars, GPU, date).

Every text from the run reaches matplotlib through ``plain``: a name is drawn as written, never
read as a formula.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from orchestrator.reports.drawing import plain
from orchestrator.reports.ratings import Rated
from orchestrator.store.paths import ReportLayout

SIZE_IN = (4.0, 5.0)
DPI = 150
STAR_COLOURS = {5: "#2a9d8f", 4: "#8ab17d", 3: "#e9c46a", 2: "#f4a261", 1: "#e76f51"}


def draw_label(r: Rated, layout: ReportLayout) -> tuple[Path, Path]:
    """Write the run's PNG and SVG label into the report's labels folder; returns both paths."""
    assert r.stars is not None
    fig = plt.figure(figsize=SIZE_IN, dpi=DPI)
    try:
        return _draw(fig, r, layout)
    finally:
        plt.close(fig)


def _draw(fig: Figure, r: Rated, layout: ReportLayout) -> tuple[Path, Path]:
    assert r.stars is not None
    row = r.row
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.add_patch(
        FancyBboxPatch(
            (0.04, 0.04),
            0.92,
            0.92,
            boxstyle="round,pad=0.01",
            linewidth=2,
            edgecolor="#1d3557",
            facecolor="white",
        )
    )
    ax.text(0.5, 0.9, "AI Energy Score", ha="center", fontsize=16, weight="bold", color="#1d3557")
    ax.text(0.5, 0.82, plain(row.get("model_name")), ha="center", fontsize=9, wrap=True)
    image = row.get("task") == "image_gen"  # no class, no reasoning; a query is an image
    details = "  ·  ".join(
        (str(row.get("task")),)
        if image
        else (
            str(row.get("task")),
            f"class {row.get('model_class') or '-'}",
            str(row.get("reasoning_state") or ""),
        )
    )
    ax.text(0.5, 0.76, plain(details), ha="center", fontsize=8, color="#444")
    ax.text(
        0.5,
        0.6,
        "★" * r.stars + "☆" * (5 - r.stars),
        ha="center",
        fontsize=30,
        color=STAR_COLOURS[r.stars],
    )
    value = float(row["wh_per_1000_queries"])
    ax.text(0.5, 0.45, f"{value:.4g} Wh", ha="center", fontsize=20, weight="bold")
    estimated = row.get("energy_source") == "estimate"
    # GPU energy only where the GPUs' counters measured it; an estimate says it is one.
    queries = "1,000 images" if image else "1,000 queries"
    if estimated:
        what = f"estimated energy per {queries} (CPU, not measured)"
    else:
        gpu = row.get("energy_source") == "nvml"
        what = f"{'GPU energy' if gpu else 'energy'} per {queries}"
    ax.text(0.5, 0.39, what, ha="center", fontsize=8, color="#444")
    lines = [
        f"GPU: {row.get('gpu_name') or 'unknown'}" + (" (ESTIMATED energy)" if estimated else ""),
        f"date: {str(row.get('timestamp') or '')[:10]}",
        f"run id: {row.get('run_id')}",
        f"rated in: {r.group}",
    ]
    for i, line in enumerate(lines):
        ax.text(0.1, 0.27 - i * 0.055, plain(line), fontsize=6.5, color="#333")
    png, svg = layout.label(str(r.row.get("run_name") or r.row.get("run_id")))
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=DPI)
    fig.savefig(svg)
    return png, svg

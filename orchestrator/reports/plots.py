"""The leaderboard's plots, drawn with matplotlib and returned as inline SVG text.

Each plot stays of a readable size whatever the number of runs: up to ``MAX_BARS`` runs are
drawn one bar each, more are drawn one bar per comparison group (its median, with the range of
its runs); the scatter names its points only when there are few of them and draws many as one
image; power traces are drawn for a few runs only (the best of each group first when there are
many), each thinned to ``MAX_TRACE_POINTS`` samples. A power trace that cannot be read is left out
with a warning; it never stops the plot.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from energy_bench import contract
from orchestrator.reports.drawing import plain
from orchestrator.reports.ratings import Rated, best_per_group
from orchestrator.store.paths import OutputLayout

log = logging.getLogger(__name__)

CLASS_COLOURS = {"A": "#2a9d8f", "B": "#e9c46a", "C": "#e76f51", "": "#8d99ae"}
OTHER_COLOUR = "#8d99ae"
MAX_BARS = 40  # bars per plot: one per run up to this many, else one per group
MAX_NAMED_POINTS = 40  # scatter points named beside them
MAX_TRACES = 12  # power traces drawn
MAX_TRACE_POINTS = 2000  # samples kept of each trace
MAX_TRACE_BYTES = 64 * 1024 * 1024  # a larger trace file is not read


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    try:
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    finally:
        plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG sits inside HTML


def _name(r: Rated) -> str:
    return str(r.row.get("run_name") or r.row.get("model_name"))


def _float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _colour(r: Rated) -> str:
    return CLASS_COLOURS.get(str(r.row.get("model_class") or ""), OTHER_COLOUR)


def _height(bars: int) -> float:
    return 0.45 * max(bars, 3) + 1.2


def _stars(stars: int | None) -> str:
    return "★" * stars + "☆" * (5 - stars) if stars else "not rated"


def _groups(rows: Sequence[Rated], value: Callable[[Rated], float]) -> list[tuple[str, list]]:
    """The groups of most runs (at most ``MAX_BARS``), each with its runs' values, sorted."""
    groups: dict[str, list[Rated]] = {}
    for r in rows:
        groups.setdefault(r.group, []).append(r)
    biggest = sorted(groups.items(), key=lambda g: (-len(g[1]), g[0]))[:MAX_BARS]
    return [(group, sorted(value(r) for r in runs)) for group, runs in biggest]


def _estimated(r: Rated) -> bool:
    return r.row.get("energy_source") == "estimate"


def _energy_terms(rows: Sequence[Rated]) -> tuple[str, str, str]:
    """How a plot names the energy of ``rows``: the axis's quantity, the title's, and a note.

    GPU Wh only where every figure was measured by the GPUs' counters; a CPU estimate (no GPU
    counter) is called one wherever it is drawn, never passed off as a measured GPU figure.
    """
    sources = {r.row.get("energy_source") for r in rows}
    if "estimate" not in sources:
        return ("GPU Wh" if sources <= {"nvml"} else "Energy, Wh"), "Energy", ""
    if sources == {"estimate"}:
        return "Estimated energy, Wh", "Estimated energy", "CPU estimate, not measured"
    return "Energy, Wh", "Energy (measured and estimated)", "estimates: CPU, not measured"


def _run_label(r: Rated) -> str:
    """A run's name on an axis, with its class and whether its energy is an estimate."""
    return f"{_name(r)} ({r.row.get('model_class') or '-'}{', estimate' if _estimated(r) else ''})"


def _more(shown: int, total: int, what: str) -> str:
    return f" ({total - shown} more {what} not shown)" if total > shown else ""


def energy_by_model(rated: Sequence[Rated]) -> str:
    """Wh per 1,000 queries: per run (class colour, stars, CV error bars), or per group.

    Called GPU Wh only when every run was measured on its GPUs (``_energy_terms``).
    """
    rows = sorted(
        (r for r in rated if _float(r.row.get("wh_per_1000_queries"))),
        key=lambda r: (str(r.row.get("model_class") or ""), _name(r)),
    )
    if len(rows) > MAX_BARS:
        return _energy_by_group(rows)
    values = [float(r.row["wh_per_1000_queries"]) for r in rows]
    errors = []
    for r, value in zip(rows, values, strict=True):
        cv = _float(r.row.get("repeat_energy_cv")) or 0.0
        repeats = _float(r.row.get("repeats")) or 1
        errors.append(value * cv if repeats > 1 else 0.0)
    fig, ax = plt.subplots(figsize=(9, _height(len(rows))))
    ax.barh(range(len(rows)), values, color=[_colour(r) for r in rows], xerr=errors, capsize=3)
    for i, (r, value) in enumerate(zip(rows, values, strict=True)):
        ax.text(value, i, f"  {_stars(r.stars)}", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [plain(_run_label(r)) for r in rows], fontsize=8)
    ax.invert_yaxis()
    quantity, what, note = _energy_terms(rows)
    note = f"{note}; " if note else ""
    ax.set_xlabel(
        f"{quantity} per 1,000 queries ({note}bars: class A/B/C; error bars: CV over repeats)"
    )
    ax.set_title(f"{what} per 1,000 queries")
    return _svg(fig)


def _energy_by_group(rows: Sequence[Rated]) -> str:
    groups = _groups(rows, lambda r: float(r.row["wh_per_1000_queries"]))
    total = len({r.group for r in rows})
    medians = [statistics.median(v) for _, v in groups]
    low = [m - v[0] for m, (_, v) in zip(medians, groups, strict=True)]
    high = [v[-1] - m for m, (_, v) in zip(medians, groups, strict=True)]
    fig, ax = plt.subplots(figsize=(9, _height(len(groups))))
    ax.barh(range(len(groups)), medians, color="#457b9d", xerr=[low, high], capsize=3)
    for i, (_, values) in enumerate(groups):
        ax.text(values[-1], i, f"  {len(values)} runs", va="center", fontsize=8)
    ax.set_yticks(range(len(groups)), [plain(g) for g, _ in groups], fontsize=8)
    ax.invert_yaxis()
    quantity, what, note = _energy_terms(rows)
    note = f"{note}; " if note else ""
    ax.set_xlabel(f"{quantity} per 1,000 queries ({note}bar: median of the group; line: its range)")
    ax.set_title(
        f"{what} per 1,000 queries, {len(rows)} runs by comparison group"
        + _more(len(groups), total, "groups")
    )
    return _svg(fig)


def efficiency_scatter(rated: Sequence[Rated]) -> str:
    """Tokens per joule against throughput, one colour per class; few points named."""
    points = []
    for r in rated:
        x = _float(r.row.get("throughput_tokens_per_second"))
        y = _float(r.row.get("tokens_per_joule"))
        if x is not None and y is not None:
            points.append((r, x, y))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    many = len(points) > MAX_NAMED_POINTS
    by_colour: dict[str, list[tuple[float, float]]] = {}
    for r, x, y in points:
        by_colour.setdefault(_colour(r), []).append((x, y))
    for colour, xy in by_colour.items():
        xs, ys = zip(*xy, strict=True)
        ax.scatter(xs, ys, color=colour, s=8 if many else 36, rasterized=many)
    named = points
    if many:
        best = {id(r) for r in best_per_group(rated)[:MAX_NAMED_POINTS]}
        named = [p for p in points if id(p[0]) in best]
    for r, x, y in named:
        ax.annotate(plain(_name(r)), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("throughput (prompt + completion tokens / s)")
    ax.set_ylabel("tokens per joule (prompt + completion)")
    title = "Efficiency against speed"
    ax.set_title(title + (f", {len(points)} runs (named: best of each group)" if many else ""))
    return _svg(fig)


def idle_split(rated: Sequence[Rated]) -> str:
    """Each run's energy with and without the idle baseline (group means when many)."""
    rows = [r for r in rated if _float(r.row.get("gpu_energy_wh")) is not None]
    if len(rows) > MAX_BARS:
        totals = _groups(rows, lambda r: float(r.row["gpu_energy_wh"]))
        above = dict(_groups(rows, lambda r: _float(r.row.get("energy_above_idle_wh")) or 0.0))
        names = [g for g, _ in totals]
        total_bars = [statistics.mean(v) for _, v in totals]
        above_bars = [statistics.mean(above[g]) for g in names]
        count = len({r.group for r in rows})
        title = f"with and without the idle baseline: mean of each group ({len(rows)} runs)"
        title += _more(len(names), count, "groups")
    else:
        names = [_run_label(r) for r in rows]
        total_bars = [float(r.row["gpu_energy_wh"]) for r in rows]
        above_bars = [_float(r.row.get("energy_above_idle_wh")) or 0.0 for r in rows]
        title = "with and without the idle baseline"
    fig, ax = plt.subplots(figsize=(9, _height(len(names))))
    where = range(len(names))
    ax.barh([i - 0.2 for i in where], total_bars, height=0.4, color="#264653", label="total")
    ax.barh([i + 0.2 for i in where], above_bars, height=0.4, color="#f4a261", label="above idle")
    ax.set_yticks(where, [plain(n) for n in names], fontsize=8)
    ax.invert_yaxis()
    quantity, what, note = _energy_terms(rows)
    ax.set_xlabel(f"{quantity} per measured pass" + (f" ({note})" if note else ""))
    ax.set_title(f"{what} {title}")
    if names:
        ax.legend(fontsize=8)
    return _svg(fig)


def read_trace(path: Path) -> tuple[list[float], list[float]] | None:
    """Times and power (all devices summed) of a power trace; None when it cannot be read.

    Samples that are not finite numbers are left out; a file without the expected columns, or
    that is not text, cannot be read.
    """
    try:
        if path.stat().st_size > MAX_TRACE_BYTES:
            raise ValueError(f"larger than {MAX_TRACE_BYTES // 2**20} MiB")
        by_time: dict[float, float] = {}
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not {"t_s", "power_w"} <= set(reader.fieldnames or ()):
                raise ValueError("no t_s and power_w columns")
            for sample in reader:
                t, power = _float(sample.get("t_s")), _float(sample.get("power_w"))
                if t is not None and power is not None:
                    by_time[t] = by_time.get(t, 0.0) + power
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        log.warning("%s: power trace not drawn: %s", path.parent.name, exc)
        return None
    if not by_time:
        return None
    times = sorted(by_time)
    step = max(len(times) // MAX_TRACE_POINTS, 1)
    kept = times[::step]
    return kept, [by_time[t] for t in kept]


def power_traces(rated: Sequence[Rated], output: OutputLayout) -> str:
    """The sampled power over time of a few runs (all their devices summed).

    With more than ``MAX_TRACES`` runs, the best run of each group comes first, then the others
    in order, until ``MAX_TRACES`` traces are drawn.
    """
    few = len(rated) <= MAX_TRACES
    best = [] if few else best_per_group(rated)
    chosen = {id(r) for r in best}
    fig, ax = plt.subplots(figsize=(9, 4.5))
    drawn = 0
    for r in [*best, *(r for r in rated if id(r) not in chosen)]:
        if drawn == MAX_TRACES:
            break
        path = output.result(str(r.row.get("run_name")), contract.POWER_TRACE_FILE)
        trace = read_trace(path) if path.is_file() else None
        if trace:
            ax.plot(*trace, linewidth=1, label=plain(_name(r)))
            drawn += 1
    ax.set_xlabel("seconds since the meter started")
    ax.set_ylabel("power (W)")
    if not drawn:
        title = "Power traces (none recorded)"
    elif few:
        title = "Power traces"
    else:
        title = f"Power traces of {drawn} of {len(rated)} runs (the best of each group first)"
    ax.set_title(title)
    if drawn:
        ax.legend(fontsize=7)
    return _svg(fig)

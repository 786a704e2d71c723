"""The leaderboard: ``leaderboard.csv`` and one self-contained ``leaderboard.html``."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from energy_bench import contract
from orchestrator.reports import plots
from orchestrator.reports.ratings import Rated
from orchestrator.store.files import write_atomic
from orchestrator.store.paths import OutputLayout

COLUMNS = (
    ("stars", "stars"), ("run", "run_name"), ("model", "model_name"), ("state", "reasoning_state"),
    ("class", "model_class"), ("task", "task"), ("GPU", "gpu_name"),
    ("Wh / 1000 queries", "wh_per_1000_queries"), ("tokens / J", "tokens_per_joule"),
    ("tokens / s", "throughput_tokens_per_second"), ("avg W", "average_power_w"),
    ("idle W", "idle_power_w"), ("Wh above idle", "energy_above_idle_wh"),
    ("CV", "repeat_energy_cv"), ("energy source", "energy_source"), ("group", "group"),
    ("note", "note"), ("run id", "run_id"),
)  # fmt: skip
NUMERIC = {
    "wh_per_1000_queries",
    "tokens_per_joule",
    "throughput_tokens_per_second",
    "average_power_w",
    "idle_power_w",
    "energy_above_idle_wh",
    "repeat_energy_cv",
    "stars",
}


def _cells(r: Rated) -> dict[str, str]:
    cells = {key: str(r.row.get(key) if r.row.get(key) is not None else "") for _, key in COLUMNS}
    cells["stars"] = str(r.stars) if r.stars else ""
    cells["group"] = r.group
    note = r.reason
    if r.row.get("energy_source") == "estimate":
        note = ("estimated energy (no GPU counter); " + note).strip("; ")
    cells["note"] = note
    return cells


def _fmt(key: str, text: str) -> str:
    if key in NUMERIC and key != "stars" and text:
        try:
            return f"{float(text):.4g}"
        except ValueError:
            return text
    return text


def write_csv(path: Path, rated: Sequence[Rated]) -> None:
    """The leaderboard as CSV, best stars first."""
    cells = [{k: contract.csv_cell(v) for k, v in _cells(r).items()} for r in ordered(rated)]
    table = pd.DataFrame(cells, columns=[k for _, k in COLUMNS], dtype=object)
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, lineterminator="\n")
    write_atomic(path, buffer.getvalue())


def ordered(rated: Sequence[Rated]) -> list[Rated]:
    """Rated runs first (by group, then most stars, then least energy), the rest after."""

    def key(r: Rated) -> tuple[int, str, int, float]:
        energy = float(r.row.get("wh_per_1000_queries") or 0) if r.stars else 0.0
        return (0 if r.stars else 1, r.group, -(r.stars or 0), energy)

    return sorted(rated, key=key)


SORT_SCRIPT = """
document.querySelectorAll('th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.from(body.rows);
    var asc = th.dataset.asc !== '1'; th.dataset.asc = asc ? '1' : '0';
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #1d3557; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccd; padding: 4px 6px; }
th { background: #e9eef5; cursor: pointer; position: sticky; top: 0; }
tr.unrated td { color: #888; }
tr.estimated td { background: #fff8e6; }
td.stars { color: #e9a400; white-space: nowrap; }
figure { margin: 24px 0; } .note { color: #555; font-size: 13px; }
"""


def write_html(path: Path, rated: Sequence[Rated], output: OutputLayout) -> None:
    """One HTML file with everything inline (table, sorting script, SVG plots)."""
    head = "".join(f"<th>{html.escape(title)}</th>" for title, _ in COLUMNS)
    body = []
    for r in ordered(rated):
        cells = _cells(r)
        classes = [
            c
            for c, on in (
                ("unrated", not r.stars),
                ("estimated", r.row.get("energy_source") == "estimate"),
            )
            if on
        ]
        tds = []
        for _, key in COLUMNS:
            value = cells[key]
            shown = (
                ("★" * int(value) + "☆" * (5 - int(value)))
                if key == "stars" and value
                else _fmt(key, value)
            )
            css = ' class="stars"' if key == "stars" else ""
            tds.append(f'<td{css} data-v="{html.escape(value)}">{html.escape(shown)}</td>')
        body.append(f'<tr class="{" ".join(classes)}">{"".join(tds)}</tr>')
    figures = [
        ("plot-energy", plots.energy_by_model(rated)),
        ("plot-efficiency", plots.efficiency_scatter(rated)),
        ("plot-idle", plots.idle_split(rated)),
        ("plot-power", plots.power_traces(rated, output)),
    ]
    estimated = any(r.row.get("energy_source") == "estimate" for r in rated)
    estimate_note = (
        "Shaded rows are <b>estimated</b> energies (no GPU counter), rated only among themselves."
        if estimated
        else ""
    )
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>AI Energy Score leaderboard</title>
<style>{STYLE}</style></head><body>
<h1>AI Energy Score leaderboard</h1>
<p class="note">{len(rated)} runs from {html.escape(str(output.root))}, made {made}. Stars: per task
(and class for text generation) and GPU model, the range of GPU Wh per 1,000 queries in five
equal bands, 5 stars for the lowest. Grey rows are not rated (the note says why).
{estimate_note}
Click a column title to sort.</p>
<table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>
{"".join(body)}
</tbody></table>
{"".join(f'<figure id="{fid}">{svg}</figure>' for fid, svg in figures)}
<script>{SORT_SCRIPT}</script>
</body></html>
"""
    write_atomic(path, page)

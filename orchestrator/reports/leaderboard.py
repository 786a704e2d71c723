"""The leaderboard: ``leaderboard.csv`` and one self-contained ``leaderboard.html``.

The page stays small and quick whatever the number of runs: every run's cells travel once, as
JSON inside the page, and a short script shows them ``PAGE_ROWS`` at a time, sorted by any column
and filtered by any text. The first page is written as plain HTML too, for a reader without
scripts. Nothing is fetched from a network. A plot that fails to draw leaves a note in its place.
"""

from __future__ import annotations

import html
import io
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from energy_bench import contract
from orchestrator.reports import plots
from orchestrator.reports.gallery import gallery_html
from orchestrator.reports.ratings import Rated
from orchestrator.store.files import write_atomic
from orchestrator.store.paths import OutputLayout

log = logging.getLogger(__name__)

PAGE_ROWS = 100  # table rows shown at a time

COLUMNS = (
    ("stars", "stars"), ("run", "run_name"), ("model", "model_name"), ("state", "reasoning_state"),
    ("class", "model_class"), ("task", "task"), ("GPU", "gpu_name"),
    ("path", "generation_path"),
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


def _reasoning_note(row: Mapping[str, Any]) -> str:
    """What a reader of the table must know of a row's reasoning, in its note.

    A mode the model lacks, or a switch its template does not read (rows of state ``Off (N/A)``
    may have none to read: not noted).
    """
    if row.get("reasoning_mismatch"):
        return f"reasoning: {row['reasoning_mismatch']}"
    asked = row.get("reasoning_requested_control") or "none"
    if (
        row.get("reasoning_control") == "none"
        and asked not in ("none", "model_default")
        and row.get("reasoning_state") != "Off (N/A)"
    ):
        return f"reasoning not applied ({asked}): {row.get('reasoning_note') or 'see its report'}"
    return ""


def _cells(r: Rated) -> dict[str, str]:
    cells = {key: str(r.row.get(key) if r.row.get(key) is not None else "") for _, key in COLUMNS}
    cells["stars"] = str(r.stars) if r.stars else ""
    cells["group"] = r.group
    estimate = r.row.get("energy_source") == "estimate"
    notes = (
        _reasoning_note(r.row),
        "estimated energy (no GPU counter)" if estimate else "",
        r.reason,
    )
    cells["note"] = "; ".join(n for n in notes if n)
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


TABLE_SCRIPT = """
(function () {
  var data = JSON.parse(document.getElementById('leaderboard-data').textContent);
  var table = document.getElementById('leaderboard'), body = table.tBodies[0];
  var filter = document.getElementById('filter'), info = document.getElementById('pager-info');
  var all = data.rows, view = all, page = 0, size = data.page_rows;
  function raw(cell) { return Array.isArray(cell) ? cell[0] : cell; }
  function shown(cell) { return Array.isArray(cell) ? cell[1] : cell; }
  function text(row) {
    if (row.text === undefined) { row.text = row.slice(1).map(shown).join(' ').toLowerCase(); }
    return row.text;
  }
  function render() {
    var pages = Math.max(1, Math.ceil(view.length / size));
    page = Math.min(Math.max(page, 0), pages - 1);
    var rows = document.createDocumentFragment();
    view.slice(page * size, (page + 1) * size).forEach(function (row) {
      var tr = document.createElement('tr');
      tr.className = row[0];
      for (var i = 1; i < row.length; i++) {
        var td = document.createElement('td');
        if (i - 1 === data.stars_column) { td.className = 'stars'; }
        td.textContent = shown(row[i]);
        tr.appendChild(td);
      }
      rows.appendChild(tr);
    });
    body.replaceChildren(rows);
    var first = view.length ? page * size + 1 : 0, last = Math.min((page + 1) * size, view.length);
    info.textContent = 'runs ' + first + '-' + last + ' of ' + view.length +
      (view.length < all.length ? ' (filtered from ' + all.length + ')' : '') +
      ', page ' + (page + 1) + ' of ' + pages;
  }
  function refilter() {
    var words = filter.value.trim().toLowerCase();
    view = words ? all.filter(function (row) { return text(row).indexOf(words) >= 0; }) : all;
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    th.addEventListener('click', function () {
      var asc = th.dataset.asc !== '1'; th.dataset.asc = asc ? '1' : '0';
      all = all.slice().sort(function (a, b) {
        var x = raw(a[col + 1]), y = raw(b[col + 1]);
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      refilter(); page = 0; render();
    });
  });
  filter.addEventListener('input', function () { refilter(); page = 0; render(); });
  var moves = {'page-first': function () { page = 0; }, 'page-prev': function () { page -= 1; },
               'page-next': function () { page += 1; }, 'page-last': function () { page = 1e9; }};
  Object.keys(moves).forEach(function (id) {
    document.getElementById(id).addEventListener('click', function () { moves[id](); render(); });
  });
  render();
})();
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #1d3557; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccd; padding: 4px 6px; }
th { background: #e9eef5; cursor: pointer; position: sticky; top: 0; }
tr.unrated td { color: #888; }
tr.estimated td { background: #fff8e6; }
td.stars { color: #e9a400; white-space: nowrap; }
.pager { margin: 8px 0; font-size: 13px; } .pager input { width: 16em; }
figure { margin: 24px 0; } .note { color: #555; font-size: 13px; }
.gallery-run img { margin: 0 6px 6px 0; border: 1px solid #ccd; }
.gallery-run h3 { font-size: 14px; margin: 12px 0 4px; }
"""


def _shown(key: str, value: str) -> str:
    if key == "stars" and value:
        return "★" * int(value) + "☆" * (5 - int(value))
    return _fmt(key, value)


def _row_data(r: Rated) -> list[object]:
    """A table row as the page's JSON holds it: its CSS classes, then each cell.

    A cell is its value, or ``[value, shown]`` where it is shown otherwise (stars, rounding).
    """
    classes = [
        c
        for c, on in (
            ("unrated", not r.stars),
            ("estimated", r.row.get("energy_source") == "estimate"),
        )
        if on
    ]
    cells = _cells(r)
    data: list[object] = [" ".join(classes)]
    for _, key in COLUMNS:
        value = cells[key]
        shown = _shown(key, value)
        data.append(value if shown == value else [value, shown])
    return data


def _row_html(data: list[object]) -> str:
    tds = []
    for (_, key), cell in zip(COLUMNS, data[1:], strict=True):
        shown = cell[1] if isinstance(cell, list) else cell
        css = ' class="stars"' if key == "stars" else ""
        tds.append(f"<td{css}>{html.escape(str(shown))}</td>")
    return f'<tr class="{data[0]}">{"".join(tds)}</tr>'


def _script_json(data: object) -> str:
    """``data`` as JSON that cannot end the script element it sits in."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _figure(fid: str, draw: Callable[[], str]) -> str:
    """One plot as a figure; a plot that fails leaves a note (and a warning) instead."""
    try:
        svg = draw()
    except Exception as exc:  # one plot never costs the page
        log.warning("report: plot %s not drawn: %s", fid, exc)
        svg = f'<p class="note">This plot could not be drawn: {html.escape(str(exc))}</p>'
    return f'<figure id="{fid}">{svg}</figure>'


def write_html(path: Path, rated: Sequence[Rated], output: OutputLayout) -> None:
    """One HTML file with everything inline (the table's data and script, SVG plots)."""
    head = "".join(f"<th>{html.escape(title)}</th>" for title, _ in COLUMNS)
    rows = [_row_data(r) for r in ordered(rated)]
    first_page = "".join(_row_html(row) for row in rows[:PAGE_ROWS])
    table_data = {"page_rows": PAGE_ROWS, "stars_column": 0, "rows": rows}
    figures = "".join(
        _figure(fid, draw)
        for fid, draw in (
            ("plot-energy", lambda: plots.energy_by_model(rated)),
            ("plot-efficiency", lambda: plots.efficiency_scatter(rated)),
            ("plot-idle", lambda: plots.idle_split(rated)),
            ("plot-power", lambda: plots.power_traces(rated, output)),
        )
    )
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
Click a column title to sort; type in the box to keep only the runs that show that text.</p>
<div class="pager">
<input id="filter" type="search" placeholder="filter runs" aria-label="filter runs">
<button id="page-first">&laquo;</button><button id="page-prev">&lsaquo;</button>
<span id="pager-info">runs 1-{min(len(rows), PAGE_ROWS)} of {len(rows)}</span>
<button id="page-next">&rsaquo;</button><button id="page-last">&raquo;</button></div>
<noscript><p class="note">Without scripts only the first {PAGE_ROWS} runs are shown;
leaderboard.csv holds them all.</p></noscript>
<table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>
{first_page}
</tbody></table>
{gallery_html(rated, output)}
{figures}
<script type="application/json" id="leaderboard-data">{_script_json(table_data)}</script>
<script>{TABLE_SCRIPT}</script>
</body></html>
"""
    write_atomic(path, page)

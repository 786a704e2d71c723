"""Build a sweep's report: ratings, leaderboard (CSV + HTML), labels, submission archive."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import RunnerError
from orchestrator.reports.archive import write_archive
from orchestrator.reports.labels import draw_label
from orchestrator.reports.leaderboard import write_csv, write_html
from orchestrator.reports.ratings import rate
from orchestrator.secrets import Redactor, find_hf_token
from orchestrator.store.lock import report_lock
from orchestrator.store.master import collect_rows
from orchestrator.store.paths import OutputLayout, ReportLayout


@dataclass(frozen=True)
class ReportFiles:
    """Where the report went."""

    layout: ReportLayout
    labels: tuple[Path, ...]


def make_report(out_dir: Path, report_dir: Path | None = None) -> ReportFiles:
    """Build every report file for the sweep in ``out_dir``."""
    output = OutputLayout(out_dir)
    rows = collect_rows(out_dir)
    if not rows:
        raise RunnerError(f"{out_dir}: no runs to report (no run folder holds a record)")
    layout = ReportLayout(report_dir or output.report)
    rated = rate(rows)
    token = find_hf_token()
    labels: list[Path] = []
    with report_lock(layout):
        write_csv(layout.leaderboard_csv, rated)
        write_html(layout.leaderboard_html, rated, output)
        for r in rated:
            if r.stars is not None:
                labels.extend(draw_label(r, layout))
        write_archive(
            layout.archive,
            output,
            [r for r in rows if r.get("status") == "ok"],
            Redactor(token.value if token else None),
        )
    return ReportFiles(layout, tuple(labels))

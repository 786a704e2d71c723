"""Build a sweep's report: ratings, leaderboard (CSV + HTML), labels, submission archive.

Each part fails alone: a part that cannot be written (a label, a plot, the archive) is left out
with a warning that names it, and every other part is still written. Energy labels are drawn
for the best run of each rating group unless all are asked for, which keeps a report over
thousands of runs quick; labels of an earlier report that this one did not draw are removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from orchestrator.errors import RunnerError
from orchestrator.reports.archive import write_archive
from orchestrator.reports.labels import draw_label
from orchestrator.reports.leaderboard import write_csv, write_html
from orchestrator.reports.ratings import Rated, best_per_group, rate
from orchestrator.secrets import Redactor, find_hf_token
from orchestrator.store.lock import report_lock
from orchestrator.store.master import collect_rows
from orchestrator.store.paths import OutputLayout, ReportLayout

log = logging.getLogger(__name__)

Labels = Literal["best", "all"]
"""Which rated runs get an energy label: the best of each rating group, or every one."""


@dataclass(frozen=True)
class ReportFiles:
    """Where the report went, and the parts that could not be written (with why)."""

    layout: ReportLayout
    labels: tuple[Path, ...]
    problems: tuple[str, ...] = ()


def labelled(rated: list[Rated], labels: Labels) -> list[Rated]:
    """The rated runs that get a label."""
    if labels == "all":
        return [r for r in rated if r.stars is not None]
    return best_per_group(rated)


def make_report(
    out_dir: Path, report_dir: Path | None = None, *, labels: Labels = "best"
) -> ReportFiles:
    """Build every report file for the sweep in ``out_dir``.

    Raises ``RunnerError`` only when there is nothing to report or another report holds the
    folder; a part that fails is left out, logged and listed in ``problems``.
    """
    output = OutputLayout(out_dir)
    rows = collect_rows(out_dir)
    if not rows:
        raise RunnerError(f"{out_dir}: no runs to report (no run folder holds a record)")
    layout = ReportLayout(report_dir or output.report)
    rated = rate(rows)
    token = find_hf_token()
    problems: list[str] = []

    def part(name: str, write: Callable[[], object]) -> None:
        try:
            write()
        except Exception as exc:  # one part never costs the others
            log.warning("report: %s not written: %s", name, exc)
            problems.append(f"{name}: {exc}")

    drawn: list[Path] = []
    with report_lock(layout):
        csv_file, html_file = layout.leaderboard_csv, layout.leaderboard_html
        part(csv_file.name, lambda: write_csv(csv_file, rated))
        part(html_file.name, lambda: write_html(html_file, rated, output))
        for r in labelled(rated, labels):
            run = str(r.row.get("run_name") or r.row.get("run_id"))
            part(f"label of {run}", lambda r=r: drawn.extend(draw_label(r, layout)))
        part("old labels", lambda: _remove_other_labels(layout, drawn))
        part(
            layout.archive.name,
            lambda: write_archive(
                layout.archive,
                output,
                [r for r in rows if r.get("status") == "ok"],
                Redactor(token.value if token else None),
            ),
        )
    return ReportFiles(layout, tuple(drawn), tuple(problems))


def _remove_other_labels(layout: ReportLayout, drawn: list[Path]) -> None:
    """Remove the label images that this report did not draw (an earlier report's)."""
    if not layout.labels.is_dir():
        return
    keep = set(drawn)
    for path in layout.labels.iterdir():
        if path.suffix in (".png", ".svg") and path not in keep and path.is_file():
            path.unlink()

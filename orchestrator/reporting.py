"""``batch_runner.py report``: ratings, leaderboard (CSV + HTML), labels, submission archive."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.archive import write_archive
from orchestrator.errors import RunnerError
from orchestrator.labels import draw_label
from orchestrator.leaderboard import write_csv, write_html
from orchestrator.ratings import rate
from orchestrator.results import collect_rows
from orchestrator.secrets import Redactor, find_hf_token

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportFiles:
    """Where the report went."""

    folder: Path
    leaderboard_csv: Path
    leaderboard_html: Path
    labels: tuple[Path, ...]
    archive: Path


def make_report(out_dir: Path, report_dir: Path | None = None) -> ReportFiles:
    """Build every report file for the sweep in ``out_dir``."""
    rows = collect_rows(out_dir)
    if not rows:
        raise RunnerError(f"{out_dir}: no runs to report (no individual_runs/*/run_record.json)")
    folder = report_dir or out_dir / "report"
    rated = rate(rows)
    csv_path, html_path = folder / "leaderboard.csv", folder / "leaderboard.html"
    write_csv(csv_path, rated)
    write_html(html_path, rated, out_dir)
    labels: list[Path] = []
    for r in rated:
        if r.stars is not None:
            labels.extend(draw_label(r, folder / "labels"))
    token = find_hf_token()
    archive = write_archive(
        folder / "submission.zip",
        out_dir,
        [r for r in rows if r.get("status") == "ok"],
        Redactor(token.value if token else None),
    )
    return ReportFiles(folder, csv_path, html_path, tuple(labels), archive)


def report_cli(argv: Sequence[str]) -> int:
    """Entry point of ``batch_runner.py report``."""
    parser = argparse.ArgumentParser(
        prog="batch_runner.py report",
        description="Star ratings, leaderboard.csv/.html, energy labels and the submission "
        "archive for a sweep's output folder.",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("batch_results"),
        help="the sweep's output folder (./batch_results)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="report folder (<output-dir>/report)"
    )
    args = parser.parse_args(argv)
    files = make_report(args.output_dir.resolve(), args.out.resolve() if args.out else None)
    print(
        f"leaderboard: {files.leaderboard_html}\nlabels: {len(files.labels) // 2} "
        f"in {files.folder / 'labels'}\narchive: {files.archive}"
    )
    return 0

"""``batch_runner.py report``: the report of a sweep's output folder."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from orchestrator.store.paths import DEFAULT_OUTPUT_DIR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batch_runner.py report",
        description="Star ratings, leaderboard.csv/.html, energy labels and the submission "
        "archive for a sweep's output folder.",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(DEFAULT_OUTPUT_DIR),
        help=f"the sweep's output folder (./{DEFAULT_OUTPUT_DIR})",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="report folder (<output-dir>/report)"
    )
    parser.add_argument(
        "--labels",
        choices=("best", "all"),
        default="best",
        help="energy labels for the best run of each rating group, or for every rated run (best)",
    )
    return parser


def report_cli(argv: Sequence[str]) -> int:
    """Entry point of ``batch_runner.py report``."""
    from orchestrator.reports.build import make_report  # matplotlib loads only when reporting

    args = _parser().parse_args(argv)
    files = make_report(
        args.output_dir.resolve(), args.out.resolve() if args.out else None, labels=args.labels
    )
    print(
        f"leaderboard: {files.layout.leaderboard_html}\nlabels: {len(files.labels) // 2} "
        f"in {files.layout.labels}\narchive: {files.layout.archive}"
    )
    for problem in files.problems:
        print(f"skipped: {problem}")
    return 0

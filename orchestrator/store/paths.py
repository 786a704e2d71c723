"""Every path inside an output folder is built here, and nowhere else.

An output folder holds ``master_results.csv``, ``logs/`` (one log per run attempt and one per
sweep), ``individual_runs/<run name>/`` (the run's record and its result files) and ``report/``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from energy_bench import contract

DEFAULT_OUTPUT_DIR = "batch_results"
MASTER_FILE = "master_results.csv"
MASTER_CACHE = ".master_rows.json"  # each run's row with the stamps of the files it came from
RUNS_DIR = "individual_runs"
LOGS_DIR = "logs"
ATTEMPTS_DIR = "attempts"  # inside a run folder: attempts that failed beside a kept success
PID_FILE = ".benchmark.pid"  # in an attempt folder: the local benchmark process running it
REPORT_DIR = "report"
LOCK_FILE = ".sweep.lock"
REPORT_LOCK_FILE = ".report.lock"
DURATIONS_FILE = ".run_durations.json"  # how long each run took, for longest-first scheduling
RECORD_FILE = "run_record.json"
LEADERBOARD_CSV = "leaderboard.csv"
LEADERBOARD_HTML = "leaderboard.html"
LABELS_DIR = "labels"
ARCHIVE_FILE = "submission.zip"
ARCHIVE_MANIFEST = "manifest.json"
STAMP = "%Y%m%d_%H%M%S"  # as the AI Energy Score scripts name their logs


@dataclass(frozen=True)
class OutputLayout:
    """The paths of one output folder (``root``)."""

    root: Path

    @property
    def master_csv(self) -> Path:
        return self.root / MASTER_FILE

    @property
    def master_cache(self) -> Path:
        return self.root / MASTER_CACHE

    @property
    def runs(self) -> Path:
        return self.root / RUNS_DIR

    @property
    def logs(self) -> Path:
        return self.root / LOGS_DIR

    @property
    def lock(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def durations(self) -> Path:
        return self.root / DURATIONS_FILE

    @property
    def report(self) -> Path:
        return self.root / REPORT_DIR

    def run_dir(self, name: str) -> Path:
        """The folder of run ``name``: its record and its result files."""
        return self.runs / name

    def attempt_dir(self, name: str, when: datetime) -> Path:
        """Where one attempt of run ``name`` writes its results until it is settled."""
        return self.run_dir(name) / ATTEMPTS_DIR / when.strftime(STAMP + "_%f")

    def record(self, name: str) -> Path:
        return self.run_dir(name) / RECORD_FILE

    def pid_files(self) -> list[Path]:
        """The process-id files of local benchmark processes, one per attempt still there."""
        return sorted(self.runs.glob(f"*/{ATTEMPTS_DIR}/*/{PID_FILE}"))

    def result(self, name: str, file: str) -> Path:
        """One of the benchmark's result files (a ``contract`` name) of run ``name``."""
        if file not in contract.RESULT_FILES:
            raise ValueError(f"{file!r} is not a result file of the benchmark")
        return self.run_dir(name) / file

    def images_dir(self, name: str) -> Path:
        """The images run ``name`` kept (``scenario.save_images``), as PNG files."""
        return self.run_dir(name) / contract.IMAGES_DIR

    def run_folders(self) -> list[Path]:
        """Every run folder, sorted by name."""
        try:
            with os.scandir(self.runs) as entries:
                names = sorted(e.name for e in entries if e.is_dir())
        except FileNotFoundError:
            return []
        return [self.runs / name for name in names]

    def run_log(self, name: str, when: datetime) -> Path:
        """The log of one attempt of run ``name``: ``logs/<name>_<YYYYmmdd_HHMMSS>.log``."""
        return self.logs / f"{name}_{when.strftime(STAMP)}.log"

    def sweep_log(self, when: datetime) -> Path:
        """The sweep's own debug log."""
        return self.logs / f"sweep_{when.strftime(STAMP)}.log"

    def relative(self, path: Path) -> str:
        """``path`` as it is written into records: relative to the output folder."""
        return path.relative_to(self.root).as_posix()

    def inside(self, relative: str) -> Path | None:
        """The file that a record names, or None when it would lie outside the output folder."""
        if not relative:
            return None
        path = (self.root / relative).resolve()
        return path if path.is_relative_to(self.root.resolve()) else None


@dataclass(frozen=True)
class ReportLayout:
    """The files of a report folder (``<out>/report`` unless asked elsewhere)."""

    folder: Path

    @property
    def leaderboard_csv(self) -> Path:
        return self.folder / LEADERBOARD_CSV

    @property
    def leaderboard_html(self) -> Path:
        return self.folder / LEADERBOARD_HTML

    @property
    def labels(self) -> Path:
        return self.folder / LABELS_DIR

    @property
    def archive(self) -> Path:
        return self.folder / ARCHIVE_FILE

    @property
    def lock(self) -> Path:
        return self.folder / REPORT_LOCK_FILE

    def label(self, run: str) -> tuple[Path, Path]:
        """The PNG and SVG energy label of a run (its name made safe for any file system)."""
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run)
        return self.labels / f"{safe}.png", self.labels / f"{safe}.svg"


def archive_member(run: str, file: str, *, log: bool = False) -> str:
    """The name of a run's file inside the submission archive."""
    return f"{run}/{LOGS_DIR}/{file}" if log else f"{run}/{file}"

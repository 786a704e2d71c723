"""How long earlier runs took: the sweep's memory for longest-first scheduling.

One small JSON file per output folder maps a run id and a GPU model to the wall seconds of the
run's last successful execution (all its attempts, as the sweep waited for them). The same run id
on the same GPU model has the same settings and software, so its duration is the best guess of
the next.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.store.files import read_json, write_json
from orchestrator.store.paths import OutputLayout


def duration_key(run_id: str, gpu_name: str) -> str:
    """The key of a run's duration: its id and the GPU model it ran on."""
    return f"{run_id} {gpu_name}"


def load_durations(out_dir: Path) -> dict[str, float]:
    """Every known duration (an unreadable file counts as none)."""
    data = read_json(OutputLayout(out_dir).durations)
    if not isinstance(data, dict):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, int | float) and v > 0}


def save_duration(out_dir: Path, key: str, seconds: float) -> None:
    """Remember one run's duration (the caller holds the output folder's lock)."""
    known = load_durations(out_dir)
    known[key] = round(seconds, 3)
    write_json(OutputLayout(out_dir).durations, dict(sorted(known.items())))

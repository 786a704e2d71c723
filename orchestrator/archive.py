"""The submission archive: each run's logs and result files, with a manifest of checksums.

Text files pass through the redactor on the way in, so a token that reached a file by some other
path still does not reach the archive.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

from orchestrator.records import RECORD_FILE
from orchestrator.secrets import Redactor

ARCHIVED = ("benchmark_report.json", "GPU_ENERGY_WH.txt", "GPU_ENERGY_SUMMARY.json",
            "benchmark_results.csv", "per_prompt.csv", RECORD_FILE)  # fmt: skip


def write_archive(path: Path, out_dir: Path, rows: Sequence[dict], redact: Redactor) -> Path:
    """Zip every run of ``rows`` (with its log) into ``path``; returns the path."""
    manifest: dict[str, object] = {"runs": [], "files": {}}
    files: dict[str, str] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".zip.partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:

        def add(source: Path, name: str) -> None:
            data = redact.bytes(source.read_bytes())
            zf.writestr(name, data)
            files[name] = hashlib.sha256(data).hexdigest()

        for row in rows:
            run = str(row.get("run_name"))
            folder = out_dir / "individual_runs" / run
            for name in ARCHIVED:
                if (folder / name).is_file():
                    add(folder / name, f"{run}/{name}")
            log = out_dir / str(row.get("log_path") or "")
            if row.get("log_path") and log.is_file():
                add(log, f"{run}/logs/{log.name}")
            manifest["runs"].append(
                {
                    "run_name": run,
                    "run_id": row.get("run_id"),  # type: ignore[attr-defined]
                    "status": row.get("status"),
                }
            )
        manifest["files"] = files
        zf.writestr("manifest.json", json.dumps(manifest, indent=2))
    tmp.replace(path)
    return path

"""The submission archive: each run's logs and result files, with a manifest of checksums.

Text files pass through the redactor on the way in, so a token that reached a file by some other
path still does not reach the archive. Only files inside the output folder are taken.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

from energy_bench import contract
from orchestrator.secrets import Redactor
from orchestrator.store.paths import ARCHIVE_MANIFEST, RECORD_FILE, OutputLayout, archive_member

ARCHIVED = (
    contract.REPORT_FILE,
    contract.ENERGY_WH_FILE,
    contract.ENERGY_SUMMARY_FILE,
    contract.RESULTS_CSV_FILE,
    contract.PER_PROMPT_FILE,
    RECORD_FILE,
)


def write_archive(path: Path, output: OutputLayout, rows: Sequence[dict], redact: Redactor) -> Path:
    """Zip every run of ``rows`` (with its log) into ``path``; returns the path."""
    manifest: dict[str, object] = {"runs": [], "files": {}}
    files: dict[str, str] = {}
    runs: list[dict[str, object]] = []
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:

        def add(source: Path, name: str) -> None:
            data = redact.bytes(source.read_bytes())
            zf.writestr(name, data)
            files[name] = hashlib.sha256(data).hexdigest()

        for row in rows:
            run = str(row.get("run_name"))
            folder = output.run_dir(run)
            for name in ARCHIVED:
                source = output.inside(output.relative(folder / name))  # no symlink out of it
                if source is not None and source.is_file():
                    add(source, archive_member(run, name))
            log = output.inside(str(row.get("log_path") or ""))
            if log is not None and log.is_file():
                add(log, archive_member(run, log.name, log=True))
            runs.append({"run_name": run, "run_id": row.get("run_id"), "status": row.get("status")})
        manifest["runs"] = runs
        manifest["files"] = files
        zf.writestr(ARCHIVE_MANIFEST, json.dumps(manifest, indent=2))
    tmp.replace(path)
    return path

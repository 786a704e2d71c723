"""The submission archive: each run's logs and result files, with a manifest of checksums.

Text files pass through the redactor on the way in, so a token that reached a file by some other
path still does not reach the archive. Only files whose real location lies inside the output
folder are taken (no link leads out of it). A file that cannot be read is left out with a
warning; the archive holds every other one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
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

log = logging.getLogger(__name__)


class _Files:
    """Regular files whose real location lies inside the output folder.

    Each folder is resolved once (so a folder that is a link out is refused), each file is
    looked at without following it, and only a file that is itself a link is resolved: the
    same answer as resolving every path, at one system call per file.
    """

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self._folders: dict[str, str | None] = {}

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root + os.sep)

    def _folder(self, folder: str) -> str | None:
        if folder not in self._folders:
            real = os.path.realpath(folder)
            self._folders[folder] = real if self._inside(real) else None
        return self._folders[folder]

    def get(self, relative: str) -> Path | None:
        """The file ``relative`` (to the output folder) names, or None when it may not be taken."""
        if not relative or "\0" in relative:
            return None
        joined = os.path.join(self.root, relative)
        folder, name = os.path.split(joined)
        real_folder = self._folder(folder)
        if real_folder is None or name in ("", ".", ".."):
            return None
        real = os.path.join(real_folder, name)
        try:
            info = os.lstat(real)
            if stat.S_ISLNK(info.st_mode):
                real = os.path.realpath(real)
                info = os.stat(real)
        except OSError:
            return None
        return Path(real) if stat.S_ISREG(info.st_mode) and self._inside(real) else None


def write_archive(path: Path, output: OutputLayout, rows: Sequence[dict], redact: Redactor) -> Path:
    """Zip every run of ``rows`` (with its log) into ``path``; returns the path."""
    manifest: dict[str, object] = {"runs": [], "files": {}}
    files: dict[str, str] = {}
    runs: list[dict[str, object]] = []
    inside = _Files(output.root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:

        def add(source: Path | None, name: str) -> None:
            if source is None:
                return
            try:
                data = redact.bytes(source.read_bytes())
            except (OSError, ValueError) as exc:
                log.warning("archive: %s left out: %s", name, exc)
                return
            zf.writestr(name, data)
            files[name] = hashlib.sha256(data).hexdigest()

        for row in rows:
            run = str(row.get("run_name"))
            folder = output.relative(output.run_dir(run))
            for name in ARCHIVED:
                add(inside.get(f"{folder}/{name}"), archive_member(run, name))
            run_log = inside.get(str(row.get("log_path") or ""))
            if run_log is not None:
                add(run_log, archive_member(run, run_log.name, log=True))
            runs.append({"run_name": run, "run_id": row.get("run_id"), "status": row.get("status")})
        manifest["runs"] = runs
        manifest["files"] = files
        zf.writestr(ARCHIVE_MANIFEST, json.dumps(manifest, indent=2))
    tmp.replace(path)
    return path
